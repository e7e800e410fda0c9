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

import collections
import json
import os
import time

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from objectstore.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InternalError,
    NoSuchBucket,
    NoSuchKey,
)
from objectstore.index.database import INDEX_FILE, AfterCommit, Index
from objectstore.storage.blobs import BlobFiles
from objectstore.storage.bodies import InlineBody, ObjectBody, Pins, SegmentedBody
from objectstore.storage.datadir import lock_data_dir
from objectstore.storage.listing import list_keys
from objectstore.storage.multipart import Multipart
from objectstore.storage.records import Bucket, ObjectInfo, Segment
from objectstore.storage.writer import INLINE_LIMIT, ObjectWriter, copy_body

_OBJECT_COLUMNS = "id bucket key size etag modified owner acl headers metadata checksums".split()
# An object's row with one line per segment (one line with NULLs if it has none).
_OBJECT_WITH_SEGMENTS = (
    f"SELECT {', '.join('o.' + c for c in _OBJECT_COLUMNS)}, s.blob, s.offset, s.length"
    " FROM objects o LEFT JOIN segments s ON s.object = o.id WHERE o.bucket = ? AND o.key = ? ORDER BY s.seq"
)
# The same, plus the bytes of an object kept inline (NULL for one in blobs).
_OBJECT_WITH_BYTES = (
    f"SELECT {', '.join('o.' + c for c in _OBJECT_COLUMNS)}, s.blob, s.offset, s.length, d.data"
    " FROM objects o LEFT JOIN segments s ON s.object = o.id LEFT JOIN inline_data d ON d.object = o.id"
    " WHERE o.bucket = ? AND o.key = ? ORDER BY s.seq"
)


class Store:
    def __init__(self, data_dir, durable=True, reactor=None, io_threads=16, inline_limit=INLINE_LIMIT):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.data_dir = os.path.abspath(data_dir)
        # Making a Store touches no disk: open() (or start()) does, so that a
        # server that cannot listen creates nothing (see service.py).
        self._lock = None
        self.files = BlobFiles(self.data_dir, durable)
        self.inline_limit = inline_limit
        self.index = Index(os.path.join(self.data_dir, INDEX_FILE), durable, reactor, before_commit=self.files.sync_tmp)
        self._pool = ThreadPool(minthreads=0, maxthreads=io_threads, name="objectstore-io")
        # Blobs unlinked after a commit (by the tidier thread) whose garbage
        # rows the next write drops (in the writer thread).
        self._unlinked: collections.deque = collections.deque()
        # Blobs of multi-segment objects being read (see open_object).
        self._pins = Pins()
        # Bucket records by name (reactor thread only; see get_bucket).
        self._buckets = {}
        self.multipart = Multipart(self)

    # -- life cycle ------------------------------------------------------

    def open(self):
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

    def start(self):
        self.open()
        self.recover()
        self.files.make_spares()
        self.index.start()
        self._pool.start()

    def stop(self):
        self._pool.stop()
        self.index.stop()
        self.files.drop_spares()

    def close(self):
        self.stop()
        self.index.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def recover(self):
        """Settle what a crash left behind; run before serving."""
        conn = self.index.reader()
        for blob in self.files.leftovers():
            # An object's segment, or a part of an upload in progress.
            referenced = (
                conn.execute("SELECT 1 FROM segments WHERE blob = ?", (blob,)).fetchone()
                or conn.execute("SELECT 1 FROM parts WHERE blob = ?", (blob,)).fetchone()
            )
            if referenced:
                self.files.move_home(blob)
            else:
                self.files.unlink(blob)
        for (blob,) in conn.execute("SELECT blob FROM garbage").fetchall():
            self.files.unlink(blob)
        conn.execute("DELETE FROM garbage")

    def in_thread(self, f, *args, **kwargs):
        return deferToThreadPool(self.reactor, self._pool, f, *args, **kwargs)

    def _write(self, operation, prepare=None, quick=False):
        return self.index.write(self._forgetting_unlinked(operation), prepare=prepare, quick=quick)

    def _forgetting_unlinked(self, operation):
        def run(conn):
            done = []
            while self._unlinked:
                done.append((self._unlinked.popleft(),))
            if done:
                conn.executemany("DELETE FROM garbage WHERE blob = ?", done)
            return operation(conn)

        return run

    def _discard(self, blobs):
        """After-commit action: unlink blobs no row references any more.

        A blob an open read still needs is unlinked when the read lets go
        of it (see open_object); its garbage row stays until then.
        """

        def action():
            free = self._pins.claim(blobs)
            for blob in free:
                self.files.unlink(blob)
            self._unlinked.extend(free)

        return action

    def _release(self, blobs):
        """A read is done with *blobs*: unlink those it alone kept alive (in a thread)."""
        free = self._pins.release(blobs)
        if free:
            self.in_thread(self._unlink_now, free)

    def _unlink_now(self, blobs):
        for blob in blobs:
            self.files.unlink(blob)
        self._unlinked.extend(blobs)

    def _require_bucket(self, conn, name):
        if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is None:
            raise NoSuchBucket(BucketName=name)

    # -- buckets ---------------------------------------------------------

    def get_bucket(self, name):
        """The bucket's record; served from memory after the first look.

        Every change to a bucket row goes through this store, which drops
        the cached record when the change commits.
        """
        bucket = self._buckets.get(name)
        if bucket is not None:
            return bucket
        row = (
            self.index.reader()
            .execute("SELECT name, owner, created, region, acl FROM buckets WHERE name = ?", (name,))
            .fetchone()
        )
        if row is None:
            raise NoSuchBucket(BucketName=name)
        bucket = self._buckets[name] = _bucket(row)
        return bucket

    def _forget_bucket(self, name):
        def forget(result):
            self._buckets.pop(name, None)
            return result

        return forget

    def list_buckets(self, owner=None):
        sql = "SELECT name, owner, created, region, acl FROM buckets"
        args: tuple = ()
        if owner is not None:
            sql += " WHERE owner = ?"
            args = (owner,)
        return [_bucket(r) for r in self.index.reader().execute(sql + " ORDER BY name", args)]

    def create_bucket(self, name, owner, region, acl):
        bucket = Bucket(name, owner, time.time(), region, acl)

        def create(conn):
            row = conn.execute("SELECT owner FROM buckets WHERE name = ?", (name,)).fetchone()
            if row is not None:
                if row[0] == owner:
                    raise BucketAlreadyOwnedByYou(BucketName=name)
                raise BucketAlreadyExists(BucketName=name)
            conn.execute(
                "INSERT INTO buckets (name, owner, created, region, acl) VALUES (?, ?, ?, ?, ?)",
                (name, owner, bucket.created, region, json.dumps(acl)),
            )
            return bucket

        return self._write(create)

    def delete_bucket(self, name):
        def delete(conn):
            if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is None:
                raise NoSuchBucket(BucketName=name)
            if conn.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
                raise BucketNotEmpty(BucketName=name)
            conn.execute("DELETE FROM buckets WHERE name = ?", (name,))
            # Uploads in progress do not keep a bucket alive (as in S3): they go with it.
            uploads = [u for (u,) in conn.execute("SELECT id FROM uploads WHERE bucket = ?", (name,))]
            return AfterCommit(None, self._discard(self.multipart.drop_uploads(conn, uploads)))

        return self._write(delete).addBoth(self._forget_bucket(name))

    def set_bucket_acl(self, name, acl):
        def update(conn):
            cur = conn.execute("UPDATE buckets SET acl = ? WHERE name = ?", (json.dumps(acl), name))
            if cur.rowcount == 0:
                raise NoSuchBucket(BucketName=name)

        return self._write(update).addBoth(self._forget_bucket(name))

    # -- objects ---------------------------------------------------------

    def get_object(self, bucket, key):
        """The object's record (a point lookup, cheap enough for the reactor).

        Row and segments come from one statement, so from one snapshot: an
        overwrite or delete committing meanwhile cannot leave us a row whose
        segments are already gone.
        """
        return self._lookup(_OBJECT_WITH_SEGMENTS, bucket, key)[0]

    def _lookup(self, statement, bucket, key):
        conn = self.index.reader()
        rows = conn.execute(statement, (bucket, key)).fetchall()
        if not rows:
            if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
                raise NoSuchBucket(BucketName=bucket)
            raise NoSuchKey(Key=key)
        columns = len(_OBJECT_COLUMNS)
        segments = [r[columns : columns + 3] for r in rows if r[columns] is not None]
        return _object(rows[0][:columns], segments), rows[0][columns + 3 :]

    def open_object(self, bucket, key):
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
            info, (data,) = self._lookup(_OBJECT_WITH_BYTES, bucket, key)
            if not info.segments:
                return info, InlineBody(data or b"")
            if len(info.segments) > 1:
                body = self._pinned_body(info)
                if body is not None:
                    return info, body
                continue
            handles = []
            for segment in info.segments:
                handle = self.files.open(segment.blob)
                if handle is None:
                    break
                handles.append(handle)
            else:
                return info, ObjectBody(info.segments, handles)
            # Replaced between the lookup and the open: look again.
            for handle in handles:
                handle.close()
        raise InternalError("The object changed too often while being opened.")

    def _pinned_body(self, info):
        """A SegmentedBody over *info*'s blobs, pinned; None if the object was replaced meanwhile."""
        blobs = [segment.blob for segment in info.segments]
        self._pins.pin(blobs)
        # Still the object's first segment once pinned? Then it is still its
        # row (a blob belongs to one object row, whose segments go with it),
        # so no blob has been unlinked yet, and from now on none can be.
        if self.index.reader().execute("SELECT 1 FROM segments WHERE blob = ?", (blobs[0],)).fetchone():
            return SegmentedBody(info.segments, self.files, lambda: self._release(blobs))
        self._release(blobs)
        return None

    def new_writer(self, inline_limit=None):
        """A writer for an upload's bytes (inline while they are few: up to *inline_limit*, the store's by default)."""
        if self.files.needs_spares():
            self.in_thread(self.files.make_spares)
        return ObjectWriter(self.files, self.inline_limit if inline_limit is None else inline_limit)

    async def put_object(self, bucket, key, writer, *, owner, acl, headers, metadata, checksums):
        """Publish what *writer* received as ``bucket/key``; durable on return.

        A blob's fsync runs in the commit batch that publishes it (see
        ``Index.write``): one trip to the writer thread, not two hops.
        """
        fields = dict(owner=owner, acl=acl, headers=headers, metadata=metadata, checksums=checksums)
        return await self._publish(writer, bucket, key, **fields)

    async def copy_object(self, source, body, bucket, key, *, owner, acl, headers, metadata):
        """Copy *source* (an ObjectInfo, and its opened *body*) to ``bucket/key`` with new metadata."""
        if source.bucket == bucket and source.key == key:
            # Rewriting metadata in place: no need to copy the bytes.
            info = _replace_fields(source, owner=owner, acl=acl, headers=headers, metadata=metadata)
            return await self._write(lambda conn: self._rewrite(conn, info))
        writer = await self.in_thread(copy_body, self.files, body, source.size, self.inline_limit)
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
            segments=() if blob is None else (Segment(blob, 0, writer.size),),
            **fields,
        )
        data = writer.data() if blob is None else None
        try:
            # A blob is synced before the batch commits (a no-op if a copy already did).
            # An inline object's write is quick (see Index.write): a few statements.
            return await self._write(
                lambda conn: self._replace(conn, info, data),
                prepare=None if blob is None else writer.sync,
                quick=blob is None,
            )
        except BaseException:
            writer.abort()
            raise

    def _replace(self, conn, info, data=None):
        """Make *info* the row of its key; *data*: its bytes, if kept inline."""
        replaced = self._swap_row(conn, info, data)
        fresh = [s.blob for s in info.segments]
        if not fresh and not replaced:
            # Inline bytes replacing none or inline ones: no file to move home or unlink.
            return info
        discard = self._discard(replaced)

        def publish():
            for blob in fresh:
                self.files.move_home(blob)
            discard()

        return AfterCommit(info, publish)

    def _swap_row(self, conn, info, data=None):
        """Put *info*'s row (and segments) in place of its key's; the blobs that were the old object's.

        Few statements, as each costs the writer thread a round of GIL
        hand-offs with the reactor. A new key (the common case) is one
        INSERT, which also checks that the bucket exists; only if that
        inserts nothing is there an old row to remove (or no bucket).
        """
        row = (
            info.bucket,
            info.key,
            info.size,
            info.etag,
            info.modified,
            info.owner,
            _json(info.acl),
            _json(info.headers),
            _json(info.metadata),
            _json(info.checksums),
            info.bucket,
        )
        replaced = []
        if not self._insert_row(conn, info, row, data):
            replaced = self._remove_row(conn, info.bucket, info.key)
            if not self._insert_row(conn, info, row, data):
                raise NoSuchBucket(BucketName=info.bucket)
        return replaced

    def _insert_row(self, conn, info, row, data):
        """Insert *row* (*info*'s), its bytes or segments; False if its key has a row or its bucket is gone."""
        cursor = conn.execute(
            "INSERT INTO objects (bucket, key, size, etag, modified, owner, acl, headers, metadata, checksums)"
            " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM buckets WHERE name = ?)"
            " ON CONFLICT (bucket, key) DO NOTHING",
            row,
        )
        if cursor.rowcount != 1:
            return False
        object_id = cursor.lastrowid
        if data is not None:
            conn.execute("INSERT INTO inline_data (object, data) VALUES (?, ?)", (object_id, data))
        if info.segments:
            conn.executemany(
                "INSERT INTO segments (object, seq, blob, offset, length) VALUES (?, ?, ?, ?, ?)",
                [(object_id, i, s.blob, s.offset, s.length) for i, s in enumerate(info.segments)],
            )
        return True

    def _rewrite(self, conn, info):
        cur = conn.execute(
            "UPDATE objects SET modified = ?, owner = ?, acl = ?, headers = ?, metadata = ?"
            " WHERE bucket = ? AND key = ?",
            (
                info.modified,
                info.owner,
                json.dumps(info.acl),
                json.dumps(info.headers),
                json.dumps(info.metadata),
                info.bucket,
                info.key,
            ),
        )
        if cur.rowcount == 0:
            raise NoSuchKey(Key=info.key)
        return info

    def _remove_row(self, conn, bucket, key):
        """Delete a key's row; the blobs it referenced, now garbage."""
        row = conn.execute("SELECT id FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
        if row is None:
            return []
        blobs = [b for (b,) in conn.execute("SELECT blob FROM segments WHERE object = ?", row)]
        if blobs:
            conn.execute("DELETE FROM segments WHERE object = ?", row)
            conn.executemany("INSERT OR IGNORE INTO garbage (blob) VALUES (?)", [(b,) for b in blobs])
        else:
            conn.execute("DELETE FROM inline_data WHERE object = ?", row)
        conn.execute("DELETE FROM objects WHERE id = ?", row)
        return blobs

    def set_object_acl(self, bucket, key, acl, expected):
        """Give ``bucket/key`` *acl* if it is still the object *expected* (an ObjectInfo read before).

        A Deferred of whether it was. The caller checked its right to change
        the ACL against *expected*: an overwrite (or another ACL change)
        committing meanwhile must not receive an ACL decided for what it
        replaced, so check and update are one statement. The object keeps
        its Last-Modified, as in S3.
        """

        def update(conn):
            cur = conn.execute(
                "UPDATE objects SET acl = ? WHERE bucket = ? AND key = ? AND modified = ? AND etag = ?"
                " AND owner = ? AND acl = ?",
                (
                    json.dumps(acl),
                    bucket,
                    key,
                    expected.modified,
                    expected.etag,
                    expected.owner,
                    json.dumps(expected.acl),
                ),
            )
            if cur.rowcount:
                return True
            if conn.execute("SELECT 1 FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone() is None:
                if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
                    raise NoSuchBucket(BucketName=bucket)
                raise NoSuchKey(Key=key)
            return False

        return self._write(update)

    def delete_object(self, bucket, key):
        return self.delete_objects(bucket, [key], quick=True)

    def delete_objects(self, bucket, keys, quick=False):
        """Delete keys (missing ones are no error, and cost no write); *quick*: few keys (see Index.write)."""

        def delete(conn):
            if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
                raise NoSuchBucket(BucketName=bucket)
            removed = []
            for key in keys:
                removed.extend(self._remove_row(conn, bucket, key))
            return AfterCommit(None, self._discard(removed))

        return self._write(delete, quick=quick)

    def list_objects(self, bucket, prefix="", delimiter="", after="", max_keys=1000):
        """A page of the bucket's keys (runs in a pool thread)."""

        def scan():
            conn = self.index.reader()
            if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
                raise NoSuchBucket(BucketName=bucket)
            return list_keys(conn, bucket, prefix, delimiter, after, max_keys)

        return self.in_thread(scan)


def _bucket(row):
    name, owner, created, region, acl = row
    return Bucket(name, owner, created, region, json.loads(acl))


def _object(row, segments):
    _, bucket, key, size, etag, modified, owner, acl, headers, metadata, checksums = row
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=size,
        etag=etag,
        modified=modified,
        owner=owner,
        acl=json.loads(acl),
        headers=json.loads(headers),
        metadata=json.loads(metadata),
        checksums=json.loads(checksums),
        segments=tuple(Segment(*s) for s in segments),
    )


def _replace_fields(info, **changes):
    from dataclasses import replace

    return replace(info, modified=time.time(), **changes)


def _json(value):
    # Most objects carry no headers, metadata or checksums: no encoder for "{}".
    return "{}" if value == {} else json.dumps(value)


def bucket_names_owned_by(conn, owner: str) -> list:
    """The names of *owner*'s buckets, read on *conn*: for another package's transaction (deleting a user)."""
    return [name for (name,) in conn.execute("SELECT name FROM buckets WHERE owner = ? ORDER BY name", (owner,))]
