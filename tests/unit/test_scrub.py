"""Scrubbing: ``objectstore-manage scrub`` over a data folder, its pace, and the server's background scrub."""

import io
import os
import sqlite3
import time
import zlib

import pytest
import pytest_twisted

from objectstore import scrub as scrubbing
from objectstore.index.database import INDEX_FILE, Index
from objectstore.manage import main
from objectstore.registry.catalog import Catalog
from objectstore.storage import rows
from objectstore.storage.scrub import Pace, Stopped
from tests.helpers import eventually, started_store

KiB = 1024
ACL = {"owner": "o", "grants": []}


async def put(store, key, data):
    writer = store.new_writer()
    writer.write(data)
    return await store.put_object("b", key, writer, owner="o", acl=ACL, headers={}, metadata={}, checksums={})


@pytest_twisted.async_fixture
async def folder(tmp_path):
    """A stopped store's data folder with one inline object ("small") and two blob objects ("big", "other")."""
    path = str(tmp_path / "data")
    store = started_store(path)
    try:
        await store.create_bucket("b", "o", "us-east-1", ACL)
        await put(store, "small", os.urandom(2 * KiB))
        await put(store, "big", os.urandom(200 * KiB))
        await put(store, "other", os.urandom(150 * KiB))
        await store.index.tidied()
    finally:
        store.close()
    return path


def index(path):
    conn = sqlite3.connect(os.path.join(path, "meta.sqlite"), isolation_level=None)
    return conn


def segment_of(path, key):
    with index(path) as conn:
        return conn.execute(
            "SELECT s.blob, s.offset, s.length FROM segments s JOIN objects o ON o.id = s.object WHERE o.key = ?",
            (key,),
        ).fetchone()


def flip_blob(path, key, at=0):
    blob, offset, _ = segment_of(path, key)
    with open(os.path.join(path, "blobs", blob[:2], blob), "r+b") as f:
        f.seek(offset + at)
        byte = f.read(1)
        f.seek(offset + at)
        f.write(bytes([byte[0] ^ 0x01]))


def run_scrub(capsys, path, *argv):
    status = main(["--data-dir", path, "scrub", *argv])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_a_healthy_folder_reports_its_summary_only_and_exits_0(capsys, folder):
    status, lines, _ = run_scrub(capsys, folder)
    assert status == 0
    assert lines == [
        "summary objects=3 images=0 bytes=360448 damaged=0 quarantined=0 unreadable=0 uncheckable=0 crcs-recorded=0"
    ]


def test_a_flipped_byte_is_reported_exactly_once_marked_and_then_quarantined(capsys, folder):
    flip_blob(folder, "big", 1000)
    status, lines, _ = run_scrub(capsys, folder)
    assert (status, lines[:-1]) == (3, ['damaged-object b/big what="its bytes fail the checksum recorded"'])
    with index(folder) as conn:
        marks = dict(conn.execute("SELECT key, damage FROM objects"))
    assert marks == {"small": None, "big": "its bytes fail the checksum recorded", "other": None}
    status, lines, _ = run_scrub(capsys, folder)
    assert (status, lines[:-1]) == (3, ['quarantined-object b/big what="its bytes fail the checksum recorded"'])
    assert "damaged=0 quarantined=1 " in lines[-1]


def test_a_missing_blob_is_unreadable_and_left_to_fsck(capsys, folder):
    blob, _, _ = segment_of(folder, "other")
    os.unlink(os.path.join(folder, "blobs", blob[:2], blob))
    status, lines, _ = run_scrub(capsys, folder)
    assert (status, lines[:-1]) == (3, ['unreadable-object b/other what="part 1\'s blob is missing"'])
    with index(folder) as conn:
        assert conn.execute("SELECT damage FROM objects WHERE key = 'other'").fetchone() == (None,)


def test_rows_from_before_crcs_are_checked_by_their_etag_and_get_their_crcs(capsys, folder):
    with index(folder) as conn:
        conn.execute("UPDATE segments SET crc32 = NULL")
        conn.execute("UPDATE inline_data SET crc32 = NULL")
    flip_blob(folder, "other", 5)
    status, lines, _ = run_scrub(capsys, folder)
    assert (status, lines[:-1]) == (
        3,
        ['damaged-object b/other what="its bytes (against their MD5 ETag) fail the checksum recorded"'],
    )
    assert "crcs-recorded=2" in lines[-1]
    with index(folder) as conn:
        inline = conn.execute("SELECT data, crc32 FROM inline_data").fetchall()
        segments = conn.execute(
            "SELECT o.key, s.blob, s.offset, s.length, s.crc32 FROM segments s JOIN objects o ON o.id = s.object"
        ).fetchall()
    assert [crc for data, crc in inline] == [zlib.crc32(data) for data, _ in inline]
    recorded = {key: crc for key, _, _, _, crc in segments}
    # The damaged one keeps no CRC (its bytes are not what was written); the healthy one has its own.
    assert recorded["other"] is None
    blob, offset, length, crc = next((b, o, n, c) for k, b, o, n, c in segments if k == "big")
    with open(os.path.join(folder, "blobs", blob[:2], blob), "rb") as f:
        f.seek(offset)
        assert crc == zlib.crc32(f.read(length))
    # The next scrub checks them by their CRCs: none to record.
    status, lines, _ = run_scrub(capsys, folder)
    assert "crcs-recorded=0" in lines[-1]


def test_a_bad_rate_is_refused_and_nothing_is_read(capsys, folder):
    status, lines, err = run_scrub(capsys, folder, "--rate", "fast")
    assert (status, lines) == (1, [])
    assert err.startswith("objectstore-manage: --rate fast: ")


def test_progress_goes_to_stderr_and_the_summary_to_stdout(folder):
    out, err = io.StringIO(), io.StringIO()
    index = Index(os.path.join(folder, INDEX_FILE), durable=True, reactor=None).open()
    try:
        assert scrubbing.scrub(folder, index, out, err, progress_every=2) == 0
    finally:
        index.close()
    assert err.getvalue().splitlines() == ["scrub: objects: 2 checked, 0.2 MiB read"]
    assert out.getvalue().splitlines()[0].startswith("summary objects=3 ")


def test_pace_sleeps_off_what_was_read_and_stops_when_told():
    now = [100.0]
    slept = []

    def wait(seconds):
        slept.append(seconds)
        now[0] += seconds
        return False

    pace = Pace(1000, wait, clock=lambda: now[0])
    pace.spend(500)
    pace.spend(500)
    assert slept == [0.5, 0.5]
    now[0] += 60  # a quiet minute earns no burst
    pace.spend(1000)
    assert slept[-1] == 1.0
    with pytest.raises(Stopped):
        Pace(10, lambda seconds: True).spend(1)


# -- the background scrub ----------------------------------------------------


@pytest.fixture
def store_options():
    return {"inline_limit": 0}


@pytest_twisted.ensureDeferred
async def test_the_background_scrub_resumes_where_it_stopped_and_begins_a_pass_once_an_interval(store):
    await store.create_bucket("b", "o", "us-east-1", ACL)
    for key in ("one", "two", "three"):
        await put(store, key, os.urandom(10 * KiB))
    await store.index.tidied()
    conn = store.index.reader()
    ids = dict((key, object_id) for object_id, _, key in rows.objects_after(conn, 0, 10))
    for key in ("one", "three"):
        flip_blob(store.data_dir, key)
    # As if a pass stopped after "one": it goes on from "two", and finds only "three".
    started = time.time()
    await store.disk.write(lambda c: rows.save_scrub_progress(c, "background", f"objects:{ids['one']}", started))
    background = scrubbing.BackgroundScrub(
        store, Catalog(store.index), rate=0, interval=1.0, save_every=0, start_delay=0
    )
    background.start()
    try:
        await eventually(lambda: background.passes == 1)
        damage = dict(conn.execute("SELECT key, damage FROM objects"))
        assert damage == {"one": None, "two": None, "three": "its bytes fail the checksum recorded"}
        assert rows.read_scrub_progress(conn, "background") == ("done", started)
        # A second pass begins once the interval has passed since the first began, from the start.
        await eventually(lambda: background.passes == 2)
        assert conn.execute("SELECT damage FROM objects WHERE key = 'one'").fetchone()[0] is not None
        assert rows.read_scrub_progress(conn, "background")[1] >= started + 1.0
    finally:
        await background.stop()


@pytest_twisted.ensureDeferred
async def test_an_object_read_only_in_part_is_read_whole_before_the_pass_goes_on(store):
    await store.create_bucket("b", "o", "us-east-1", ACL)
    await put(store, "ranged", os.urandom(10 * KiB))
    await store.index.tidied()
    background = scrubbing.BackgroundScrub(store, Catalog(store.index), rate=0, interval=3600.0, start_delay=0)
    store.scrubber = background
    background.start()
    try:
        await eventually(lambda: background.passes == 1)  # the first pass, before the damage
        flip_blob(store.data_dir, "ranged", 9000)
        _, body = store.open_object("b", "ranged")
        assert len(body.read(0, 100)) == 100
        body.close()  # a range: its checks undecided, so the object is queued
        conn = store.index.reader()
        await eventually(lambda: conn.execute("SELECT damage FROM objects").fetchone()[0] is not None)
    finally:
        await background.stop()


@pytest_twisted.ensureDeferred
async def test_stopping_the_background_scrub_mid_pass_keeps_its_place(store):
    await store.create_bucket("b", "o", "us-east-1", ACL)
    for n in range(5):
        await put(store, f"k{n}", os.urandom(64 * KiB))
    await store.index.tidied()
    # 64 KiB a second: a pass of 320 KiB takes five seconds; it is stopped after one or two objects.
    background = scrubbing.BackgroundScrub(store, Catalog(store.index), rate=64 * KiB, save_every=0, start_delay=0)
    background.start()
    conn = store.index.reader()
    await eventually(lambda: (rows.read_scrub_progress(conn, "background") or ("",))[0] not in ("", "objects:0"))
    before = time.monotonic()
    await background.stop()
    assert time.monotonic() - before < 2.0  # the pace's sleep is cut short
    position = rows.read_scrub_progress(conn, "background")[0]
    assert position.startswith("objects:") and position != "objects:0"
    assert background.passes == 0


def test_an_old_object_with_nothing_to_check_against_gets_a_baseline_and_is_checked_from_then_on(capsys, folder):
    with index(folder) as conn:
        conn.execute("UPDATE segments SET crc32 = NULL")
        # An ETag that is no digest of the bytes (as an old release's copies could have).
        conn.execute("UPDATE objects SET etag = '0123456789abcdef0123456789abcdef-3' WHERE key = 'big'")
    status, lines, _ = run_scrub(capsys, folder)
    assert (status, lines[:-1]) == (0, [])
    assert "uncheckable=1 crcs-recorded=2" in lines[-1]
    flip_blob(folder, "big", 7)
    status, lines, _ = run_scrub(capsys, folder)
    assert (status, lines[:-1]) == (3, ['damaged-object b/big what="its bytes fail the checksum recorded"'])


@pytest_twisted.ensureDeferred
async def test_no_pass_goes_on_in_the_first_minute_but_queued_whole_reads_are_served(store):
    await store.create_bucket("b", "o", "us-east-1", ACL)
    await put(store, "ranged", os.urandom(10 * KiB))
    await store.index.tidied()
    flip_blob(store.data_dir, "ranged", 10)
    background = scrubbing.BackgroundScrub(store, Catalog(store.index), rate=0)
    background.start()
    try:
        background.check_soon("b", "ranged")
        conn = store.index.reader()
        await eventually(lambda: conn.execute("SELECT damage FROM objects").fetchone()[0] is not None)
        # Start-up is left alone: the pass has not begun, its place is not even written.
        assert rows.read_scrub_progress(conn, "background") is None and background.passes == 0
    finally:
        await background.stop()
