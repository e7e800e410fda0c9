"""objectstore-manage fsck on a real data folder: healthy, then damaged one way at a time, then repaired.

The folder is written by a real Store (inline, blob and multipart objects,
an upload in progress) plus image rows and files as the registry leaves
them; the store is closed before fsck runs, unless a test needs a server's
lock held. Damage is made the way a disk or an operator makes it: files
deleted, truncated, grown or added, rows left behind.
"""

import io
import os
import shutil
import time
from dataclasses import dataclass

import pytest
import pytest_twisted

from objectstore import fsck
from objectstore.index.database import INDEX_FILE, Index
from objectstore.manage import main
from objectstore.registry.catalog import Catalog
from objectstore.registry.records import AVAILABLE, FAILED, PENDING, Image
from objectstore.storage import rows
from objectstore.storage.multipart import MIN_PART_SIZE
from objectstore.storage.records import RequestedPart
from tests.helpers import started_store

ACL = {"owner": "o", "grants": []}
IMAGE = "ami-0000abcd"
IMAGE_SIZE = 1234
SPACED_KEY = "odd key/with space"
ORPHAN = "ab" + "0" * 30


@dataclass
class Folder:
    """A populated data folder and the names in it the tests damage."""

    path: str
    blob: str  # the blob of key "blob" (100 KiB)
    spaced_blob: str  # the blob of SPACED_KEY (70 KiB)
    upload: str  # the upload in progress on key "pending"
    part_blob: str  # its part 1's blob (100 bytes)

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def blob_path(self, blob):
        return self.file("blobs", blob[:2], blob)


async def put(store, key, data):
    writer = store.new_writer()
    writer.write(data)
    return await store.put_object("b", key, writer, owner="o", acl=ACL, headers={}, metadata={}, checksums={})


async def put_part(store, upload, number, data):
    writer = store.multipart.new_part_writer()
    writer.write(data)
    return await store.multipart.upload_part(upload, number, writer, {})


def image(image_id, state, size=None):
    return Image(
        id=image_id,
        location="bundles/x.manifest.xml",
        owner="o",
        name=image_id,
        description="",
        type="machine",
        architecture="x86_64",
        kernel_id=None,
        ramdisk_id=None,
        block_devices=(),
        is_public=False,
        state=state,
        reason="it broke" if state == FAILED else None,
        size=size,
        sha1=None,
        signature_verified=False,
        created=time.time(),
    )


async def populate(store):
    await store.create_bucket("b", "o", "r", ACL)
    await put(store, "inline", b"small")
    blob = (await put(store, "blob", os.urandom(100 * 1024))).segments[0].blob
    spaced = (await put(store, SPACED_KEY, os.urandom(70 * 1024))).segments[0].blob
    create = dict(initiator="o", owner="o", acl=ACL, headers={}, metadata={}, checksum=(None, None))
    done = await store.multipart.create("b", "multi", **create)
    parts = [await put_part(store, done, 1, os.urandom(MIN_PART_SIZE)), await put_part(store, done, 2, b"tail")]
    await store.multipart.complete(done.id, "b", "multi", [RequestedPart(p.number, p.etag) for p in parts])
    pending = await store.multipart.create("b", "pending", **create)
    await put_part(store, pending, 1, os.urandom(100))
    (part_blob,) = store.index.reader().execute("SELECT blob FROM parts WHERE upload = ?", (pending.id,)).fetchone()
    # As the registry leaves them: an available image with its file, one in flight and one failed without.
    catalog = Catalog(store.index)
    await catalog.add(image(IMAGE, AVAILABLE, IMAGE_SIZE))
    await catalog.add(image("ami-0000beef", PENDING))
    await catalog.add(image("ami-0000dead", FAILED))
    os.makedirs(os.path.join(store.data_dir, "images", IMAGE))
    with open(os.path.join(store.data_dir, "images", IMAGE, "image"), "wb") as f:
        f.write(os.urandom(IMAGE_SIZE))
    await store.index.tidied()
    return Folder(store.data_dir, blob, spaced, pending.id, part_blob)


@pytest_twisted.async_fixture
async def folder(tmp_path):
    """A healthy data folder, its store closed (no server holds it)."""
    store = started_store(tmp_path / "data")
    try:
        return await populate(store)
    finally:
        store.close()


def manage(capsys, folder, *argv):
    """(exit status, stdout lines, stderr) of ``objectstore-manage -d FOLDER fsck ARGV``."""
    status = main(["-d", folder.path, "fsck", *argv])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def summary(**counts):
    values = dict(
        objects=4, segments=4, uploads=1, parts=1, blobs=5, tmp=0, tmp_committed=0, garbage=0, images=3, findings=0
    )
    values.update(counts)
    values.setdefault("repaired", 0)
    return "summary " + " ".join(f"{name.replace('_', '-')}={n}" for name, n in values.items())


def snapshot(path):
    """Every file under *path* (but the lock, which a holder rewrites) with its bytes, and the index's rows."""
    files = {}
    for where, _, names in os.walk(path):
        for name in names:
            full = os.path.join(where, name)
            if name != "lock" and not name.startswith(INDEX_FILE):
                with open(full, "rb") as f:
                    files[os.path.relpath(full, path)] = f.read()
    index = Index(os.path.join(path, INDEX_FILE), durable=False, reactor=None).open()
    try:
        conn = index.reader()
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return files, {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        index.close()


def write_file(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x" * size)


# -- healthy -----------------------------------------------------------------


def test_a_healthy_folder_reports_nothing_but_its_summary_and_exits_0(capsys, folder):
    status, out, err = manage(capsys, folder)
    assert (status, out, err) == (0, [summary()], "")


def test_fsck_changes_nothing(capsys, folder):
    write_file(folder.file("blobs", "ab", ORPHAN), 10)
    before = snapshot(folder.path)
    assert manage(capsys, folder)[0] == fsck.EXIT_DAMAGE
    assert snapshot(folder.path) == before


# -- each kind of damage -------------------------------------------------------
# Each: how it is made, the line it must be reported with, and what --repair does (None: reported only).


def orphan_blob(f):
    write_file(f.blob_path(ORPHAN), 12345)
    return f"orphan-blob blobs/ab/{ORPHAN} size=12345", "deleted", dict(blobs=6)


def stale_tmp(f):
    write_file(f.file("tmp", "leftover"), 3)
    return "stale-tmp tmp/leftover size=3", "deleted", dict(tmp=1)


def missing_blob(f):
    os.unlink(f.blob_path(f.spaced_blob))
    return f"missing-blob b/odd%20key/with%20space blob={f.spaced_blob}", None, dict(blobs=4)


def short_blob(f):
    os.truncate(f.blob_path(f.blob), 10)
    return f"short-blob b/blob blob={f.blob} needs={100 * 1024} size=10", None, {}


def missing_part_blob(f):
    os.unlink(f.blob_path(f.part_blob))
    line = f"missing-part-blob b/pending upload={f.upload} part=1 blob={f.part_blob}"
    return line, "upload-dropped", dict(blobs=4)


def wrong_size_part_blob(f):
    with open(f.blob_path(f.part_blob), "ab") as blob:
        blob.write(b"!")
    line = f"wrong-size-part-blob b/pending upload={f.upload} part=1 blob={f.part_blob} expected=100 size=101"
    return line, "upload-dropped", {}


def missing_image(f):
    os.unlink(f.file("images", IMAGE, "image"))
    return f"missing-image images/{IMAGE}/image image={IMAGE}", None, {}


def wrong_size_image(f):
    os.truncate(f.file("images", IMAGE, "image"), 1000)
    return f"wrong-size-image images/{IMAGE}/image image={IMAGE} expected={IMAGE_SIZE} size=1000", None, {}


def orphan_image_folder(f):
    write_file(f.file("images", "ami-0000f00d", "image.partial"), 5)
    return "orphan-image-folder images/ami-0000f00d", "deleted", {}


DAMAGE = [
    orphan_blob,
    stale_tmp,
    missing_blob,
    short_blob,
    missing_part_blob,
    wrong_size_part_blob,
    missing_image,
    wrong_size_image,
    orphan_image_folder,
]
REPAIRABLE = [orphan_blob, stale_tmp, missing_part_blob, wrong_size_part_blob, orphan_image_folder]
REPORTED_ONLY = [d for d in DAMAGE if d not in REPAIRABLE]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__)
def test_each_kind_of_damage_is_reported_on_one_exact_line_with_exit_status_3(capsys, folder, damage):
    line, _, counts = damage(folder)
    status, out, _ = manage(capsys, folder)
    assert (status, out) == (3, [line, summary(findings=1, **counts)])


@pytest.mark.parametrize("damage", REPAIRABLE, ids=lambda d: d.__name__)
def test_repair_fixes_what_is_safe_and_a_second_fsck_is_clean(capsys, folder, damage):
    line, repaired, counts = damage(folder)
    status, out, _ = manage(capsys, folder, "--repair")
    assert (status, out) == (0, [f"{line} repaired={repaired}", summary(findings=1, repaired=1, **counts)])

    status, out, _ = manage(capsys, folder)
    if repaired == "upload-dropped":
        # The upload and its rows are gone, and with them the part's blob.
        assert (status, out) == (0, [summary(uploads=0, parts=0, blobs=4)])
        assert not os.path.exists(folder.blob_path(folder.part_blob))
    else:
        assert (status, out) == (0, [summary()])


@pytest.mark.parametrize("damage", REPORTED_ONLY, ids=lambda d: d.__name__)
def test_repair_leaves_objects_and_images_whose_bytes_are_missing_or_short_and_says_so(capsys, folder, damage):
    line, _, counts = damage(folder)
    before = snapshot(folder.path)
    status, out, _ = manage(capsys, folder, "--repair")
    assert (status, out) == (3, [line, summary(findings=1, **counts)])
    assert snapshot(folder.path) == before


def test_the_rest_of_the_store_reads_the_same_after_a_repair(capsys, folder):
    store = started_store(folder.path)
    try:
        expected = {key: read(store, key) for key in ("inline", "blob", SPACED_KEY, "multi")}
    finally:
        store.close()
    orphan_blob(folder)
    missing_part_blob(folder)

    assert manage(capsys, folder, "--repair")[0] == 0
    store = started_store(folder.path)
    try:
        assert {key: read(store, key) for key in expected} == expected
    finally:
        store.close()


def read(store, key):
    info, body = store.open_object("b", key)
    try:
        chunks, offset = [], 0
        while offset < info.size:
            chunks.append(body.read(offset, info.size - offset))
            offset += len(chunks[-1])
        return b"".join(chunks)
    finally:
        body.close()


# -- what is not damage ----------------------------------------------------------


def test_a_blob_listed_in_garbage_is_not_damage_and_repair_finishes_its_unlink(capsys, folder):
    # A delete whose commit happened and whose unlink a crash interrupted.
    index = Index(folder.file(INDEX_FILE), durable=False, reactor=None).open()
    try:
        index.write_now(lambda conn: rows.remove_object_row(conn, "b", "blob"))
    finally:
        index.close()
    assert os.path.exists(folder.blob_path(folder.blob))
    counts = dict(objects=3, segments=3, garbage=1)
    assert manage(capsys, folder)[:2] == (0, [summary(**counts)])

    assert manage(capsys, folder, "--repair")[:2] == (0, [summary(**counts)])
    assert not os.path.exists(folder.blob_path(folder.blob))
    assert manage(capsys, folder)[:2] == (0, [summary(objects=3, segments=3, blobs=4)])


def test_a_committed_blob_not_yet_renamed_home_is_found_in_tmp_and_not_damage(capsys, folder):
    # The crash came between the commit and the rename: the next start moves it home.
    os.rename(folder.blob_path(folder.blob), folder.file("tmp", folder.blob))
    assert manage(capsys, folder)[:2] == (0, [summary(blobs=4, tmp=1, tmp_committed=1)])


# -- beside a server ---------------------------------------------------------------


@pytest.fixture
def served(folder):
    """*folder* with a store serving it (holding its lock), as a running server does."""
    store = started_store(folder.path)
    yield folder
    store.close()


def test_repair_is_refused_while_a_server_holds_the_lock_and_changes_nothing(capsys, served):
    orphan_blob(served)
    before = snapshot(served.path)
    status, out, err = manage(capsys, served, "--repair")
    assert (status, out) == (1, [])
    assert err == (
        f"objectstore-manage: {served.path} is already served by another objectstore (pid {os.getpid()}): "
        "stop it before fsck --repair (fsck without --repair may run beside it)\n"
    )
    assert snapshot(served.path) == before


def test_beside_a_server_tmp_is_not_judged_but_other_damage_is_reported(capsys, served):
    # The server's spares are in tmp/ (unreferenced, and as old as the server), and a leftover looks the same.
    write_file(served.file("tmp", "leftover"), 3)
    line, _, counts = orphan_blob(served)
    status, out, err = manage(capsys, served)
    spares = len(os.listdir(served.file("tmp")))
    assert (status, out) == (3, [line, summary(findings=1, tmp=spares, **counts)])
    assert f"a server (pid {os.getpid()}) is running on {served.path}: checking beside it" in err
    assert "a server is running: tmp/ is its own (spares, uploads in flight), not checked" in err


def test_progress_goes_to_stderr_every_n_items_and_findings_to_stdout(folder):
    out, err = io.StringIO(), io.StringIO()
    index = Index(folder.file(INDEX_FILE), durable=True, reactor=None).open()
    try:
        status = fsck.fsck(folder.path, index, out, err, progress_every=2)
    finally:
        index.close()
    assert status == 0
    assert out.getvalue() == summary() + "\n"
    assert "fsck: blobs: 2 checked\nfsck: blobs: 4 checked\n" in err.getvalue()
    assert "fsck: segments: 4 checked\n" in err.getvalue()


def test_a_folder_without_an_index_is_refused(capsys, tmp_path):
    status = main(["-d", str(tmp_path / "nothing"), "fsck"])
    _, err = capsys.readouterr()
    assert status == 1 and "meta.sqlite is missing" in err


def test_help_says_what_repair_does_and_does_not(capsys):
    assert main(["fsck", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--repair is refused while a server runs" in out
    assert "It never deletes an object or image whose bytes are missing or short" in out


def test_an_in_flight_images_folder_is_not_an_orphan(capsys, folder):
    # Registration writes image.partial into a folder whose row says pending.
    write_file(folder.file("images", "ami-0000beef", "image.partial"), 7)
    assert manage(capsys, folder)[:2] == (0, [summary()])
    shutil.rmtree(folder.file("images", "ami-0000beef"))
