"""objectstore-manage backup and restore on a real data folder: what a backup holds, and what each refuses.

The folder is the one tests/unit/test_fsck.py builds with a real Store
(inline, blob and multipart objects, an upload in progress, images), plus
the admin keys and the cloud key pair as the server leaves them. Deletes
under a backup are made as the server makes them: the row goes in a write
of its own, then the blob is unlinked.
"""

import io
import json
import os
import sqlite3

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.defer import ensureDeferred

from objectstore import backup
from objectstore.index.database import INDEX_FILE, Index
from objectstore.index.schema import LATEST_VERSION
from objectstore.manage import main
from objectstore.registry import registrar
from objectstore.registry.cloudkey import CloudKey
from objectstore.service import ADMIN_CREDENTIALS, write_private
from objectstore.storage import rows
from objectstore.storage.datadir import DataDirInUse, lock_data_dir
from tests.helpers import started_store
from tests.unit.test_fsck import IMAGE, IMAGE_SIZE, SPACED_KEY, populate, put, snapshot


@pytest_twisted.async_fixture
async def folder(tmp_path):
    """A healthy data folder with its admin keys and cloud key pair, its store closed."""
    store = started_store(tmp_path / "data")
    try:
        made = await populate(store)
    finally:
        store.close()
    CloudKey(made.path).ensure()
    write_private(os.path.join(made.path, ADMIN_CREDENTIALS), "[default]\naws_access_key_id = AKID\n")
    return made


def run_backup(folder, dest, **options):
    err = io.StringIO()
    summary = backup.backup(folder.path, str(dest), err=err, **options)
    return summary, err.getvalue()


def run_restore(source, target, **options):
    err = io.StringIO()
    summary = backup.restore(str(source), str(target), err=err, **options)
    return summary, err.getvalue()


def delete_object(data_dir, key):
    """Delete *key* of bucket b as the server does: its row in one commit, then its blobs unlinked."""
    index = Index(os.path.join(data_dir, INDEX_FILE), durable=True, reactor=None).open()
    try:
        blobs = index.write_now(lambda conn: rows.remove_object_row(conn, "b", key))
    finally:
        index.close()
    for blob in blobs:
        os.unlink(os.path.join(data_dir, "blobs", blob[:2], blob))


def tree(path):
    """Every file under *path*, relative."""
    return sorted(os.path.relpath(os.path.join(w, n), path) for w, _, names in os.walk(path) for n in names)


# -- what a backup holds -------------------------------------------------------------


def test_a_backup_restores_to_the_same_files_and_rows(folder, tmp_path):
    summary, _ = run_backup(folder, tmp_path / "backup")
    restored, _ = run_restore(tmp_path / "backup", tmp_path / "restored")
    assert snapshot(str(tmp_path / "restored")) == snapshot(folder.path)
    assert (restored.objects, restored.blobs, restored.images) == (summary.objects, summary.blobs, summary.images)


def test_the_marker_records_what_the_backup_holds(folder, tmp_path):
    summary, _ = run_backup(folder, tmp_path / "backup")
    marker = json.loads((tmp_path / "backup" / backup.MARKER).read_text())
    # 4 objects: inline, blob, spaced, multi (2 parts); the upload in progress has 1 part.
    sizes = 5 + 100 * 1024 + 70 * 1024 + 5 * 1024 * 1024 + 4
    assert marker["format"] == "objectstore-backup" and marker["format_version"] == backup.FORMAT_VERSION
    assert (marker["objects"], marker["object_bytes"], marker["blobs"], marker["images"]) == (4, sizes, 5, 1)
    assert marker["bytes"] == summary.bytes == sizes - 5 + 100 + IMAGE_SIZE
    assert marker["schema_version"] == LATEST_VERSION and marker["rounds"] == 1
    assert marker["source"] == folder.path and marker["created"].endswith("Z")


def test_blobs_are_hard_linked_and_with_copy_they_are_copied(folder, tmp_path):
    run_backup(folder, tmp_path / "linked")
    run_backup(folder, tmp_path / "copied", link=False)
    source = os.stat(folder.blob_path(folder.blob))
    linked = os.stat(tmp_path / "linked" / "blobs" / folder.blob[:2] / folder.blob)
    copied = tmp_path / "copied" / "blobs" / folder.blob[:2] / folder.blob
    assert linked.st_ino == source.st_ino
    assert os.stat(copied).st_ino != source.st_ino
    assert copied.read_bytes() == open(folder.blob_path(folder.blob), "rb").read()


def test_the_backup_holds_the_index_files_and_the_referenced_files_only(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    blobs = sorted(os.path.join("blobs", b[:2], b) for b in os.listdir(folder.file("tmp")) + _home_blobs(folder))
    expected = sorted(
        [ADMIN_CREDENTIALS, "cloud-cert.pem", "cloud-key.pem", INDEX_FILE, backup.MARKER, f"images/{IMAGE}/image"]
        + blobs
    )
    assert tree(tmp_path / "backup") == expected


def _home_blobs(folder):
    return [name for _, _, names in os.walk(folder.file("blobs")) for name in names]


def test_modes_are_kept_and_secrets_stay_owner_only(folder, tmp_path):
    run_backup(folder, tmp_path / "backup", link=False)
    run_restore(tmp_path / "backup", tmp_path / "restored")

    def mode(*path):
        return oct(os.stat(os.path.join(*path)).st_mode & 0o777)

    for where in (tmp_path / "backup", tmp_path / "restored"):
        assert mode(where) == "0o700"
        assert mode(where, INDEX_FILE) == "0o600"
        assert mode(where, ADMIN_CREDENTIALS) == "0o600"
        assert mode(where, "cloud-key.pem") == "0o600"
        assert mode(where, "cloud-cert.pem") == mode(folder.path, "cloud-cert.pem") == "0o644"
        assert mode(where, "blobs", folder.blob[:2], folder.blob) == mode(folder.blob_path(folder.blob))


def test_the_backups_index_is_one_file_in_rollback_journal_mode(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    assert not os.path.exists(tmp_path / "backup" / f"{INDEX_FILE}-wal")
    conn = sqlite3.connect(tmp_path / "backup" / INDEX_FILE)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_a_restored_folder_is_served(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    run_restore(tmp_path / "backup", tmp_path / "restored")
    store = started_store(tmp_path / "restored")
    try:
        info, body = store.open_object("b", SPACED_KEY)
        try:
            data = body.read(0, info.size)
        finally:
            body.close()
        assert data == open(folder.blob_path(folder.spaced_blob), "rb").read()
    finally:
        store.close()


def test_restore_with_link_shares_the_backups_files(folder, tmp_path):
    run_backup(folder, tmp_path / "backup", link=False)
    run_restore(tmp_path / "backup", tmp_path / "restored", link=True)
    rel = os.path.join("blobs", folder.blob[:2], folder.blob)
    assert os.stat(tmp_path / "restored" / rel).st_ino == os.stat(tmp_path / "backup" / rel).st_ino


def test_the_image_file_name_is_the_registrars():
    assert backup.IMAGE_FILE == registrar.IMAGE_FILE


# -- deletes under a backup -------------------------------------------------------------


def test_a_blob_deleted_after_the_snapshot_makes_a_fresh_snapshot_without_it(folder, tmp_path):
    def delete_in_first_round(round_):
        if round_ == 1:
            delete_object(folder.path, "blob")

    summary, err = run_backup(folder, tmp_path / "backup", after_snapshot=delete_in_first_round)
    assert summary.rounds == 2 and summary.objects == 3
    assert "backup: 1 file(s) deleted since the snapshot: taking a new one" in err.splitlines()
    run_restore(tmp_path / "backup", tmp_path / "restored")
    assert snapshot(str(tmp_path / "restored")) == snapshot(folder.path)


def test_a_blob_missing_from_two_snapshots_is_damage_and_fails_at_once(folder, tmp_path):
    os.unlink(folder.blob_path(folder.blob))  # its row stays: the disk lost it
    with pytest.raises(backup.DataDirDamaged) as caught:
        run_backup(folder, tmp_path / "backup")
    assert str(caught.value) == (
        f"{folder.blob_path(folder.blob)} is missing, and still referenced by a later snapshot (1 file(s) so): "
        "the data folder is damaged (see objectstore-manage fsck)"
    )
    assert not os.path.exists(tmp_path / "backup")


@pytest_twisted.ensureDeferred
async def test_blobs_deleted_under_every_snapshot_give_up_after_max_rounds(tmp_path):
    """A real store writes and deletes beside the backup (run in a thread): each round's snapshot
    names a blob that is deleted before it is linked (the one put after the snapshot before)."""
    store = started_store(tmp_path / "data")
    made = await populate(store)

    async def churn(round_):
        await store.delete_object("b", "blob" if round_ == 1 else f"churn-{round_ - 1}")
        await put(store, f"churn-{round_}", os.urandom(100 * 1024))
        await store.index.tidied()  # the unlinks done

    def after_snapshot(round_):
        threads.blockingCallFromThread(reactor, lambda: ensureDeferred(churn(round_)))

    os.mkdir(tmp_path / "backup")
    err = io.StringIO()
    try:
        with pytest.raises(backup.SnapshotUnsettled) as caught:
            await threads.deferToThread(
                backup.backup, made.path, str(tmp_path / "backup"), err=err, max_rounds=3, after_snapshot=after_snapshot
            )
    finally:
        store.close()
    assert str(caught.value) == (
        f"files were deleted under each of 3 snapshots of {made.path}: try again when the store is less busy"
    )
    assert err.getvalue().count("file(s) deleted since the snapshot: taking a new one") == 3
    # The folder given is left as it was found: empty.
    assert os.listdir(tmp_path / "backup") == []


def test_a_short_blob_is_damage(folder, tmp_path):
    os.truncate(folder.blob_path(folder.blob), 10)
    with pytest.raises(backup.DataDirDamaged, match="is 10 bytes but the index records 102400"):
        run_backup(folder, tmp_path / "backup")


# -- refusals -------------------------------------------------------------------------------


def test_a_backup_into_a_folder_that_is_not_empty_is_refused_and_changes_nothing(folder, tmp_path):
    dest = tmp_path / "backup"
    dest.mkdir()
    (dest / "precious").write_text("mine")
    with pytest.raises(backup.DestinationNotEmpty, match="is not empty"):
        run_backup(folder, dest)
    assert tree(dest) == ["precious"]


def test_a_backup_onto_a_file_is_refused(folder, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(backup.DestinationNotEmpty, match="exists and is not a folder"):
        run_backup(folder, tmp_path / "file")


def test_a_backup_of_a_folder_without_an_index_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(backup.NotADataDir, match="is not an objectstore data folder"):
        backup.backup(str(tmp_path / "empty"), str(tmp_path / "backup"), err=io.StringIO())
    assert not os.path.exists(tmp_path / "backup")


def test_a_backup_inside_the_data_folder_is_refused(folder):
    with pytest.raises(backup.BackupError, match="must not contain one another"):
        run_backup(folder, os.path.join(folder.path, "backup"))


def test_restore_refuses_a_backup_without_its_marker(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    os.unlink(tmp_path / "backup" / backup.MARKER)  # as a backup cut short before its end
    with pytest.raises(backup.NotABackup, match="objectstore-backup.json is missing"):
        run_restore(tmp_path / "backup", tmp_path / "restored")
    assert not os.path.exists(tmp_path / "restored")


def test_restore_refuses_a_backup_from_a_newer_format(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    marker = tmp_path / "backup" / backup.MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "format_version": backup.FORMAT_VERSION + 1}))
    with pytest.raises(backup.NotABackup, match="made by a newer objectstore"):
        run_restore(tmp_path / "backup", tmp_path / "restored")


def test_restore_into_a_folder_that_is_not_empty_is_refused_and_changes_nothing(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    with pytest.raises(backup.DestinationNotEmpty, match="is not empty"):
        run_restore(tmp_path / "backup", folder.path)


def test_a_server_cannot_start_on_a_folder_being_restored(folder, tmp_path, monkeypatch):
    run_backup(folder, tmp_path / "backup")
    target = tmp_path / "restored"
    seen = []
    real_check = backup._check

    def check_after_a_server_tried(data_dir, index):
        # The moment before the index is named: a server starting now must be refused.
        with pytest.raises(DataDirInUse):
            lock_data_dir(data_dir)
        seen.append(data_dir)
        return real_check(data_dir, index)

    monkeypatch.setattr(backup, "_check", check_after_a_server_tried)
    run_restore(tmp_path / "backup", target)
    assert seen == [str(target)]
    os.close(lock_data_dir(str(target)))  # free once the restore is done


def test_restore_into_an_empty_folder_works(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    (tmp_path / "restored").mkdir()
    run_restore(tmp_path / "backup", tmp_path / "restored")
    assert snapshot(str(tmp_path / "restored")) == snapshot(folder.path)


def test_restore_of_a_backup_missing_a_blob_fails_and_leaves_the_folder_empty(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    os.unlink(tmp_path / "backup" / "blobs" / folder.part_blob[:2] / folder.part_blob)
    (tmp_path / "restored").mkdir()
    with pytest.raises(backup.DataDirDamaged, match=f"the backup lacks blobs/{folder.part_blob[:2]}/"):
        run_restore(tmp_path / "backup", tmp_path / "restored")
    assert os.listdir(tmp_path / "restored") == []


def test_restore_of_a_damaged_index_fails_the_integrity_check(folder, tmp_path):
    run_backup(folder, tmp_path / "backup")
    index = tmp_path / "backup" / INDEX_FILE
    conn = sqlite3.connect(index)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'objects'").fetchone()
    conn.close()
    data = bytearray(index.read_bytes())
    start = (root - 1) * page_size
    data[start : start + 12] = b"\xff" * 12  # the objects table's b-tree page header, as a bad sector leaves it
    index.write_bytes(bytes(data))
    with pytest.raises(backup.DataDirDamaged, match="the backup's index fails SQLite's integrity check"):
        run_restore(tmp_path / "backup", tmp_path / "restored")
    assert not os.path.exists(tmp_path / "restored")


# -- the command ----------------------------------------------------------------------------


def test_the_command_prints_progress_on_stderr_and_one_summary_line(capsys, folder, tmp_path):
    dest = str(tmp_path / "backup")
    assert main(["-d", folder.path, "backup", dest]) == 0
    out, err = capsys.readouterr()
    summary = json.loads((tmp_path / "backup" / backup.MARKER).read_text())
    assert out == (f"backup objects=4 blobs=5 images=1 bytes={summary['bytes']} dest={dest}\n")
    assert f"backup: 6/6 files, {summary['bytes'] // backup.MiB} MiB" in err.splitlines()
    assert main(["-d", str(tmp_path / "restored"), "restore", dest]) == 0
    out, err = capsys.readouterr()
    assert out == f"restore objects=4 blobs=5 images=1 bytes={summary['bytes']} data_dir={tmp_path / 'restored'}\n"
    assert err.splitlines()[-1] == "restore: checked: the index is whole and every file it references is there"


def test_the_command_refuses_with_status_1_and_one_line(capsys, folder, tmp_path):
    assert main(["-d", folder.path, "backup", folder.path + "-elsewhere"]) == 0
    capsys.readouterr()
    assert main(["-d", folder.path, "backup", folder.path + "-elsewhere"]) == 1
    out, err = capsys.readouterr()
    refused = f"objectstore-manage: {folder.path}-elsewhere is not empty: give an absent or empty folder\n"
    assert (out, err) == ("", refused)
    assert main(["-d", str(tmp_path / "r"), "restore", folder.path]) == 1
    assert capsys.readouterr().err == (
        f"objectstore-manage: {folder.path} is not a finished objectstore backup "
        "(objectstore-backup.json is missing: not a backup, or one cut short)\n"
    )


def test_backup_writes_nothing_into_the_folder_it_copies(folder, tmp_path):
    before = snapshot(folder.path), tree(folder.path)
    run_backup(folder, tmp_path / "backup")
    assert (snapshot(folder.path), tree(folder.path)) == before


def test_progress_lines_come_every_n_files(folder, tmp_path):
    _, err = run_backup(folder, tmp_path / "backup", progress_every=2)
    counts = [line.split(" files, ")[0] for line in err.splitlines() if " files, " in line]
    # Every 2 files (5 blobs and an image), and once more at the end of the round, with the MiB so far.
    assert counts == ["backup: 2/6", "backup: 4/6", "backup: 6/6", "backup: 6/6"]
    assert err.splitlines()[-2] == "backup: 6/6 files, 5 MiB"
