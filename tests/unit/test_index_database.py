"""The metadata writer: queued writes share one transaction, but not each other's failures."""

import os
import sqlite3
import stat
import threading
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from objectstore.errors import BucketNotEmpty, StorageFull
from objectstore.index.database import BUSY_TIMEOUT_MS, AfterCommit, Index


@pytest.fixture
def meta(tmp_path):
    meta = Index(str(tmp_path / "meta.sqlite"), durable=True, reactor=reactor).open()
    meta.start()
    yield meta
    meta.stop()


def add_bucket(name):
    def write(conn):
        conn.execute("INSERT INTO buckets (name, owner, created, region, acl) VALUES (?, 'o', 0, 'r', '{}')", (name,))
        return name

    return write


def add_then_fail(name):
    """A write that changes a row, then fails: its change must not survive."""

    def write(conn):
        add_bucket(name)(conn)
        raise BucketNotEmpty(BucketName=name)

    return write


def bucket_names(meta, fresh=False):
    """Bucket names as this thread's connection (or, *fresh*, a new one) sees them."""
    if fresh:
        with sqlite3.connect(meta.path) as conn:
            return [name for (name,) in conn.execute("SELECT name FROM buckets ORDER BY name")]
    return [name for (name,) in meta.reader().execute("SELECT name FROM buckets ORDER BY name")]


def hold_writer(meta):
    """Block the writer thread on a write of its own, so later writes queue up behind it.

    Returns (the held write's Deferred, a function that releases it).
    """
    started, release = threading.Event(), threading.Event()

    def held(conn):
        started.set()
        release.wait(5)

    d = meta.write(held)
    assert started.wait(5)
    return d, release.set


def record_batches(meta):
    sizes = []
    apply = meta._apply

    def recording(conn, batch):
        sizes.append(len(batch))
        return apply(conn, batch)

    meta._apply = recording
    return sizes


@pytest_twisted.ensureDeferred
async def test_writes_queued_together_commit_as_one_batch(meta):
    held, release = hold_writer(meta)
    sizes = record_batches(meta)
    writes = [meta.write(add_bucket(f"b{i:03}")) for i in range(100)]

    release()
    await held
    await defer.gatherResults(writes)

    assert sizes == [100]
    assert bucket_names(meta) == [f"b{i:03}" for i in range(100)]


@pytest_twisted.ensureDeferred
async def test_a_failing_write_does_not_undo_the_others_in_its_batch(meta):
    held, release = hold_writer(meta)
    sizes = record_batches(meta)
    names = [f"b{i:03}" for i in range(60)]
    writes = [meta.write(add_then_fail(name) if i % 3 == 1 else add_bucket(name)) for i, name in enumerate(names)]

    release()
    await held
    outcomes = await defer.DeferredList(writes, consumeErrors=True)

    assert sizes == [60]
    failed = [names[i] for i, (ok, _) in enumerate(outcomes) if not ok]
    assert failed == names[1::3]
    assert all(outcome.check(BucketNotEmpty) for ok, outcome in outcomes if not ok)
    # The failing writes' own inserts were rolled back; everyone else's stand.
    assert bucket_names(meta) == [name for i, name in enumerate(names) if i % 3 != 1]


@pytest_twisted.ensureDeferred
async def test_after_commit_action_runs_after_the_commit_and_tidied_waits_for_it(meta):
    order = []

    def write(conn):
        add_bucket("b")(conn)
        # The action sees the row committed: another connection can read it.
        return AfterCommit("done", lambda: order.append(("action", bucket_names(meta, fresh=True))))

    result = await meta.write(write)
    await meta.tidied()

    assert result == "done"
    assert order == [("action", ["b"])]


@pytest_twisted.ensureDeferred
async def test_a_failing_after_commit_action_keeps_the_write(meta):
    def write(conn):
        add_bucket("b")(conn)
        return AfterCommit("done", lambda: 1 / 0)

    assert await meta.write(write) == "done"
    assert bucket_names(meta) == ["b"]


def test_stop_finishes_the_writes_already_queued(tmp_path):
    meta = Index(str(tmp_path / "meta.sqlite"), durable=True, reactor=reactor).open()
    meta.start()
    _, release = hold_writer(meta)
    for i in range(20):
        meta.write(add_bucket(f"b{i:02}"))

    release()
    meta.stop()

    assert bucket_names(meta) == [f"b{i:02}" for i in range(20)]


def test_the_database_file_is_private(tmp_path):
    path = tmp_path / "meta.sqlite"
    Index(str(path), durable=True, reactor=reactor).open()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_close_releases_every_connection_of_every_thread(tmp_path):
    meta = Index(str(tmp_path / "meta.sqlite"), durable=True, reactor=reactor).open()
    meta.start()
    readers = [threading.Thread(target=meta.reader) for _ in range(4)]
    for thread in readers:
        thread.start()
        thread.join()
    meta.reader()

    meta.close()

    assert open_files_under(tmp_path) == []


def open_files_under(folder):
    links = (os.path.join("/proc/self/fd", fd) for fd in os.listdir("/proc/self/fd"))
    targets = []
    for link in links:
        try:
            targets.append(os.readlink(link))
        except OSError:
            continue
    return [t for t in targets if t.startswith(str(folder))]


def disk_full(conn):
    add_bucket("written-before-the-disk-filled")(conn)
    raise sqlite3.OperationalError("database or disk is full")


@pytest_twisted.ensureDeferred
async def test_a_full_disk_under_the_index_is_storage_full(meta):
    with pytest.raises(StorageFull):
        await meta.write(disk_full)
    assert bucket_names(meta) == []


class CommitRefused:
    """A connection whose COMMIT fails as it does when the disk is full."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, *args):
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


@pytest_twisted.ensureDeferred
async def test_a_refused_commit_fails_every_write_of_its_batch_and_keeps_none(meta, monkeypatch):
    held, release = hold_writer(meta)
    writes = [meta.write(add_bucket(f"b{i}")) for i in range(5)]
    apply = meta._apply
    monkeypatch.setattr(meta, "_apply", lambda conn, batch: apply(CommitRefused(conn), batch))

    release()
    await held
    outcomes = await defer.DeferredList(writes, consumeErrors=True)

    assert all(not ok and outcome.check(StorageFull) for ok, outcome in outcomes)
    assert bucket_names(meta) == []


@pytest_twisted.ensureDeferred
async def test_a_failed_prepare_keeps_its_write_out_of_the_batch_and_the_others_in(meta):
    held, release = hold_writer(meta)
    prepared = []

    def failing_prepare():
        raise OSError(5, "Input/output error")

    writes = [
        meta.write(add_bucket("a"), prepare=lambda: prepared.append("a")),
        meta.write(add_bucket("c"), prepare=failing_prepare),
        meta.write(add_bucket("b"), prepare=lambda: prepared.append("b")),
    ]
    release()
    await held
    results = await defer.DeferredList(writes, consumeErrors=True)

    assert [ok for ok, _ in results] == [True, False, True]
    assert results[1][1].check(OSError)
    assert prepared == ["a", "b"]
    assert bucket_names(meta) == ["a", "b"]


def record_quick_batches(meta):
    sizes = []
    quick_batch = meta._quick_batch

    def recording(batch):
        sizes.append(len(batch))
        return quick_batch(batch)

    meta._quick_batch = recording
    return sizes


@pytest_twisted.ensureDeferred
async def test_quick_writes_queued_together_commit_as_one_batch(meta):
    held, release = hold_writer(meta)
    sizes = record_quick_batches(meta)
    writes = [meta.write(add_bucket(f"b{i:03}"), quick=True) for i in range(50)]

    release()
    await held
    assert await defer.gatherResults(writes) == [f"b{i:03}" for i in range(50)]

    assert sizes == [50]
    assert bucket_names(meta, fresh=True) == [f"b{i:03}" for i in range(50)]


@pytest_twisted.ensureDeferred
async def test_a_failing_quick_write_does_not_undo_the_others_in_its_batch(meta):
    held, release = hold_writer(meta)
    names = [f"b{i:02}" for i in range(30)]
    writes = [
        meta.write(add_then_fail(name) if i % 3 == 1 else add_bucket(name), quick=True) for i, name in enumerate(names)
    ]

    release()
    await held
    outcomes = await defer.DeferredList(writes, consumeErrors=True)

    failed = [names[i] for i, (ok, _) in enumerate(outcomes) if not ok]
    assert failed == names[1::3]
    assert all(outcome.check(BucketNotEmpty) for ok, outcome in outcomes if not ok)
    assert bucket_names(meta, fresh=True) == [name for i, name in enumerate(names) if i % 3 != 1]


@pytest_twisted.ensureDeferred
async def test_a_quick_write_alone_in_its_batch_that_fails_leaves_nothing(meta):
    with pytest.raises(BucketNotEmpty):
        await meta.write(add_then_fail("b"), quick=True)
    # The next write finds the connection out of any transaction.
    assert await meta.write(add_bucket("c"), quick=True) == "c"
    assert bucket_names(meta, fresh=True) == ["c"]


@pytest_twisted.ensureDeferred
async def test_a_quick_write_waits_for_another_process_lock_in_the_writer_thread_not_the_reactor(meta):
    other = sqlite3.connect(meta.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        written = meta.write(add_bucket("b"), quick=True)
        # The reactor did not sleep on the lock: the call returned well inside the busy timeout
        # (10 s) it would have slept for, however loaded the machine.
        assert time.monotonic() - started < BUSY_TIMEOUT_MS / 1000 / 2
        await deferLater(reactor, 0.2, lambda: None)
        assert not written.called
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert await written == "b"
    assert bucket_names(meta, fresh=True) == ["b"]


def test_stop_finishes_the_quick_writes_already_queued(tmp_path):
    meta = Index(str(tmp_path / "meta.sqlite"), durable=True, reactor=reactor).open()
    meta.start()
    _, release = hold_writer(meta)
    for i in range(20):
        meta.write(add_bucket(f"b{i:02}"), quick=True)

    release()
    meta.stop()

    assert bucket_names(meta) == [f"b{i:02}" for i in range(20)]
