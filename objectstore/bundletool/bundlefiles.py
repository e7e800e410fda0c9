"""Naming a bundle's files: the manifest on disk, and where in a bucket a bundle goes."""

from images.errors import BundleError
from images.manifest import MAX_MANIFEST_SIZE, parse_manifest
from objectstore.bundletool.transport import ToolError

MANIFEST_SUFFIX = ".manifest.xml"


def read_local_manifest(path):
    """The parsed manifest of a bundle on disk (ToolError if it is missing or malformed)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_SIZE + 1)
    except OSError as e:
        raise ToolError(f"cannot read the manifest {path}: {e.strerror}") from None
    try:
        return parse_manifest(data)
    except BundleError as e:
        raise ToolError(f"{path}: {e}") from None


def split_bucket(text):
    """``bucket`` or ``bucket/folder/`` -> (bucket, key prefix ending in / or empty), as euca2ools takes it."""
    bucket, _, folder = text.strip("/").partition("/")
    if not bucket:
        raise ToolError("the bucket name is empty")
    folder = folder.strip("/")
    return bucket, folder + "/" if folder else ""
