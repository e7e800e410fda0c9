"""Make a bundle from an image, as euca2ools 3.1+ does (docs/bundle-format.md §1-§5).

    image -> tar (one GNU member) -> SHA1 -> gzip -6 -> AES-128-CBC -> parts
    -> manifest, signed with the user's key

One pass, in constant memory. ``bundle_stream`` starts from a ready-made tar
stream (or gzip data) instead, so tests can bundle hostile archives.
"""

import hashlib
import os
import zlib
from dataclasses import dataclass
from typing import Any, Optional

from images.crypto import Encryptor, new_secret, wrap_secret
from images.errors import ManifestError
from images.manifest import Manifest, build_manifest, check_plain_file_name, parse_manifest
from images.parts import PartWriter
from images.streams import GZIP_WBITS, Readable, read_chunks
from images.tarwriter import single_member_tar

DEFAULT_PART_SIZE = 10 * 1024 * 1024
GZIP_LEVEL = 6
CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class BundleResult:
    manifest_path: str
    part_paths: tuple
    manifest: Manifest


def bundle_image(image_path: str, destination: str, *, prefix: Optional[str] = None, **options: Any) -> BundleResult:
    """Bundle the image file into ``destination``: ``<prefix>.part.NN`` files and ``<prefix>.manifest.xml``.

    ``prefix`` defaults to the image's file name; it also names the tar
    member. *options* are ``_bundle``'s (user_id and cloud_certificate
    required). ``on_progress`` gets the tar stream bytes bundled so far
    (the image plus its header, then the end blocks).
    """
    prefix = prefix or os.path.basename(image_path)
    with open(image_path, "rb") as image:
        size = os.fstat(image.fileno()).st_size
        return _bundle(
            single_member_tar(image, prefix, size, CHUNK_SIZE), destination, prefix=prefix, size=size, **options
        )


def bundle_stream(
    tar_stream: Readable,
    destination: str,
    *,
    prefix: str,
    size: int,
    gzipped: bool = False,
    image_digest: Optional[str] = None,
    **options: Any,
) -> BundleResult:
    """Bundle a ready-made tar stream (a binary file object), trusting it blindly.

    ``size`` is what the manifest will declare, true or not. With
    ``gzipped=True`` the stream is already gzip data and goes straight to
    encryption; as its tar stream is never seen, ``image_digest`` must then be
    given. ``image_digest`` may also override the true digest of a tar stream.
    ``on_progress`` gets the input bytes read so far. *options* are ``_bundle``'s.
    """
    if gzipped and image_digest is None:
        raise ValueError("bundling gzip data needs the image_digest of the tar stream inside it")
    return _bundle(
        read_chunks(tar_stream, CHUNK_SIZE),
        destination,
        prefix=prefix,
        size=size,
        gzipped=gzipped,
        image_digest=image_digest,
        **options,
    )


def _bundle(
    chunks,
    destination,
    *,
    prefix,
    size,
    user_id,
    cloud_certificate,
    user_certificate=None,
    user_private_key=None,
    arch="x86_64",
    kernel_id=None,
    ramdisk_id=None,
    image_type="machine",
    part_size=DEFAULT_PART_SIZE,
    block_device_mapping=None,
    on_progress=None,
    gzipped=False,
    image_digest=None,
):
    """*chunks* of a tar stream (with *gzipped*, of its gzip data) -> parts and a manifest in *destination*.

    The manifest is signed with ``user_private_key`` ("UNSIGNED" without
    one), and the AES key is wrapped for the cloud and, when given, for the
    user (``user_certificate``).
    """
    try:
        check_plain_file_name(prefix, "the bundle prefix")
    except ManifestError as e:
        raise ValueError(str(e)) from None
    key, iv = new_secret(), new_secret()
    encryptor = Encryptor(key, iv)
    compressor = None if gzipped else zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
    tar_sha1 = hashlib.sha1()
    writer = PartWriter(destination, prefix, part_size)
    manifest_path = os.path.join(destination, f"{prefix}.manifest.xml")
    manifest_started = False
    try:
        done = 0
        for chunk in chunks:
            done += len(chunk)
            if compressor is not None:
                tar_sha1.update(chunk)
                chunk = compressor.compress(chunk)
            writer.write(encryptor.update(chunk))
            if on_progress is not None:
                on_progress(done)
        if compressor is not None:
            writer.write(encryptor.update(compressor.flush()))
        writer.write(encryptor.finalize())
        parts, part_paths, bundled_size = writer.close()
        manifest_bytes = build_manifest(
            name=prefix,
            user=str(user_id).replace("-", ""),
            image_digest=image_digest or tar_sha1.hexdigest(),
            size=size,
            bundled_size=bundled_size,
            parts=parts,
            ec2_encrypted_key=wrap_secret(cloud_certificate, key),
            ec2_encrypted_iv=wrap_secret(cloud_certificate, iv),
            user_encrypted_key=wrap_secret(user_certificate, key) if user_certificate is not None else "",
            user_encrypted_iv=wrap_secret(user_certificate, iv) if user_certificate is not None else "",
            architecture=arch,
            image_type=image_type,
            kernel_id=kernel_id,
            ramdisk_id=ramdisk_id,
            # euca2ools writes mappings for machine images only, sorted by virtual name.
            block_device_mapping=_sorted_mappings(block_device_mapping) if image_type == "machine" else (),
            private_key=user_private_key,
        )
        manifest_started = True
        with open(manifest_path, "wb") as f:
            f.write(manifest_bytes)
    except BaseException:
        writer.discard()
        if manifest_started:
            _remove(manifest_path)
        raise
    return BundleResult(manifest_path, part_paths, parse_manifest(manifest_bytes))


def _sorted_mappings(block_device_mapping):
    """Mappings given as {virtual: device} or (virtual, device) pairs, sorted by virtual name."""
    return sorted(dict(block_device_mapping or {}).items())


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
