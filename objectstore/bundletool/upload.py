"""Uploading a bundle, as euca-upload-bundle does, but in parallel and resumable.

The parts go first, several at a time, and the manifest last: the registry
never finds a manifest whose parts are not all there. A part already in the
bucket with the local file's size and MD5 (its ETag) is skipped, so running
the upload again after an interruption sends only what is missing or wrong.
Each local part is checked against the manifest's SHA1 before it is sent:
a damaged bundle is refused here, not at registration.
"""

import hashlib
import os
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.threads import deferToThread

from objectstore.bundletool.bundlefiles import read_local_manifest, split_bucket
from objectstore.bundletool.transport import FileBody, ToolError

HASH_CHUNK = 1024 * 1024
CANNED_ACLS = frozenset(
    "private public-read public-read-write authenticated-read aws-exec-read bucket-owner-read"
    " bucket-owner-full-control".split()
)


@dataclass(frozen=True)
class LocalFile:
    path: str
    key: str
    size: int
    md5: bytes
    sha1: str

    @property
    def body(self):
        return FileBody(self.path, self.size)


@dataclass(frozen=True)
class UploadReport:
    location: str  # bucket/key of the manifest, as RegisterImage takes it
    uploaded: int
    skipped: int
    created_bucket: bool


async def upload_bundle(s3, manifest_path, bucket, *, acl="aws-exec-read", location=None, jobs=4, progress=None):
    """Upload the bundle whose manifest is *manifest_path* into *bucket* (``bucket/folder`` allowed).

    *progress* (a progress bar or None) is told the total bytes, then the bytes sent or skipped.
    """
    if acl not in CANNED_ACLS:
        raise ToolError(f"unknown canned ACL {acl!r}: use one of {', '.join(sorted(CANNED_ACLS))}")
    bucket, folder = split_bucket(bucket)
    manifest = read_local_manifest(manifest_path)
    directory = os.path.dirname(os.path.abspath(manifest_path))
    parts = [(os.path.join(directory, part.filename), folder + part.filename, part.digest) for part in manifest.parts]
    sizes = [_size(path) for path, _, _ in parts]
    manifest_key = folder + os.path.basename(manifest_path)
    if progress is not None:
        progress.reset(total=sum(sizes) + _size(manifest_path))
    created = await s3.ensure_bucket(bucket, location)
    counts = {"uploaded": 0, "skipped": 0}

    async def send(path, key, digest=None):
        local = await deferToThread(_hashed, path, key)
        if digest is not None and local.sha1 != digest.lower():
            raise ToolError(f"{path} does not match its digest in the manifest: the bundle is damaged")
        present = await s3.head(bucket, key)
        if present == (local.md5.hex(), local.size):
            # Its bytes are right; its ACL may not be (an earlier upload with another --acl).
            await s3.put_acl(bucket, key, acl)
            counts["skipped"] += 1
            _advance(progress, local.size)
            return
        await s3.put_file(bucket, key, local.body, local.md5, acl=acl, on_sent=lambda n: _advance(progress, n))
        counts["uploaded"] += 1

    await _in_parallel([lambda p=p: send(*p) for p in parts], jobs)
    await send(manifest_path, manifest_key)
    return UploadReport(f"{bucket}/{manifest_key}", counts["uploaded"], counts["skipped"], created)


async def _in_parallel(calls, jobs):
    """Run the async *calls*, at most *jobs* at once. The first failure cancels the
    calls under way, starts no more, and is raised."""
    pending = iter(calls)
    failures = []
    workers = []

    async def worker():
        for call in pending:
            try:
                await call()
            except defer.CancelledError:
                if failures:  # stopped by a sibling's failure
                    return
                raise
            except Exception as e:
                failures.append(e)
                for other in workers:
                    other.cancel()
                return

    workers.extend(defer.ensureDeferred(worker()) for _ in range(max(1, jobs)))
    # Cancelled from outside, the DeferredList cancels the workers and raises here.
    await defer.DeferredList(workers, consumeErrors=True)
    if failures:
        raise failures[0]


def _advance(progress, n):
    if progress is not None:
        progress.update(n)


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror} (is the bundle complete?)") from None


def _hashed(path, key):
    """In a thread: the MD5 (ETag, Content-MD5) and SHA1 (the manifest's digest) of a file, in one read."""
    md5, sha1 = hashlib.md5(), hashlib.sha1()
    size = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                md5.update(chunk)
                sha1.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror}") from None
    return LocalFile(path, key, size, md5.digest(), sha1.hexdigest())
