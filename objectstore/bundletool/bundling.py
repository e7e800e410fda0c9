"""Bundling an image and unbundling it again: local files only, no server.

Both run in the main thread (Ctrl-C stops them at once) and remove what
they wrote when they fail or are stopped.
"""

import os

from images.bundle import bundle_image
from images.errors import BundleError
from images.manifest import check_plain_file_name
from images.unbundle import unbundle_files
from objectstore.bundletool import keyfiles, progress
from objectstore.bundletool.bundlefiles import MANIFEST_SUFFIX, read_local_manifest
from objectstore.bundletool.transport import ToolError


def signing_pair(cert_path, key_path):
    """The user's certificate and private key, checked to belong together."""
    certificate = keyfiles.read_certificate(cert_path)
    private_key = keyfiles.read_private_key(key_path)
    keyfiles.check_pair(certificate, private_key, cert_path, key_path)
    return certificate, private_key


def image_size(path):
    try:
        return os.path.getsize(path)
    except OSError as e:
        raise ToolError(f"cannot read the image {path}: {e.strerror}") from None


def bundle(image_path, destination, *, signing, cloud_certificate, user_id, show_progress, **options):
    """Bundle *image_path* into *destination*; the manifest's path.

    *signing* is ``signing_pair()``'s; *options* are ``bundle_image``'s
    (prefix, arch, kernel_id, ramdisk_id, image_type, part_size, block_device_mapping).
    """
    certificate, private_key = signing
    size = image_size(image_path)
    os.makedirs(destination, exist_ok=True)
    with progress.byte_bar("bundling", size, show_progress) as bar:
        result = bundle_image(
            image_path,
            destination,
            user_id=user_id,
            cloud_certificate=cloud_certificate,
            user_certificate=certificate,
            user_private_key=private_key,
            # The tar stream is a little longer than the image: its header and end blocks.
            on_progress=lambda done: bar.update(min(done, size) - bar.n),
            **options,
        )
    return result.manifest_path


def unbundle(manifest_path, key_path, destination, *, show_progress):
    """Rebuild the image of a bundle on disk with the user's key; the image's path.

    The image is named after the bundle and created with the umask's
    permissions; an existing file is never overwritten.
    """
    private_key = keyfiles.read_private_key(key_path)
    manifest = read_local_manifest(manifest_path)
    os.makedirs(destination, exist_ok=True)
    output = os.path.join(destination, _image_name(manifest, manifest_path))
    if os.path.lexists(output):
        raise ToolError(f"{output} already exists")
    with progress.byte_bar("unbundling", manifest.bundled_size or None, show_progress) as bar:
        try:
            unbundle_files(
                manifest_path,
                private_key,
                output,
                which="user",
                max_size=manifest.size,
                on_progress=lambda done: bar.update(done - bar.n),
            )
        except BundleError as e:
            raise ToolError(f"cannot unbundle {manifest_path}: {e}") from None
    # unbundle_files creates it 0600, as the server wants its images; a user's file follows the umask.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(output, 0o666 & ~umask)
    return output


def _image_name(manifest, manifest_path):
    """The manifest's image name when it is a plain file name; else the manifest file's prefix."""
    try:
        check_plain_file_name(manifest.name, "the image name")
        return manifest.name
    except BundleError:
        name = os.path.basename(manifest_path).removesuffix(MANIFEST_SUFFIX)
        return name if name not in ("", ".", "..") else "image"
