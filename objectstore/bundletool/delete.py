"""Deleting an uploaded bundle: its parts and its manifest, as euca-delete-bundle does."""

import posixpath
from dataclasses import dataclass

from images.errors import BundleError
from images.manifest import parse_manifest
from objectstore.bundletool.bundlefiles import MANIFEST_SUFFIX, read_local_manifest, split_bucket
from objectstore.bundletool.transport import ToolError


@dataclass(frozen=True)
class DeleteReport:
    bucket: str
    manifest_key: str
    parts: int
    bucket_deleted: bool


async def delete_bundle(s3, bucket, *, prefix=None, manifest_path=None, clear=False):
    """Delete the bundle named by *prefix* (its manifest read from the bucket) or by a local manifest.

    The part names come from the manifest, so only the bundle's own keys go;
    the manifest goes last, so a failure halfway leaves it there to name
    what is left to delete. With *clear*, the bucket goes too if it is then empty.
    """
    bucket, folder = split_bucket(bucket)
    if manifest_path is not None:
        manifest = read_local_manifest(manifest_path)
        manifest_key = folder + posixpath.basename(manifest_path)
    else:
        if not prefix:
            raise ToolError("give --prefix (or --manifest) to say which bundle to delete")
        manifest_key = folder + prefix.removesuffix(MANIFEST_SUFFIX) + MANIFEST_SUFFIX
        data = await s3.get(bucket, manifest_key)
        if data is None:
            raise ToolError(f"there is no bundle manifest at {bucket}/{manifest_key}")
        try:
            manifest = parse_manifest(data)
        except BundleError as e:
            raise ToolError(f"{bucket}/{manifest_key}: {e}") from None
    key_folder = posixpath.dirname(manifest_key)
    part_keys = [posixpath.join(key_folder, part.filename) for part in manifest.parts]
    await s3.delete_keys(bucket, part_keys)
    await s3.delete_keys(bucket, [manifest_key])
    bucket_deleted = False
    if clear:
        await s3.delete_bucket(bucket)
        bucket_deleted = True
    return DeleteReport(bucket, manifest_key, len(part_keys), bucket_deleted)
