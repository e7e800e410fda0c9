"""A bundle in a bucket, read with the registering user's rights.

The manifest and its parts are objects like any other: the registry may
read one only if the user could (their own, or one granting them READ), or
if its owner uploaded it ``aws-exec-read`` for the image service and is the
one registering it. Part names come from the manifest, which the user
wrote: they are only ever looked up as keys beside the manifest, in the
same bucket, never as paths.
"""

import posixpath

from twisted.internet.threads import blockingCallFromThread

from images.errors import MissingPart
from images.manifest import MAX_MANIFEST_SIZE
from objectstore.auth import acl as acls
from objectstore.auth.credentials import Caller
from objectstore.errors import AccessDenied, InvalidManifest, InvalidParameterValue, S3Error
from objectstore.storage.contract import ObjectStore
from objectstore.storage.names import check_bucket_name, check_key

MANIFEST_SUFFIX = ".manifest.xml"


def parse_location(location):
    """(bucket, manifest key) of ``bucket/key.manifest.xml`` (a leading ``/`` is allowed)."""
    bucket, _, key = (location or "").lstrip("/").partition("/")
    if not bucket or not key:
        raise InvalidParameterValue(f"Invalid image location {location!r}: expected BUCKET/KEY.manifest.xml.")
    try:
        return check_bucket_name(bucket), check_key(key)
    except S3Error as e:
        raise InvalidParameterValue(f"Invalid image location {location!r}: {e.message}") from None


def may_read(info, user):
    if acls.allows(info.acl, Caller(user), acls.READ):
        return True
    return user is not None and info.owner == user.id and any(_is_exec_read(grant) for grant in info.acl["grants"])


def _is_exec_read(grant):
    return (
        grant["type"] == "CanonicalUser"
        and grant["id"] == acls.EXEC_READ_USER
        and grant["permission"] in (acls.READ, acls.FULL_CONTROL)
    )


class BundleSource:
    """The manifest at *bucket*/*key* and the parts beside it, as *user* may read them."""

    def __init__(self, store: ObjectStore, bucket, manifest_key, user, reactor):
        self.store = store
        self.bucket = bucket
        self.manifest_key = manifest_key
        self.user = user
        self.reactor = reactor

    @property
    def location(self):
        return f"{self.bucket}/{self.manifest_key}"

    def part_key(self, filename):
        folder = posixpath.dirname(self.manifest_key)
        return f"{folder}/{filename}" if folder else filename

    # -- in the reactor thread -------------------------------------------

    def _checked_manifest(self, info):
        if not may_read(info, self.user):
            raise AccessDenied(f"You may not read the manifest {self.location}.")
        if info.size > MAX_MANIFEST_SIZE:
            raise InvalidManifest(f"The manifest is larger than {MAX_MANIFEST_SIZE} bytes.")
        return info

    async def read_manifest(self):
        """The manifest's bytes, if the user may read it (NoSuchBucket, NoSuchKey, AccessDenied, InvalidManifest)."""
        info, body = self.store.open_object(self.bucket, self.manifest_key)
        try:
            self._checked_manifest(info)
            return await self.store.in_thread(StoredPart(body, info.size, None).read)
        finally:
            body.close()

    def _open(self, key):
        info, body = self.store.open_object(self.bucket, key)
        if not may_read(info, self.user):
            body.close()
            raise AccessDenied()
        return info, body

    # -- in a worker thread ----------------------------------------------

    def open_part(self, part):
        """A file object over the part's bytes (unbundle's ``open_part``)."""
        key = self.part_key(part.filename)
        try:
            info, body = blockingCallFromThread(self.reactor, self._open, key)
        except AccessDenied:
            raise MissingPart(f"part {part.index} ({key}) is not readable by the registering user") from None
        except S3Error:
            raise MissingPart(f"part {part.index} ({key}) is missing from bucket {self.bucket}") from None
        # Closed from the reactor thread, where the store keeps its pins; not
        # waited for, so that closing works from any thread, that one included.
        return StoredPart(body, info.size, lambda: self.reactor.callFromThread(body.close))


class StoredPart:
    """A stored object read as a file: read(n), seek(0), close().

    Reads are preads of blobs opened (or pinned) in the reactor thread, safe
    from any thread; *close* hands the body back to the reactor thread.
    """

    def __init__(self, body, size, close):
        self._body = body
        self._size = size
        self._close = close
        self._offset = 0

    def read(self, n=-1):
        if n is None or n < 0:
            n = self._size - self._offset
        chunks = []
        wanted = min(n, self._size - self._offset)
        while wanted > 0:
            data = self._body.read(self._offset, wanted)
            if not data:
                raise MissingPart("a part's bytes vanished while it was read")
            chunks.append(data)
            self._offset += len(data)
            wanted -= len(data)
        return b"".join(chunks)

    def seek(self, offset, whence=0):
        if whence != 0:
            raise OSError("a stored part only seeks from its start")
        self._offset = max(0, min(offset, self._size))
        return self._offset

    def tell(self):
        return self._offset

    def close(self):
        if self._close is not None:
            close, self._close = self._close, None
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
