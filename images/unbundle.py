"""Turn a bundle back into its image file, refusing every hostile bundle (docs/bundle-format.md §6).

The pipeline pulls, a chunk at a time, in constant memory whatever the size:

    parts (each checked against its digest first) -> AES-128-CBC + PKCS#7
    -> gunzip (output bounded per call) -> SHA1 and size cap of the tar stream
    -> tarfile in stream mode -> the one regular file -> output_path

Nothing is written but ``output_path``, created fresh (O_EXCL, O_NOFOLLOW),
and on any failure it is removed again.
"""

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from isal.isal_zlib import crc32  # zlib's CRC32, SIMD-fast (see setup.py)

from images.crypto import Decryptor, unwrap_secret
from images.errors import BundleError, DecryptError, DigestMismatch, ImageTooLarge
from images.manifest import MAX_MANIFEST_SIZE, Manifest, Part, check_plain_file_name, parse_manifest
from images.parts import verified_part_chunks
from images.safetar import extract_image, stream_cap
from images.streams import IteratorReader, gunzip

DEFAULT_MAX_IMAGE_SIZE = 64 * 1024**3
DEFAULT_CHUNK_SIZE = 1024 * 1024


@dataclass
class UnbundleResult:
    size: int
    tar_sha1: str
    member_name: str
    # zlib's CRC32 of the image file as written: what its reads are checked against later.
    crc32: int = 0


def unbundle(
    manifest: Manifest,
    open_part: Callable[[Part], BinaryIO],
    private_key: RSAPrivateKey,
    output_path: str,
    *,
    max_size: int = DEFAULT_MAX_IMAGE_SIZE,
    which: str = "ec2",
    on_stage: Optional[Callable[[str], object]] = None,
    on_progress: Optional[Callable[[int], object]] = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> UnbundleResult:
    """Decrypt, check and unpack the bundle's image into ``output_path``.

    ``open_part(part)`` returns a binary file object for a part (read, seek(0),
    close); part names are the caller's to resolve. ``which`` is "ec2" (the
    cloud's private key) or "user" (the bundling user's). ``on_stage`` gets
    "decrypting" and then "untarring"; ``on_progress`` gets the ciphertext
    bytes processed so far, now and then. Either may raise to cancel: the
    exception comes out unchanged, after the output is removed.
    """
    if manifest.size > max_size:
        raise ImageTooLarge(f"the image is {manifest.size} bytes; at most {max_size} are accepted")
    key, iv = _unwrap(manifest, private_key, which)
    output = _ImageFile(output_path)
    try:
        if on_stage is not None:
            on_stage("decrypting")
        tar_sha1 = hashlib.sha1()
        cap = stream_cap(manifest.size)
        ciphertext = _ciphertext(manifest, open_part, chunk_size, on_progress)
        tar_chunks = gunzip(_decrypted(ciphertext, key, iv), chunk_size)
        stream = IteratorReader(_capped(tar_chunks, cap, tar_sha1))
        try:
            member_name = extract_image(
                stream,
                output.write,
                image_size=manifest.size,
                max_member_size=cap,
                chunk_size=chunk_size,
                on_start=None if on_stage is None else lambda: on_stage("untarring"),
            )
        finally:
            # Close every stage now, the open part with them, when the
            # pipeline stopped early: left to the garbage collector, a
            # generator is finalised in whatever thread collects it.
            stream.close()
            tar_chunks.close()
            ciphertext.close()
        if tar_sha1.hexdigest() != manifest.image_digest:
            raise DigestMismatch(
                "the image does not match the digest in its manifest"
                f" (the tar stream's SHA1 is {tar_sha1.hexdigest()}, the manifest says {manifest.image_digest})"
            )
        if output.size != manifest.size:
            raise DigestMismatch(f"the image is {output.size} bytes but the manifest says {manifest.size}")
        output.commit()
    except BaseException:
        output.discard()
        raise
    return UnbundleResult(output.size, tar_sha1.hexdigest(), member_name, output.crc32)


def unbundle_files(manifest_path: str, private_key: RSAPrivateKey, output_path: str, **options: Any) -> UnbundleResult:
    """``unbundle`` for a bundle in a folder: the parts lie next to the manifest."""
    try:
        with open(manifest_path, "rb") as f:
            data = f.read(MAX_MANIFEST_SIZE + 1)
    except OSError as e:
        raise BundleError(f"cannot read the manifest {manifest_path}: {e.strerror or e}") from None
    manifest = parse_manifest(data)
    folder = os.path.dirname(os.path.abspath(manifest_path))

    def open_part(part):
        check_plain_file_name(part.filename, f"part {part.index}'s file name")  # parse_manifest did; stay sure
        return open(os.path.join(folder, part.filename), "rb")

    return unbundle(manifest, open_part, private_key, output_path, **options)


def _unwrap(manifest, private_key, which):
    if which == "ec2":
        key_hex, iv_hex = manifest.ec2_encrypted_key, manifest.ec2_encrypted_iv
    elif which == "user":
        key_hex, iv_hex = manifest.user_encrypted_key, manifest.user_encrypted_iv
        if not key_hex or not iv_hex:
            raise DecryptError("the manifest carries no key encrypted for its user")
    else:
        raise ValueError(f"which must be 'ec2' or 'user', not {which!r}")
    return unwrap_secret(private_key, key_hex), unwrap_secret(private_key, iv_hex)


def _ciphertext(manifest, open_part, chunk_size, on_progress):
    """Every part's bytes in index order, each part checked against its digest before it is used."""
    done = 0

    def checkpoint():
        on_progress(done)

    for part in manifest.parts:
        chunks = verified_part_chunks(open_part, part, chunk_size, checkpoint if on_progress else None)
        with contextlib.closing(chunks):
            for chunk in chunks:
                done += len(chunk)
                yield chunk
                if on_progress is not None:
                    on_progress(done)


def _decrypted(chunks, key, iv):
    decryptor = Decryptor(key, iv)
    for chunk in chunks:
        plain = decryptor.update(chunk)
        if plain:
            yield plain
    tail = decryptor.finalize()
    if tail:
        yield tail


def _capped(chunks, cap, sha1):
    """The tar stream, hashed as it flows, stopped as soon as it outgrows ``cap``."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > cap:
            raise ImageTooLarge(
                f"the image expands to more than {cap} bytes, more than its manifest's size allows"
                " (a decompression bomb, or a wrong size in the manifest)"
            )
        sha1.update(chunk)
        yield chunk


class _ImageFile:
    """The output file: created fresh, removed again unless committed."""

    def __init__(self, path):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._fd: Optional[int] = os.open(path, flags, 0o600)
        except FileExistsError:
            raise BundleError("the image file already exists") from None
        except OSError as e:
            # The reason reaches users: it names no server path.
            raise BundleError(f"cannot create the image file: {e.strerror or e}") from None
        self._path = path
        self.size = 0
        self.crc32 = 0

    def write(self, data):
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._descriptor(), view) :]
        except OSError as e:
            raise BundleError(f"cannot write the image: {e.strerror or e}") from None
        self.size += len(data)
        self.crc32 = crc32(data, self.crc32)

    def commit(self):
        fd = self._descriptor()
        try:
            os.fsync(fd)
        except OSError as e:
            raise BundleError(f"cannot write the image: {e.strerror or e}") from None
        os.close(fd)
        self._fd = None

    def _descriptor(self) -> int:
        if self._fd is None:
            raise BundleError("the image file is already closed")
        return self._fd

    def discard(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass
