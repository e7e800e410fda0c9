"""Start-up recovery: what a crash left in tmp/ and in the garbage table is settled.

The crash states are built directly (a blob synced but never committed, a
row committed but its blob never renamed home, garbage never unlinked), and
for the first two also by killing a real process with SIGKILL.
"""

import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import pytest_twisted
from twisted.internet import reactor

from objectstore.errors import NoSuchKey
from objectstore.storage.records import ObjectInfo, RequestedPart, Segment
from objectstore.storage.store import Store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


def stopped_store(data_dir):
    """A store that is not serving: writes run in place, nothing is recovered."""
    store = Store(data_dir, reactor=reactor, inline_limit=0)
    store.open()
    store.index.write_now(
        lambda conn: conn.execute(
            "INSERT OR IGNORE INTO buckets (name, owner, created, region, acl) VALUES ('b', 'o', 0, 'r', '{}')"
        )
    )
    return store


def synced_blob(store, data):
    writer = store.new_writer()
    writer.write(data)
    writer.sync()
    return writer


def commit_without_publishing(store, key, writer):
    """Commit the object's row as a PUT does, then "crash" before the blob's rename home."""
    info = ObjectInfo(
        bucket="b",
        key=key,
        size=writer.size,
        etag=writer.md5.hexdigest(),
        modified=time.time(),
        owner="o",
        acl={},
        segments=(Segment(writer.blob, 0, writer.size),),
    )
    store.index.write_now(lambda conn: store._replace(conn, info).result)


def restarted(data_dir):
    store = Store(data_dir, reactor=reactor, inline_limit=0)
    store.start()
    return store


def read_whole(store, key):
    info, body = store.open_object("b", key)
    try:
        return body.read(0, info.size)
    finally:
        body.close()


def tmp_entries(data_dir):
    return os.listdir(os.path.join(data_dir, "tmp"))


def test_unreferenced_temp_blob_is_deleted(data_dir):
    store = stopped_store(data_dir)
    synced_blob(store, b"never committed")
    store.close()

    store = restarted(data_dir)
    store.close()

    assert tmp_entries(data_dir) == []
    assert [name for _, _, names in os.walk(os.path.join(data_dir, "blobs")) for name in names] == []


def test_committed_blob_left_in_tmp_is_moved_home_and_readable(data_dir):
    store = stopped_store(data_dir)
    writer = synced_blob(store, b"committed, not renamed")
    commit_without_publishing(store, "k", writer)
    store.close()

    store = restarted(data_dir)
    try:
        assert read_whole(store, "k") == b"committed, not renamed"
        assert os.path.exists(store.files.path(writer.blob))
    finally:
        store.close()
    assert tmp_entries(data_dir) == []


def test_garbage_rows_are_unlinked_and_cleared(data_dir):
    store = stopped_store(data_dir)
    old = synced_blob(store, b"old")
    commit_without_publishing(store, "k", old)
    store.files.move_home(old.blob)
    new = synced_blob(store, b"new")
    # The overwrite commits (old blob now garbage) and "crashes" before unlinking it.
    commit_without_publishing(store, "k", new)
    assert store.index.reader().execute("SELECT blob FROM garbage").fetchall() == [(old.blob,)]
    store.close()

    store = restarted(data_dir)
    try:
        assert read_whole(store, "k") == b"new"
        assert store.index.reader().execute("SELECT blob FROM garbage").fetchall() == []
    finally:
        store.close()
    assert not os.path.exists(store.files.path(old.blob))


def test_recovery_leaves_tmp_empty_whatever_the_mix(data_dir):
    store = stopped_store(data_dir)
    for i in range(5):
        synced_blob(store, b"orphan %d" % i)
    for i in range(5):
        commit_without_publishing(store, f"k{i}", synced_blob(store, b"committed %d" % i))
    store.close()

    store = restarted(data_dir)
    try:
        assert [read_whole(store, f"k{i}") for i in range(5)] == [b"committed %d" % i for i in range(5)]
    finally:
        store.close()
    assert tmp_entries(data_dir) == []


# -- a real process, killed -----------------------------------------------------------------

CRASHING_STORE = textwrap.dedent(
    """
    import sys
    import time
    from twisted.internet import defer, task
    from objectstore.storage.store import Store

    def hang(*args):
        print("READY", flush=True)
        time.sleep(600)  # in the index writer thread, right after the commit: wait for SIGKILL

    async def put(store, key, data):
        writer = store.new_writer()
        writer.write(data)
        await store.put_object("b", key, writer, owner="o", acl={}, headers={}, metadata={}, checksums={})

    async def main(reactor, data_dir, old_version, crash_point):
        store = Store(data_dir, reactor=reactor, inline_limit=0)
        store.start()
        await store.create_bucket("b", "o", "us-east-1", {})
        if old_version:
            await put(store, "k", old_version.encode())
            await store.index.tidied()  # its own rename home is done
        if crash_point == "before-commit":
            writer = store.new_writer()
            writer.write(b"new version")
            await store.in_thread(writer.sync)
            print("READY", flush=True)
        else:
            store.files.move_home = hang
            defer.ensureDeferred(put(store, "k", b"new version"))
        await defer.Deferred()

    task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
    """
)


def run_until_killed(data_dir, old_version, crash_point):
    """Run a store in a child process up to *crash_point*, then SIGKILL it."""
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_STORE, data_dir, old_version, crash_point],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 30)
        assert ready, "the child never reached its crash point"
        assert child.stdout.readline() == b"READY\n"
        assert tmp_entries(data_dir) != []  # the crash really leaves a blob behind
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()


@pytest.mark.parametrize(
    ("crash_point", "served"), [("before-commit", b"old version"), ("before-rename", b"new version")]
)
def test_killed_mid_overwrite_serves_a_whole_version_after_restart(data_dir, crash_point, served):
    run_until_killed(data_dir, "old version", crash_point)

    store = restarted(data_dir)
    try:
        assert read_whole(store, "k") == served
    finally:
        store.close()
    assert tmp_entries(data_dir) == []


def test_killed_before_the_first_commit_serves_no_such_key(data_dir):
    run_until_killed(data_dir, "", "before-commit")

    store = restarted(data_dir)
    try:
        with pytest.raises(NoSuchKey):
            store.get_object("b", "k")
    finally:
        store.close()
    assert tmp_entries(data_dir) == []


# -- multipart parts --------------------------------------------------------------------------


def commit_part_without_publishing(store, writer, number=1):
    """Commit an upload and a part row naming *writer*'s blob, then "crash" before the rename home."""

    def record(conn):
        conn.execute(
            "INSERT OR IGNORE INTO uploads (id, bucket, key, initiator, owner, acl, headers, metadata, created)"
            " VALUES ('u', 'b', 'k', 'o', 'o', '{}', '{}', '{}', 0)"
        )
        conn.execute(
            "INSERT INTO parts (upload, number, blob, size, etag, checksum, modified)"
            " VALUES ('u', ?, ?, ?, ?, '{}', 0)",
            (number, writer.blob, writer.size, writer.md5.hexdigest()),
        )

    store.index.write_now(record)


@pytest_twisted.ensureDeferred
async def test_a_committed_part_left_in_tmp_is_moved_home_and_completes(data_dir):
    store = stopped_store(data_dir)
    part = synced_blob(store, b"a part, committed, not renamed")
    commit_part_without_publishing(store, part)
    synced_blob(store, b"a part never committed")
    store.close()

    store = restarted(data_dir)
    try:
        assert os.path.exists(store.files.path(part.blob))
        completed = await store.multipart.complete("u", "b", "k", [RequestedPart(1, part.md5.hexdigest())])
        assert completed.size == part.size
        assert read_whole(store, "k") == b"a part, committed, not renamed"
    finally:
        store.close()
    assert tmp_entries(data_dir) == []
