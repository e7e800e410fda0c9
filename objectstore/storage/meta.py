"""The SQLite (WAL) metadata index and its single writer thread.

Reads are point lookups and range scans on a connection per thread. Writes go
to one thread that groups whatever is queued into a single transaction, so a
burst of small PUTs costs one commit (one fsync) instead of one each. Each
write runs inside its own savepoint: one failing write does not spoil the
others committed with it.
"""

import collections
import errno
import os
import queue
import sqlite3
import threading
import weakref

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from objectstore.errors import StorageFull

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    region TEXT NOT NULL,
    acl TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified REAL NOT NULL,
    owner TEXT NOT NULL,
    acl TEXT NOT NULL,
    headers TEXT NOT NULL,
    metadata TEXT NOT NULL,
    checksums TEXT NOT NULL,
    UNIQUE (bucket, key)
);
CREATE TABLE IF NOT EXISTS segments (
    object INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    blob TEXT NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    PRIMARY KEY (object, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS segments_by_blob ON segments (blob);
-- The bytes of small objects (see storage/writer.py), apart from the rows
-- so that listings do not wade through them.
CREATE TABLE IF NOT EXISTS inline_data (
    object INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
-- Blobs no row references any more, to unlink; kept so a crash between the
-- commit and the unlink leaves no orphan that needs a disk walk to find.
CREATE TABLE IF NOT EXISTS garbage (blob TEXT PRIMARY KEY) WITHOUT ROWID;
-- Multipart uploads in progress: what the object will be once completed
-- (storage/multipart.py). Ids start with the creation time in hex, so
-- (key, id) is S3's listing order: by key, then oldest first.
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiator TEXT NOT NULL,
    owner TEXT NOT NULL,
    acl TEXT NOT NULL,
    headers TEXT NOT NULL,
    metadata TEXT NOT NULL,
    checksum_algorithm TEXT,
    checksum_type TEXT,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, id);
CREATE INDEX IF NOT EXISTS uploads_by_age ON uploads (created);
-- The parts uploaded so far, each a blob of its own; completing the upload
-- makes them the segments of the object without copying a byte.
CREATE TABLE IF NOT EXISTS parts (
    upload TEXT NOT NULL,
    number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    checksum TEXT NOT NULL,
    modified REAL NOT NULL,
    PRIMARY KEY (upload, number)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS parts_by_blob ON parts (blob);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
) WITHOUT ROWID;
-- Registered machine images (objectstore/registry/); an image's file is
-- images/<id>/image in the data folder, there only once it is available.
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    type TEXT NOT NULL,
    architecture TEXT,
    kernel_id TEXT,
    ramdisk_id TEXT,
    block_devices TEXT NOT NULL,
    is_public INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    size INTEGER,
    sha1 TEXT,
    signature_verified INTEGER NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS images_by_owner ON images (owner);
-- Certificates users bundle images with: a manifest signed with the key of
-- one of its uploader's certificates counts as verified.
CREATE TABLE IF NOT EXISTS user_certificates (
    user_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    pem TEXT NOT NULL,
    added REAL NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_keys (
    access_key TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    created REAL NOT NULL
) WITHOUT ROWID;
"""

log = Logger()
_STOP = object()
MAX_BATCH = 512
# Batches whose tidying may wait for a quiet moment before it is forced.
MAX_BACKLOG = 64


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the base class cannot)."""


class AfterCommit:
    """A write's result plus work to do once its transaction is durable.

    The work (renaming a blob into place, unlinking replaced blobs) runs in
    the writer thread, in commit order, after the write's Deferred has fired,
    when no write is queued (or a backlog has built up): it is tidying, not
    part of what the client waits for. ``Metadata.tidied`` waits for it.
    """

    def __init__(self, result, action):
        self.result = result
        self.action = action


class Metadata:
    def __init__(self, path, durable, reactor, before_commit=None):
        self.path = path
        self.durable = durable
        self._reactor = reactor
        # Runs in the writer thread before the transaction of each batch
        # that has files to make durable, i.e. writes with a *prepare* (the
        # store syncs the tmp/ folder there: once per batch, not per blob).
        self._before_commit = before_commit or (lambda: None)
        self._local = threading.local()
        # The live connections of every thread, so close() can release them
        # all; a thread that ends takes its own connection with it.
        self._connections = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        first = not os.path.exists(path)
        conn = self._connect()
        if first:
            # Secrets live in this file (access keys): owner-only from birth.
            os.chmod(path, 0o600)
        conn.executescript(SCHEMA)
        self._queue = queue.SimpleQueue()
        self._thread = None

    def _connect(self):
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, factory=_Connection)
        with self._connections_lock:
            self._connections.add(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk when it returns, the promise behind a 200.
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def reader(self):
        """This thread's connection (autocommit: every statement sees the latest commit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def start(self):
        self._thread = threading.Thread(target=self._run, name="objectstore-meta-writer", daemon=True)
        self._thread.start()

    def stop(self):
        """Finish queued writes and their tidying, then stop the writer thread (blocking)."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def tidied(self):
        """A Deferred that fires once the after-commit actions of every earlier write ran."""
        d = Deferred()
        if self._thread is None:
            d.callback(None)
        else:
            self._queue.put(_Tidied(lambda: self._reactor.callFromThread(d.callback, None)))
        return d

    def close(self):
        """Stop the writer and close every connection: the index is done with."""
        self.stop()
        with self._connections_lock:
            connections, self._connections = list(self._connections), weakref.WeakSet()
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def write(self, operation, prepare=None):
        """Run ``operation(connection)`` in a transaction; a Deferred of its result.

        ``prepare`` (blocking, e.g. an fsync of the blob the row will name)
        runs in the writer thread before the batch's transaction; if it
        fails, the operation does not run and fails with it.

        The Deferred fires once the commit is durable; any ``AfterCommit``
        action runs afterwards, in commit order (``tidied`` waits for it).
        """
        write = _Write(operation, Deferred(), prepare)
        if self._thread is None:
            # Not serving yet (start-up, management commands): run in place.
            _fire([write], self._apply_and_tidy(self.reader(), [write]))
        else:
            self._queue.put(write)
        return write.deferred

    def write_now(self, operation):
        """Run a write synchronously; for start-up and management commands only."""
        outcome = self._apply_and_tidy(self.reader(), [_Write(operation)])[0]
        if isinstance(outcome, Failure):
            outcome.raiseException()
        return outcome

    def _apply_and_tidy(self, conn, batch):
        outcomes = self._apply(conn, batch)
        _tidy(outcomes)
        return [_result(outcome) for outcome in outcomes]

    def _run(self):
        """The writer thread: commit what is queued; tidy up when nothing is.

        Tidying (after-commit actions) waits for a quiet moment, or for a
        backlog, so commits do not queue behind renames and unlinks; and no
        other thread is involved, because every wake-up of another Python
        thread costs a round of GIL hand-offs.
        """
        conn = self._connect()
        backlog = collections.deque()
        while True:
            try:
                item = self._queue.get(block=not backlog)
            except queue.Empty:
                backlog.popleft()()
                continue
            if len(backlog) > MAX_BACKLOG:
                backlog.popleft()()
            batch, stopping = self._take_batch(item, backlog)
            if batch:
                outcomes = self._apply(conn, batch)
                self._reactor.callFromThread(_fire, batch, [_result(outcome) for outcome in outcomes])
                backlog.append(lambda outcomes=outcomes: _tidy(outcomes))
            if stopping:
                while backlog:
                    backlog.popleft()()
                return

    def _take_batch(self, item, backlog):
        """The writes queued now, starting with *item*; (batch, stop requested)."""
        batch = []
        while True:
            if item is _STOP:
                return batch, True
            if isinstance(item, _Tidied):
                # Fires once everything committed before it is tidied.
                backlog.append(item.fire)
            else:
                batch.append(item)
            if len(batch) >= MAX_BATCH:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _prepare(self, batch):
        """Run the batch's prepares in turn; a Failure (or None) for each write.

        In turn is enough: the first fsync commits the file system's journal
        for every file written so far, so the ones after it find little to do.
        """
        return [_attempt(write.prepare) for write in batch]

    def _apply(self, conn, batch):
        outcomes = []
        try:
            prepared = self._prepare(batch)
            if any(write.prepare is not None for write in batch):
                self._before_commit()
            conn.execute("BEGIN IMMEDIATE")
            for write, failure in zip(batch, prepared, strict=True):
                if failure is not None:
                    outcomes.append(failure)
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    outcomes.append(write.operation(conn))
                    conn.execute("RELEASE op")
                except Exception:
                    outcomes.append(_full_disk_as_storage_full(Failure()))
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except Exception:
            failure = _full_disk_as_storage_full(Failure())
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [failure] * len(batch)
        return outcomes


# SQLite's result code for "database or disk is full" (sqlite3.SQLITE_FULL from Python 3.11).
_SQLITE_FULL = 13


def _full_disk_as_storage_full(failure):
    """A full disk under the index (or the tmp/ folder sync) is StorageFull, as it is under the blobs."""
    error = failure.value
    if isinstance(error, sqlite3.OperationalError) and (
        getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL or str(error) == "database or disk is full"
    ):
        return Failure(StorageFull())
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return Failure(StorageFull())
    return failure


def _result(outcome):
    return outcome.result if isinstance(outcome, AfterCommit) else outcome


def _tidy(outcomes):
    """Run the after-commit actions of a committed batch, in order."""
    for outcome in outcomes:
        if isinstance(outcome, AfterCommit):
            try:
                outcome.action()
            except Exception:
                # The data is committed; a failed tidy-up must not turn a
                # durable write into an error. Start-up recovery finishes it.
                log.failure("after-commit action failed")


class _Tidied:
    """A marker in the write queue: *fire* once earlier writes are tidied."""

    def __init__(self, fire):
        self.fire = fire


class _Write:
    __slots__ = ("operation", "deferred", "prepare")

    def __init__(self, operation, deferred=None, prepare=None):
        self.operation = operation
        self.deferred = deferred
        self.prepare = prepare


def _attempt(prepare):
    if prepare is None:
        return None
    try:
        prepare()
    except Exception:
        return _full_disk_as_storage_full(Failure())
    return None


def _fire(batch, outcomes):
    for write, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, Failure):
            write.deferred.errback(outcome)
        else:
            write.deferred.callback(outcome)
