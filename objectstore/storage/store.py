"""The disk store: buckets and objects as S3-shaped operations.

Durability order of a PUT of a big object: bytes fsynced in tmp/, then the
tmp/ folder fsynced and one transaction swaps the object's row (all in the
index writer thread, once for a whole batch of writes), then - the client
already answered - the blob is renamed home and replaced blobs unlinked. A
small object's bytes go into the index with its row: one commit does it all.
The commit is the moment of truth: before it the old object is whole, after
it the new one is, and a crash on either side leaves nothing visible that is
half of one and half of the other.
"""

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any, Optional

from isal.isal_zlib import crc32
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from objectstore.errors import InternalError, NoSuchBucket, ObjectDamaged
from objectstore.index.database import AfterCommit
from objectstore.storage import rows
from objectstore.storage.bodies import InlineBody, ObjectBody
from objectstore.storage.contract import BodyReader
from objectstore.storage.datadir import lock_data_dir
from objectstore.storage.disk import Disk
from objectstore.storage.integrity import Verifier, VerifyingBody, object_checks
from objectstore.storage.listing import list_keys
from objectstore.storage.multipart import Multipart
from objectstore.storage.records import Bucket, Listing, ObjectInfo, Segment
from objectstore.storage.space import DEFAULT_RESERVE, Claim, Reserve
from objectstore.storage.writer import INLINE_LIMIT, ObjectWriter, copy_body

log = Logger()


class Store:
    """The disk backend of the storage contract (``contract.ObjectStore``): the index plus blob files."""

    def __init__(
        self,
        data_dir: str,
        durable: bool = True,
        reactor: Any = None,
        io_threads: int = 16,
        inline_limit: int = INLINE_LIMIT,
        min_free_space: Reserve = DEFAULT_RESERVE,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.data_dir = os.path.abspath(data_dir)
        # Making a Store touches no disk: open() (or start()) does, so that a
        # server that cannot listen creates nothing (see service.py).
        self._lock: Optional[int] = None
        self.disk = Disk(self.data_dir, durable, reactor, io_threads, min_free_space)
        self.files = self.disk.files
        self.index = self.disk.index
        self.inline_limit = inline_limit
        # Bucket records by name (reactor thread only; see get_bucket).
        self._buckets: dict = {}
        self.multipart = Multipart(self.disk)
        # What reads objects whole in the background (storage/scrub.py), once started; ranges hand it theirs.
        self.scrubber: Optional[Any] = None
        # Objects found damaged whose mark is not committed yet, by (bucket, key): (etag, modified).
        # A read that follows the one that found the damage is refused at once, not cut again.
        self._found_damaged: dict = {}

    # -- life cycle ------------------------------------------------------

    def open(self) -> None:
        """Create the data folder if need be, take its lock and open the index (blocking; before serving).

        Raises DataDirInUse if another process serves the folder.
        """
        if self._lock is not None:
            return
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        self._lock = lock_data_dir(self.data_dir)
        try:
            self.files.create_folders()
            self.index.open()
        except BaseException:
            os.close(self._lock)
            self._lock = None
            raise

    def start(self) -> None:
        self.open()
        self.recover()
        self.disk.start()

    def stop(self) -> None:
        self.disk.stop()

    def close(self) -> None:
        self.stop()
        self.index.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def recover(self) -> None:
        """Settle what a crash left behind; run before serving."""
        conn = self.index.reader()
        for blob in self.files.leftovers():
            # An object's segment, or a part of an upload in progress: it was committed.
            if rows.blob_is_referenced(conn, blob):
                self.files.move_home(blob)
            else:
                self.files.unlink(blob)
        for blob in rows.garbage_blobs(conn):
            self.files.unlink(blob)
        rows.clear_garbage(conn)

    def in_thread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run blocking *f* in the store's io pool; a Deferred of its result."""
        return self.disk.in_thread(f, *args, **kwargs)

    def claim_space(self, size: int = 0) -> Claim:
        """Room for *size* more bytes in the data dir (an image, say); StorageFull if they would cross the reserve.

        The caller ends the claim: ``kept`` once the bytes are written, ``dropped`` if they never will be.
        """
        return self.disk.space.claim(size)

    # -- buckets ---------------------------------------------------------

    def get_bucket(self, name: str) -> Bucket:
        """The bucket's record; served from memory after the first look.

        Every change to a bucket row goes through this store, which drops
        the cached record when the change commits.
        """
        bucket = self._buckets.get(name)
        if bucket is not None:
            return bucket
        bucket = rows.read_bucket(self.index.reader(), name)
        if bucket is None:
            raise NoSuchBucket(BucketName=name)
        self._buckets[name] = bucket
        return bucket

    def _forget_bucket(self, name):
        def forget(result):
            self._buckets.pop(name, None)
            return result

        return forget

    def list_buckets(self, owner: Optional[str] = None) -> list[Bucket]:
        return rows.read_buckets(self.index.reader(), owner)

    def create_bucket(self, name: str, owner: str, region: str, acl: dict) -> Deferred:
        bucket = Bucket(name, owner, time.time(), region, acl)

        def create(conn):
            rows.create_bucket_row(conn, bucket)
            return bucket

        return self.disk.write_with_room(create)

    def delete_bucket(self, name: str) -> Deferred:
        def delete(conn):
            rows.delete_bucket_row(conn, name)
            # Uploads in progress do not keep a bucket alive (as in S3): they go with it.
            return AfterCommit(None, self.disk.discard(self.multipart.drop_bucket_uploads(conn, name)))

        return self.disk.write(delete).addBoth(self._forget_bucket(name))

    def set_bucket_acl(self, name: str, acl: dict) -> Deferred:
        return self.disk.write_with_room(lambda conn: rows.update_bucket_acl(conn, name, acl)).addBoth(
            self._forget_bucket(name)
        )

    def get_bucket_tags(self, name: str) -> Optional[list[tuple[str, str]]]:
        """The bucket's tag set (None: it has none); NoSuchBucket."""
        return rows.read_bucket_tags(self.index.reader(), name)

    def set_bucket_tags(self, name: str, tags: Optional[list[tuple[str, str]]]) -> Deferred:
        """Replace the bucket's tag set (None removes it); NoSuchBucket. Removing is never refused for space."""
        write = self.disk.write if tags is None else self.disk.write_with_room
        return write(lambda conn: rows.write_bucket_tags(conn, name, tags))

    # -- objects ---------------------------------------------------------

    def get_object(self, bucket: str, key: str) -> ObjectInfo:
        """The object's record (a point lookup, cheap enough for the reactor)."""
        return rows.lookup_object(self.index.reader(), rows.OBJECT_WITH_SEGMENTS, bucket, key)[0]

    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BodyReader]:
        """The object's record and its opened blobs, ready to stream.

        An object in one blob has it opened at once, so an overwrite or
        delete that commits while the body streams cannot take the bytes
        away mid-read; inline bytes come with the row, from the same
        snapshot. An object of many segments (up to 10,000 parts) is not
        opened whole, which could take as many file descriptors: its blobs
        are pinned instead, so that their unlink waits for the read, and
        opened one at a time as the read reaches them.
        """
        for _ in range(3):
            info, (data, inline_crc) = rows.lookup_object(self.index.reader(), rows.OBJECT_WITH_BYTES, bucket, key)
            if info.damage is not None or self._found_damaged.get((bucket, key)) == (info.etag, info.modified):
                raise ObjectDamaged()
            if not info.segments:
                return info, self._checked_inline(info, data or b"", inline_crc)
            if len(info.segments) > 1:
                body = self.disk.pinned_body(info)
                if body is not None:
                    return info, self._verifying(info, body)
                continue
            handles = []
            for segment in info.segments:
                handle = self.files.open(segment.blob)
                if handle is None:
                    break
                handles.append(handle)
            else:
                return info, self._verifying(info, ObjectBody(info.segments, handles))
            # Replaced between the lookup and the open: look again.
            for handle in handles:
                handle.close()
        raise InternalError("The object changed too often while being opened.")

    def _checked_inline(self, info: ObjectInfo, data: bytes, inline_crc: Optional[int]) -> BodyReader:
        """Inline bytes (INLINE_LIMIT at most), checked whole now, whatever range is to be read.

        Cheaper than a Verifier per small GET (a CRC of 4 KiB takes a
        fraction of a microsecond), and a damaged one is refused before
        its answer begins. Rows from before CRCs are verified as they are
        read, against their MD5 ETag.
        """
        if inline_crc is None:
            return self._verifying(info, InlineBody(data), None)
        if crc32(data) != inline_crc:
            self._found(info, "its bytes fail the checksum recorded")
            raise ObjectDamaged()
        return InlineBody(data)

    def _verifying(self, info: ObjectInfo, body: BodyReader, inline_crc: Optional[int] = None) -> BodyReader:
        """*body*, checked against *info*'s recorded checksums as it is read (see storage/integrity.py).

        Its reads may run in a pool thread (a copy): what it finds is
        handed to the reactor.
        """
        checks = object_checks(info, inline_crc)
        if not checks:
            return body
        return VerifyingBody(
            body,
            Verifier(checks),
            damaged=lambda what: self._found(info, what),
            unverified=lambda: self.reactor.callFromThread(self._check_soon, info),
        )

    def _found(self, info: ObjectInfo, what: str) -> None:
        """A read (in any thread) found *info* damaged: refuse it from now on, and have it marked."""
        self._found_damaged[(info.bucket, info.key)] = (info.etag, info.modified)
        self.reactor.callFromThread(self.quarantine, info, what)

    def quarantine(self, info: ObjectInfo, what: str) -> Deferred:
        """Mark *info* (if still its key's object) damaged: refused to readers from now on, and reported."""
        log.error(
            "Bit rot: {bucket}/{key}: {what}. Its reads are refused until it is deleted or overwritten"
            " (run objectstore-manage scrub to check every object).",
            bucket=info.bucket,
            key=info.key,
            what=what,
        )
        marked = self.disk.write(lambda conn: rows.mark_damaged(conn, info, what))
        marked.addErrback(lambda failure: log.failure("Marking {key} damaged failed", failure, key=info.key))
        # Once the mark is in the index (or failed to go there), the row says what this said.
        marked.addBoth(self._forget_found, info)
        return marked

    def _forget_found(self, result: Any, info: ObjectInfo) -> Any:
        if self._found_damaged.get((info.bucket, info.key)) == (info.etag, info.modified):
            del self._found_damaged[(info.bucket, info.key)]
        return result

    def _check_soon(self, info: ObjectInfo) -> None:
        """A range read *info* without deciding its checks: have the scrubber read it whole."""
        if self.scrubber is not None:
            self.scrubber.check_soon(info.bucket, info.key)

    def new_writer(self, inline_limit: Optional[int] = None, size: Optional[int] = None) -> ObjectWriter:
        """A writer for an upload's bytes (inline while they are few: up to *inline_limit*, the store's by default).

        *size*: the length the upload declares, if it does. StorageFull if it
        would cross the free-space reserve: the body need not be read.
        """
        return self.disk.new_writer(self.inline_limit if inline_limit is None else inline_limit, size)

    async def put_object(
        self,
        bucket: str,
        key: str,
        writer: ObjectWriter,
        *,
        owner: str,
        acl: dict,
        headers: dict,
        metadata: dict,
        checksums: dict,
    ) -> ObjectInfo:
        """Publish what *writer* received as ``bucket/key``; durable on return.

        A blob's fsync runs in the commit batch that publishes it (see
        ``Index.write``): one trip to the writer thread, not two hops.
        """
        fields = dict(owner=owner, acl=acl, headers=headers, metadata=metadata, checksums=checksums)
        return await self._publish(writer, bucket, key, **fields)

    async def copy_object(
        self,
        source: ObjectInfo,
        body: BodyReader,
        bucket: str,
        key: str,
        *,
        owner: str,
        acl: dict,
        headers: dict,
        metadata: dict,
    ) -> ObjectInfo:
        """Copy *source* (an ObjectInfo, and its opened *body*) to ``bucket/key`` with new metadata."""
        if source.bucket == bucket and source.key == key:
            # Rewriting metadata in place: no need to copy the bytes.
            info = dataclasses.replace(
                source, modified=time.time(), owner=owner, acl=acl, headers=headers, metadata=metadata
            )
            return await self.disk.write_with_room(lambda conn: rows.rewrite_object_row(conn, info))
        claim = self.disk.space.claim(source.size)
        try:
            writer = await self.in_thread(copy_body, self.files, body, source.size, self.inline_limit, claim)
        except BaseException:
            claim.dropped()
            raise
        fields = dict(owner=owner, acl=acl, headers=headers, metadata=metadata, checksums=dict(source.checksums))
        return await self._publish(writer, bucket, key, **fields)

    async def _publish(self, writer, bucket, key, **fields):
        """Make what *writer* wrote the object ``bucket/key`` (or drop it, on failure)."""
        blob = writer.blob
        info = ObjectInfo(
            bucket=bucket,
            key=key,
            size=writer.size,
            etag=writer.md5.hexdigest(),
            modified=time.time(),
            segments=() if blob is None else (Segment(blob, 0, writer.size, writer.crc32),),
            **fields,
        )
        data = (writer.data(), writer.crc32) if blob is None else None
        try:
            # A blob is synced before the batch commits (a no-op if a copy already did).
            # An inline object's write is quick (see Index.write): a few statements.
            published = await self.disk.write(
                lambda conn: self._replace(conn, info, data),
                prepare=None if blob is None else writer.sync,
                quick=blob is None,
            )
        except BaseException:
            writer.abort()
            raise
        writer.published()
        return published

    def _replace(self, conn, info, data=None):
        """Make *info* the row of its key; *data*: its bytes and their CRC32, if kept inline."""
        replaced = rows.swap_object_row(conn, info, data)
        fresh = [s.blob for s in info.segments]
        if not fresh and not replaced:
            # Inline bytes replacing none or inline ones: no file to move home or unlink.
            return info
        return self.disk.publish(info, fresh, replaced)

    def set_object_acl(self, bucket: str, key: str, acl: dict, expected: ObjectInfo) -> Deferred:
        """Give ``bucket/key`` *acl* if it is still the object *expected* (an ObjectInfo read before).

        A Deferred of whether it was. The caller checked its right to change
        the ACL against *expected*: an overwrite (or another ACL change)
        committing meanwhile must not receive an ACL decided for what it
        replaced, so check and update are one statement. The object keeps
        its Last-Modified, as in S3.
        """
        return self.disk.write_with_room(lambda conn: rows.update_object_acl(conn, bucket, key, acl, expected))

    def delete_object(self, bucket: str, key: str) -> Deferred:
        return self.delete_objects(bucket, [key], quick=True)

    def delete_objects(self, bucket: str, keys: list[str], quick: bool = False) -> Deferred:
        """Delete keys (missing ones are no error, and cost no write); *quick*: few keys (see Index.write)."""

        def delete(conn):
            rows.require_bucket(conn, bucket)
            removed = []
            for key in keys:
                removed.extend(rows.remove_object_row(conn, bucket, key))
            return AfterCommit(None, self.disk.discard(removed))

        return self.disk.write(delete, quick=quick)

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", after: str = "", max_keys: int = 1000
    ) -> "Deferred[Listing]":
        """A page of the bucket's keys (runs in a pool thread)."""

        def scan():
            conn = self.index.reader()
            rows.require_bucket(conn, bucket)
            return list_keys(conn, bucket, prefix, delimiter, after, max_keys)

        return self.in_thread(scan)
