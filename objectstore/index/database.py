"""The index: one SQLite (WAL) database for every package's records, and its single writer thread.

Reads are point lookups and range scans on a connection per thread. Writes
made while a batch commits wait, and then go together in one transaction,
so a burst of small PUTs costs one commit (one fsync) instead of one each.
Each write runs inside its own savepoint: one failing write does not spoil
the others committed with it. The commit (and any blocking file work)
happens in one writer thread; the statements of quick writes (a small PUT's
few) run in the reactor thread, as GIL hand-offs between threads cost more
than the statements do.
"""

import collections
import errno
import os
import queue
import sqlite3
import threading
import time
import weakref
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from objectstore.errors import StorageFull
from objectstore.index import schema

# The index's file in a data folder.
INDEX_FILE = "meta.sqlite"

log = Logger()
_STOP = object()
MAX_BATCH = 512
# How long a write waits for another process's (a management command's) to end.
BUSY_TIMEOUT_MS = 10000
# Batches whose tidying may wait for a quiet moment before it is forced.
MAX_BACKLOG = 64


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the base class cannot)."""


class AfterCommit:
    """A write's result plus work to do once its transaction is durable.

    The work (renaming a blob into place, unlinking replaced blobs) runs in
    the writer thread, in commit order, after the write's Deferred has fired,
    when no write is queued (or a backlog has built up): it is tidying, not
    part of what the client waits for. ``Index.tidied`` waits for it.
    """

    def __init__(self, result, action):
        self.result = result
        self.action = action


class Index:
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
        self._connections: weakref.WeakSet = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._opened = False
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = None
        # The writers' connection (while serving), used by one thread at a
        # time: the reactor's while no batch is in flight, else the writer's.
        self._conn: Any = None  # the writer thread's connection, while serving
        # Reactor side: the writes (and tidied() markers) waiting for the
        # batch in flight, if any, to commit.
        self._pending = []
        self._in_flight = None

    def open(self):
        """Create the index file (or open it) and its tables; returns self. Making one touches no disk."""
        if not self._opened:
            first = not os.path.exists(self.path)
            if not first:
                # Before connecting, which would set WAL mode in the file: a
                # newer release's index is refused untouched (migrate checks
                # again, past a WAL the header may lag behind).
                schema.refuse_if_newer(self.path)
            conn = self.reader()
            if first:
                # Secrets live in this file (access keys): owner-only from birth.
                os.chmod(self.path, 0o600)
            schema.migrate(conn, self.path)
            self._opened = True
        return self

    def _connect(self, busy_timeout=BUSY_TIMEOUT_MS):
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, factory=_Connection)
        with self._connections_lock:
            self._connections.add(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk when it returns, the promise behind a 200.
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
        conn.execute(f"PRAGMA busy_timeout={busy_timeout}")
        return conn

    def reader(self):
        """This thread's connection (autocommit: every statement sees the latest commit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def start(self):
        self.open()
        # No busy wait on the writers' connection: the reactor must never
        # sleep on a lock another process (a management command) holds;
        # the writer thread waits for it instead (see _begin).
        self._conn = self._connect(busy_timeout=0)
        self._thread = threading.Thread(target=self._run, args=(self._conn,), name="objectstore-index-writer")
        self._thread.daemon = True
        self._thread.start()

    def stop(self):
        """Finish queued writes and their tidying, then stop the writer thread (blocking)."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
            self._in_flight = None
            # What never reached the writer thread is written here, in place.
            pending, self._pending = self._pending, []
            writes = [item for item in pending if isinstance(item, _Write)]
            if writes:
                _fire(writes, self._apply_and_tidy(self.reader(), writes))
            for item in pending:
                if isinstance(item, _Tidied):
                    item.fire()

    def tidied(self):
        """A Deferred that fires once the after-commit actions of every earlier write ran."""
        d: Deferred = Deferred()
        if self._thread is None:
            d.callback(None)
            return d
        marker = _Tidied(lambda: self._reactor.callFromThread(d.callback, None))
        if self._pending:
            self._pending.append(marker)
        else:
            self._queue.put(marker)
        return d

    def close(self):
        """Stop the writer and close every connection: the index is done with."""
        self.stop()
        with self._connections_lock:
            connections, self._connections = list(self._connections), weakref.WeakSet()
        for conn in connections:
            conn.close()
        self._local = threading.local()
        self._conn = None

    def write(self, operation, prepare=None, quick=False):
        """Run ``operation(connection)`` in a transaction; a Deferred of its result.

        Call it from the reactor thread. Writes made while a batch commits
        wait, and go together in the next batch: one transaction, one WAL
        fsync. ``prepare`` (blocking, e.g. an fsync of the blob the row will
        name) runs in the writer thread before the batch's transaction; if
        it fails, the operation does not run and fails with it.

        A *quick* operation (a few statements on indexed rows, such as a
        small PUT's) runs in the reactor thread, only its batch's commit in
        the writer thread: each statement run in the writer thread would
        cost a round of GIL hand-offs with the reactor, several times what
        the statement itself costs. A batch with any other write runs
        wholly in the writer thread.

        The Deferred fires once the commit is durable; any ``AfterCommit``
        action runs afterwards, in commit order (``tidied`` waits for it).
        """
        write = _Write(operation, Deferred(), prepare, quick and prepare is None)
        if self._thread is None:
            # Not serving yet (start-up, management commands): run in place.
            _fire([write], self._apply_and_tidy(self.reader(), [write]))
        else:
            self._pending.append(write)
            if self._in_flight is None:
                self._send_batch()
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

    def _send_batch(self):
        """Send the writer thread the next batch: the pending writes, up to MAX_BATCH (reactor thread)."""
        batch: list = []
        markers: list = []
        taken = 0
        for item in self._pending:
            if isinstance(item, _Tidied):
                markers.append(item)
            elif len(batch) < MAX_BATCH:
                batch.append(item)
            else:
                break
            taken += 1
        del self._pending[:taken]
        if batch:
            self._in_flight = self._quick_batch(batch) if all(w.quick for w in batch) else _Batch(batch, self._apply)
            self._queue.put(self._in_flight)
        for marker in markers:
            self._queue.put(marker)

    def _quick_batch(self, batch):
        """Run a batch of quick writes here; a _Batch whose finishing (in the writer thread) commits them."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            # Locked by another process: the writer thread waits for the lock.
            return _Batch(batch, self._apply)
        try:
            outcomes = self._run_writes(conn, batch, [None] * len(batch))
        except Exception:
            outcomes = [self._abandon(conn)] * len(batch)
        return _Batch(batch, lambda conn, batch: self._commit(conn, outcomes))

    def _batch_done(self, batch, results):
        """The writer thread is done with *batch* (reactor thread): send the next one, answer this one."""
        if batch is self._in_flight:
            self._in_flight = None
            if self._pending:
                self._send_batch()
        _fire(batch.writes, results)

    def _run(self, conn):
        """The writer thread: commit each batch sent; tidy up when none is.

        Tidying (after-commit actions) waits for a quiet moment, or for a
        backlog, so commits do not queue behind renames and unlinks; and no
        other thread is involved, because every wake-up of another Python
        thread costs a round of GIL hand-offs.
        """
        backlog: collections.deque = collections.deque()
        while True:
            try:
                item = self._queue.get(block=not backlog)
            except queue.Empty:
                backlog.popleft()()
                continue
            if len(backlog) > MAX_BACKLOG:
                backlog.popleft()()
            if item is _STOP:
                while backlog:
                    backlog.popleft()()
                return
            if isinstance(item, _Tidied):
                # Fires once everything committed before it is tidied.
                backlog.append(item.fire)
                continue
            outcomes = item.finish(conn, item.writes)
            self._reactor.callFromThread(self._batch_done, item, [_result(outcome) for outcome in outcomes])
            backlog.append(lambda outcomes=outcomes: _tidy(outcomes))

    def _prepare(self, batch):
        """Run the batch's prepares in turn; a Failure (or None) for each write.

        In turn is enough: the first fsync commits the file system's journal
        for every file written so far, so the ones after it find little to do.
        """
        return [_attempt(write.prepare) for write in batch]

    def _apply(self, conn, batch):
        """Prepare, run and commit *batch* (blocking); an outcome for each write."""
        try:
            prepared = self._prepare(batch)
            if any(write.prepare is not None for write in batch):
                self._before_commit()
            _begin(conn)
            outcomes = self._run_writes(conn, batch, prepared)
        except Exception:
            return [self._abandon(conn)] * len(batch)
        return self._commit(conn, outcomes)

    def _run_writes(self, conn, batch, prepared):
        """Run the batch's operations in the open transaction; an outcome for each.

        Each write runs in a savepoint, so one that fails is undone without
        undoing the others; one alone in its batch needs none: if it fails,
        rolling the transaction back undoes it.
        """
        if len(batch) == 1 and prepared[0] is None:
            try:
                return [batch[0].operation(conn)]
            except Exception:
                failure = _full_disk_as_storage_full(Failure())
                conn.execute("ROLLBACK")
                return [failure]
        outcomes = []
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
        return outcomes

    def _commit(self, conn, outcomes):
        """Commit what the writes left in the transaction; their outcomes, or the commit's failure for each."""
        try:
            if conn.in_transaction:
                conn.execute("COMMIT")
        except Exception:
            return [self._abandon(conn)] * len(outcomes)
        return outcomes

    def _abandon(self, conn):
        """Roll back after a failure (being handled); the Failure to report."""
        failure = _full_disk_as_storage_full(Failure())
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return failure


def _begin(conn, patience=BUSY_TIMEOUT_MS / 1000):
    """BEGIN IMMEDIATE, waiting up to *patience* seconds for another process's write to end.

    The writers' connection has no busy timeout of its own (see start), so
    the writer thread waits here; other connections' busy timeout does it.
    """
    deadline = time.monotonic() + patience
    delay = 0.001
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", None) != _SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class _Batch:
    """Writes sent to the writer thread together, and how it finishes them: ``finish(conn, writes)``."""

    __slots__ = ("writes", "finish")

    def __init__(self, writes, finish):
        self.writes = writes
        self.finish = finish


# SQLite's result codes for "database or disk is full" and "database is locked"
# (sqlite3.SQLITE_FULL and SQLITE_BUSY from Python 3.11).
_SQLITE_FULL = 13
_SQLITE_BUSY = 5


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
    __slots__ = ("operation", "deferred", "prepare", "quick")

    def __init__(self, operation, deferred=None, prepare=None, quick=False):
        self.operation = operation
        self.deferred = deferred
        self.prepare = prepare
        self.quick = quick


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


def index_problem(data_dir):
    """Why the folder's index cannot be opened, judged from its header without opening it; None if it can."""
    path = os.path.join(data_dir, INDEX_FILE)
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"cannot read the index {path}: {e.strerror}"
    if header and not header.startswith(schema.SQLITE_HEADER):
        return f"the index {path} is not an SQLite database"
    # The header's version lags behind a WAL not yet checkpointed (after a
    # crash): opening the index checks again (schema.migrate).
    found = schema.version_in_header(header)
    if found is not None and found > schema.LATEST_VERSION:
        return str(schema.SchemaTooNew(path, found))
    return None
