"""The disk store's PUT: durable before it is answered, published only after its commit."""

import hashlib
import os
import sqlite3

import pytest
import pytest_twisted
from twisted.internet import reactor

from objectstore.errors import NoSuchBucket, NoSuchKey
from objectstore.storage.datadir import DataDirInUse
from objectstore.storage.store import Store
from tests.helpers import started_store


@pytest.fixture
def store_options():
    """For the ``store`` fixture (tests/unit/conftest.py): every object in a blob, most tests here are about blobs."""
    return {"inline_limit": 0}


@pytest.fixture
def inline_store(tmp_path):
    """A store with the default limit: small objects live in the index."""
    store = started_store(tmp_path / "data")
    yield store
    store.close()


async def put(store, key, data, bucket="b"):
    writer = store.new_writer()
    writer.write(data)
    return await store.put_object(bucket, key, writer, owner="o", acl={}, headers={}, metadata={}, checksums={})


def fd_path(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


def tmp_entries(store):
    """tmp/ besides the spare temp files the store makes ahead of need."""
    return sorted(set(os.listdir(store.files.tmp)) - store.files.spare_names())


def row_committed(store, bucket, key):
    """Whether another connection (another process, after a crash) sees the row."""
    with sqlite3.connect(store.index.path) as conn:
        return conn.execute("SELECT 1 FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone() is not None


@pytest_twisted.ensureDeferred
async def test_put_syncs_blob_and_tmp_dir_before_the_commit_and_renames_after(store, monkeypatch):
    await store.create_bucket("b", "o", "r", {})
    events = []
    real_fsync, real_fdatasync, real_move_home = os.fsync, os.fdatasync, store.files.move_home

    # Each event records whether another connection could see the row yet.
    def fsync(fd):
        events.append(("fsync", fd_path(fd), row_committed(store, "b", "k")))
        real_fsync(fd)

    def fdatasync(fd):
        events.append(("fdatasync", fd_path(fd), row_committed(store, "b", "k")))
        real_fdatasync(fd)

    def move_home(blob):
        events.append(("rename", blob, row_committed(store, "b", "k")))
        real_move_home(blob)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(store.files, "move_home", move_home)

    info = await put(store, "k", b"payload")
    # The rename is tidying done after the answer: wait for the writer to get past it.
    await store.index.tidied()

    (segment,) = info.segments
    assert events[:2] == [
        ("fdatasync", store.files.tmp_path(segment.blob), False),
        ("fsync", store.files.tmp, False),
    ]
    assert ("rename", segment.blob, True) in events[2:]
    assert os.path.exists(store.files.path(segment.blob))
    assert tmp_entries(store) == []


@pytest_twisted.ensureDeferred
async def test_put_without_durability_skips_every_fsync(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "data"), durable=False, reactor=reactor, inline_limit=0)
    store.start()
    try:
        await store.create_bucket("b", "o", "r", {})
        synced = []
        monkeypatch.setattr(os, "fsync", synced.append)
        monkeypatch.setattr(os, "fdatasync", synced.append)
        await put(store, "k", b"payload")
    finally:
        store.close()
    assert synced == []


@pytest_twisted.ensureDeferred
async def test_put_into_a_missing_bucket_removes_its_temp_blob(store):
    with pytest.raises(NoSuchBucket):
        await put(store, "k", b"payload", bucket="missing")
    assert tmp_entries(store) == []


@pytest_twisted.ensureDeferred
async def test_failed_sync_removes_the_temp_blob_and_publishes_nothing(store, monkeypatch):
    await store.create_bucket("b", "o", "r", {})

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken_fsync)
    with pytest.raises(OSError):
        await put(store, "k", b"payload")
    monkeypatch.undo()

    assert tmp_entries(store) == []
    with pytest.raises(NoSuchKey):
        store.get_object("b", "k")


@pytest_twisted.ensureDeferred
async def test_overwrite_unlinks_the_old_blob_and_forgets_it(store):
    await store.create_bucket("b", "o", "r", {})
    old = await put(store, "k", b"old")
    await put(store, "k", b"new")
    await store.index.tidied()
    # The next write drops the garbage rows of blobs already unlinked.
    await store.create_bucket("c", "o", "r", {})

    assert not os.path.exists(store.files.path(old.segments[0].blob))
    assert store.index.reader().execute("SELECT blob FROM garbage").fetchall() == []


@pytest_twisted.ensureDeferred
async def test_open_object_keeps_reading_the_version_it_opened(store):
    await store.create_bucket("b", "o", "r", {})
    old = os.urandom(100_000)
    await put(store, "k", old)
    info, body = store.open_object("b", "k")
    first = body.read(0, 1000)

    await put(store, "k", b"new")
    await store.delete_object("b", "k")

    rest = b""
    while len(first) + len(rest) < info.size:
        rest += body.read(len(first) + len(rest), 65536)
    body.close()
    assert first + rest == old


@pytest_twisted.ensureDeferred
async def test_deleting_missing_keys_changes_nothing(store):
    await store.create_bucket("b", "o", "r", {})
    wal = store.index.path + "-wal"
    size = os.path.getsize(wal)

    for i in range(50):
        await store.delete_object("b", f"missing-{i}")

    assert os.path.getsize(wal) == size
    assert store.index.reader().execute("SELECT COUNT(*) FROM garbage").fetchone() == (0,)


def test_a_second_store_on_the_same_folder_is_refused(store):
    with pytest.raises(DataDirInUse):
        Store(store.data_dir, reactor=reactor).start()


@pytest_twisted.ensureDeferred
async def test_a_rename_that_fails_after_the_commit_loses_nothing(tmp_path, monkeypatch):
    data_dir = str(tmp_path / "data")
    store = Store(data_dir, reactor=reactor, inline_limit=0)
    store.start()
    try:
        await store.create_bucket("b", "o", "r", {})
        old = await put(store, "k", b"old")

        def broken_rename(blob):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(store.files, "move_home", broken_rename)
        await put(store, "k", b"new")  # acknowledged: the commit, not the rename, is the moment of truth
        assert read_whole(store, "k") == b"new"  # served from tmp/ meanwhile
    finally:
        store.close()
    monkeypatch.undo()

    store = Store(data_dir, reactor=reactor, inline_limit=0)
    store.start()
    try:
        assert read_whole(store, "k") == b"new"
    finally:
        store.close()
    assert os.listdir(os.path.join(data_dir, "tmp")) == []
    assert not os.path.exists(store.files.path(old.segments[0].blob))


def read_whole(store, key):
    info, body = store.open_object("b", key)
    try:
        return body.read(0, info.size)
    finally:
        body.close()


class RacingConnection:
    """The reactor's connection, with a commit from another thread landing right after the object lookup."""

    def __init__(self, conn, race):
        self._conn = conn
        self._race = race

    def execute(self, sql, *args):
        cursor = self._conn.execute(sql, *args)
        if "FROM objects" in sql and self._race is not None:
            race, self._race = self._race, None
            race()
        return cursor

    def __getattr__(self, name):
        return getattr(self._conn, name)


def delete_from_another_connection(store, bucket, key):
    def race():
        with sqlite3.connect(store.index.path, isolation_level=None) as other:
            (object_id,) = other.execute(
                "SELECT id FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
            other.execute("BEGIN IMMEDIATE")
            other.execute("DELETE FROM segments WHERE object = ?", (object_id,))
            other.execute("DELETE FROM objects WHERE id = ?", (object_id,))
            other.execute("COMMIT")

    return race


@pytest_twisted.ensureDeferred
async def test_object_lookup_is_one_snapshot_when_a_delete_commits_during_it(store, monkeypatch):
    await store.create_bucket("b", "o", "r", {})
    await put(store, "k", b"payload")
    conn = store.index.reader()
    monkeypatch.setattr(
        store.index, "reader", lambda: RacingConnection(conn, delete_from_another_connection(store, "b", "k"))
    )

    info = store.get_object("b", "k")

    # Either the object as it was, whole, or no object: never its row without its segments.
    assert info.size == len(b"payload")
    assert sum(segment.length for segment in info.segments) == info.size


@pytest_twisted.ensureDeferred
async def test_bucket_records_are_cached_until_their_row_changes(store):
    await store.create_bucket("b", "o", "r", {"owner": "o", "grants": []})
    assert store.get_bucket("b").acl == {"owner": "o", "grants": []}
    await store.set_bucket_acl("b", {"owner": "o", "grants": ["changed"]})
    assert store.get_bucket("b").acl == {"owner": "o", "grants": ["changed"]}
    await store.delete_bucket("b")
    with pytest.raises(NoSuchBucket):
        store.get_bucket("b")


# -- small objects kept in the index --------------------------------------------------


def index_rows(store, table):
    return store.index.reader().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


@pytest_twisted.ensureDeferred
async def test_a_small_put_is_one_commit_with_no_file_and_no_folder_sync(inline_store, monkeypatch):
    store = inline_store
    await store.create_bucket("b", "o", "r", {})
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd_path(fd)))
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd_path(fd)))

    info = await put(store, "k", b"payload")

    assert row_committed(store, "b", "k")  # durable when answered: SQLite's FULL commit
    assert synced == []  # no blob, so no blob or tmp/ folder to sync
    assert info.segments == ()
    assert (index_rows(store, "inline_data"), index_rows(store, "segments")) == (1, 0)
    assert read_whole(store, "k") == b"payload"
    await store.index.tidied()
    assert tmp_entries(store) == []
    assert os.listdir(store.files.home) == []


@pytest_twisted.ensureDeferred
async def test_an_object_over_the_limit_spills_into_a_blob_whole(inline_store):
    store = inline_store
    await store.create_bucket("b", "o", "r", {})
    at_limit, over = os.urandom(store.inline_limit), os.urandom(store.inline_limit + 1)
    writer = store.new_writer()
    for start in range(0, len(over), 1000):  # arriving in pieces that straddle the limit
        writer.write(over[start : start + 1000])
    spilled = await store.put_object("b", "over", writer, owner="o", acl={}, headers={}, metadata={}, checksums={})
    kept = await put(store, "at", at_limit)

    assert (kept.segments, len(spilled.segments)) == ((), 1)
    assert read_whole(store, "at") == at_limit
    assert read_whole(store, "over") == over
    assert spilled.etag == hashlib.md5(over).hexdigest()


@pytest_twisted.ensureDeferred
async def test_a_refused_spilled_upload_leaves_no_temp_blob(inline_store):
    store = inline_store
    writer = store.new_writer()
    writer.write(os.urandom(store.inline_limit * 2))
    with pytest.raises(NoSuchBucket):
        await store.put_object("missing", "k", writer, owner="o", acl={}, headers={}, metadata={}, checksums={})
    assert tmp_entries(store) == []


@pytest_twisted.ensureDeferred
async def test_an_inline_object_read_during_its_delete_is_whole_or_gone(inline_store, monkeypatch):
    store = inline_store
    await store.create_bucket("b", "o", "r", {})
    await put(store, "k", b"payload")
    conn = store.index.reader()
    delete = delete_from_another_connection(store, "b", "k")
    monkeypatch.setattr(store.index, "reader", lambda: RacingConnection(conn, delete))

    info, body = store.open_object("b", "k")

    # Row and bytes come from one statement: the delete cannot split them.
    assert body.read(0, info.size) == b"payload"
