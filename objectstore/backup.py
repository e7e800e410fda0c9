"""``objectstore-manage backup DEST`` and ``restore SOURCE``: a point-in-time copy of a data folder, and its return.

A backup is taken beside a running server, which holds the folder's lock,
so it works on the files directly and writes nothing to the folder:

1. **The snapshot.** A read-only connection opens a read transaction on
   meta.sqlite and copies the whole index into DEST with SQLite's online
   backup (``Connection.backup``, one step, inside that transaction). In
   WAL mode a reader never blocks the server's writers nor waits for them,
   so writes go on meanwhile; the copy is the index as of the moment the
   transaction began. The transaction then ends. It must stay short: while
   it is open the server's checkpoints cannot get past it and its WAL
   grows. It lasts only as long as the index copy; nothing else happens in it.
2. **The blobs.** Every blob the copy references (objects' segments,
   uploads' parts) and every image file it lists as available is
   hard-linked into DEST (copied if DEST is on another file system). A
   blob's bytes never change once it is committed (blobs.py: written in
   tmp/, synced, then only renamed home; an overwrite writes a new blob),
   so the link holds exactly the bytes the copy refers to, and a delete
   after it cannot take them away. Blobs are looked for at home, in tmp/
   (committed but not yet renamed), and at home again.
3. **A blob gone.** The server unlinks a blob once the commit that drops
   its last reference is durable. One the copy references may be gone by
   the time it is linked: it was deleted after the snapshot. The round is
   then taken again from a fresh snapshot (what was linked stays: blob ids
   are random and never come back), up to ``MAX_ROUNDS``. A blob missing
   in two rounds in a row was not deleted meanwhile (references are never
   given back): that is damage, and the backup fails at once, naming it.
4. **The marker.** The data folder's other files (admin.credentials, the
   cloud key pair) are copied with their modes, everything is synced, and
   ``objectstore-backup.json`` is written last. A folder without it is a
   backup cut short, and restore refuses it.

``restore SOURCE`` fills an absent or empty data folder from a backup
(copying, or with ``link``, hard-linking), checks the index
(``PRAGMA integrity_check``) and that every blob and image file it
references is there with the size it records, and only then gives the
index its name (meta.sqlite), so that an interrupted restore leaves no
index a server would open. The index is restored as it was; a server on
it runs the schema's migrations at start, as after an upgrade.
"""

import errno
import json
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional, TextIO
from urllib.parse import quote

from objectstore.index import schema
from objectstore.index.database import INDEX_FILE
from objectstore.registry.catalog import Catalog
from objectstore.storage import rows
from objectstore.storage.datadir import LOCK_FILE, lock_data_dir

# Written last into a finished backup; what restore looks for.
MARKER = "objectstore-backup.json"
FORMAT = "objectstore-backup"
FORMAT_VERSION = 1
# Fresh snapshots taken, when blobs keep being deleted under a backup, before it gives up.
MAX_ROUNDS = 20
# A progress line on stderr every this many files, or this many seconds, whichever comes first.
PROGRESS_EVERY = 1000
PROGRESS_SECONDS = 1.0
# How long the snapshot's reader waits out a lock (only a WAL recovery takes one against readers).
BUSY_TIMEOUT_MS = 10000
MiB = 1024 * 1024

BLOBS = "blobs"
IMAGES = "images"
# An available image's file in images/<id>/, registry/registrar.py's IMAGE_FILE (a test holds them equal):
# named here so that mypy, checking this module, need not follow the registrar's untyped imports.
IMAGE_FILE = "image"
# The index's own files and the lock: never copied as "other files".
_NOT_COPIED = {LOCK_FILE, MARKER}


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why, for the operator."""


class NotADataDir(BackupError):
    """The folder to back up holds no index."""


class DestinationNotEmpty(BackupError):
    """A backup (or a restore) goes only into an absent or empty folder."""


class NotABackup(BackupError):
    """The folder to restore has no marker: not a backup, or one cut short."""


class SnapshotUnsettled(BackupError):
    """Blobs were deleted under every one of MAX_ROUNDS snapshots."""


class DataDirDamaged(BackupError):
    """A blob or image the index references is missing or the wrong size."""


@dataclass(frozen=True)
class Summary:
    """What a backup holds (or a restore brought back)."""

    objects: int
    object_bytes: int
    blobs: int
    images: int
    bytes: int  # of the blob and image files
    rounds: int
    path: str

    def line(self, verb: str, where: str) -> str:
        """The summary line: ``VERB objects=N blobs=N images=N bytes=N WHERE=PATH``."""
        return (
            f"{verb} objects={self.objects} blobs={self.blobs} images={self.images} bytes={self.bytes}"
            f" {where}={quote(self.path, safe='/')}"
        )


class Progress:
    """``VERB: done/total files, N MiB`` (blob and image files) on *err*.

    Every *every* files or *seconds* seconds, whichever comes first, and at the end of a round.
    """

    def __init__(
        self,
        err: TextIO,
        verb: str,
        every: int = PROGRESS_EVERY,
        seconds: float = PROGRESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.err = err
        self.verb = verb
        self.every = every
        self.seconds = seconds
        self.clock = clock
        self.total = 0
        self.done = 0
        self.bytes = 0
        self._last = 0.0

    def start(self, total: int) -> None:
        self.total, self.done, self.bytes = total, 0, 0
        self._last = self.clock()

    def step(self, size: int) -> None:
        self.done += 1
        self.bytes += size
        now = self.clock()
        if (self.every and self.done % self.every == 0) or now - self._last >= self.seconds:
            self.line()

    def line(self) -> None:
        self._last = self.clock()
        self.note(f"{self.done}/{self.total} files, {self.bytes // MiB} MiB")

    def note(self, message: str) -> None:
        print(f"{self.verb}: {message}", file=self.err, flush=True)


# -- backup ------------------------------------------------------------------------


def backup(
    data_dir: str,
    dest: str,
    *,
    err: TextIO = sys.stderr,
    link: bool = True,
    max_rounds: int = MAX_ROUNDS,
    progress_every: int = PROGRESS_EVERY,
    after_snapshot: Optional[Callable[[int], None]] = None,
) -> Summary:
    """Copy *data_dir* (a server may be running on it) into *dest*, absent or empty, as of one moment.

    *link*: hard-link the blob and image files where DEST's file system
    allows (else copy them). *after_snapshot(round)* runs once each round's
    index copy is made, before its blobs are linked (tests delete blobs there).
    Raises a BackupError, DEST emptied again, if the backup cannot be made.
    """
    data_dir, dest = os.path.abspath(data_dir), os.path.abspath(dest)
    index = os.path.join(data_dir, INDEX_FILE)
    if not os.path.isfile(index):
        raise NotADataDir(f"{data_dir} is not an objectstore data folder ({INDEX_FILE} is missing)")
    if _within(os.path.realpath(dest), os.path.realpath(data_dir)) or _within(
        os.path.realpath(data_dir), os.path.realpath(dest)
    ):
        raise BackupError(f"the backup {dest} and the data folder {data_dir} must not contain one another")
    _refuse_newer(index, "back it up with that release")
    created = _claim_empty(dest)
    progress = Progress(err, "backup", progress_every)
    try:
        summary = _backup(data_dir, dest, link, max_rounds, progress, after_snapshot)
    except BaseException:
        _empty(dest, created)
        raise
    progress.note(f"done in {summary.rounds} round(s)")
    return summary


def _backup(
    data_dir: str,
    dest: str,
    link: bool,
    max_rounds: int,
    progress: Progress,
    after_snapshot: Optional[Callable[[int], None]],
) -> Summary:
    placer = _Placer(link, progress)
    copy = os.path.join(dest, INDEX_FILE)
    # Files placed so far (relative path -> size): kept across rounds.
    placed: dict[str, int] = {}
    missing_before: set[str] = set()
    for round_ in range(1, max_rounds + 1):
        seconds = _snapshot(os.path.join(data_dir, INDEX_FILE), copy)
        progress.note(f"round {round_}: index copied ({seconds:.3f} s in the read transaction)")
        if after_snapshot is not None:
            after_snapshot(round_)
        wanted = _referenced(copy)
        if wanted.version > schema.LATEST_VERSION:  # past a WAL the header lagged behind
            raise BackupError(f"{schema.SchemaTooNew(data_dir, wanted.version)}; back it up with that release")
        progress.start(len(wanted.files))
        missing = []
        for rel, (need, exact) in wanted.files.items():
            size = placed.get(rel)
            if size is None:
                size = placer.place(_sources(data_dir, rel), os.path.join(dest, rel))
            if size is None:
                missing.append(rel)
                continue
            placed[rel] = size
            if size < need or (exact and size != need):
                raise DataDirDamaged(
                    f"{os.path.join(data_dir, rel)} is {size} bytes but the index records {need}: "
                    "the data folder is damaged (see objectstore-manage fsck)"
                )
            progress.step(size)
        progress.line()
        if not missing:
            break
        damaged = sorted(set(missing) & missing_before)
        if damaged:
            raise DataDirDamaged(
                f"{os.path.join(data_dir, damaged[0])} is missing, and still referenced by a later snapshot "
                f"({len(damaged)} file(s) so): the data folder is damaged (see objectstore-manage fsck)"
            )
        missing_before = set(missing)
        progress.note(f"{len(missing)} file(s) deleted since the snapshot: taking a new one")
    else:
        raise SnapshotUnsettled(
            f"files were deleted under each of {max_rounds} snapshots of {data_dir}: "
            "try again when the store is less busy"
        )
    # Left over from earlier rounds: deleted since, and not in the final snapshot.
    for rel in set(placed) - set(wanted.files):
        os.unlink(os.path.join(dest, rel))
    for name in _other_files(data_dir):
        try:
            _copy_file(os.path.join(data_dir, name), os.path.join(dest, name))
        except FileNotFoundError:
            pass  # removed since the listing: not part of the folder any more
    _sync_tree(dest)
    summary = Summary(
        objects=wanted.objects,
        object_bytes=wanted.object_bytes,
        blobs=wanted.blobs,
        images=wanted.images,
        bytes=sum(placed[rel] for rel in wanted.files),
        rounds=round_,
        path=dest,
    )
    _write_marker(dest, data_dir, summary, wanted.version)
    return summary


def _snapshot(index: str, copy: str) -> float:
    """Copy *index* into *copy* inside one read transaction; the seconds the transaction lasted."""
    for leftover in (copy, copy + "-wal", copy + "-shm", copy + "-journal"):
        _unlink(leftover)
    # The copy holds the secret keys too: owner-only from birth, as the index is.
    os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    # Read-only: a backup never writes to the folder it copies (nor checkpoints its WAL on close).
    source = sqlite3.connect(f"file:{quote(index)}?mode=ro", uri=True, isolation_level=None)
    try:
        source.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        target = sqlite3.connect(copy, isolation_level=None)
        try:
            began = time.monotonic()
            source.execute("BEGIN")
            # The first read starts the transaction: the snapshot is this moment.
            source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            source.backup(target)  # all pages in one step, inside the transaction
            source.execute("COMMIT")
            seconds = time.monotonic() - began
            # One self-contained file (no -wal beside it); the server sets WAL again when it opens it.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    finally:
        source.close()
    return seconds


@dataclass
class _Referenced:
    """What an index copy references: relative path -> (size needed, whether exactly), and its counts."""

    files: dict[str, tuple[int, bool]]
    version: int
    objects: int
    object_bytes: int
    blobs: int
    images: int


def _referenced(index: str) -> _Referenced:
    conn = sqlite3.connect(f"file:{quote(index)}?mode=ro", uri=True, isolation_level=None)
    try:
        files: dict[str, tuple[int, bool]] = {}
        blobs = rows.referenced_blobs(conn)
        for blob, need in blobs:
            # A segment needs its blob at least offset + length long (fsck's rule); exact for a part,
            # but a part's blob becomes a segment's, so "at least" is what holds across both.
            files[os.path.join(BLOBS, blob[:2], blob)] = (need, False)
        images = Catalog.image_files(conn)
        for image_id, size in images:
            files[os.path.join(IMAGES, image_id, IMAGE_FILE)] = (size or 0, size is not None)
        objects, object_bytes = rows.object_totals(conn)
        return _Referenced(files, schema.version_of(conn), objects, object_bytes, len(blobs), len(images))
    finally:
        conn.close()


def _sources(data_dir: str, rel: str) -> list[str]:
    """Where a referenced file may be right now, in the order to look."""
    home = os.path.join(data_dir, rel)
    parts = rel.split(os.sep)
    if parts[0] == BLOBS:
        # Committed but not yet renamed home: in tmp/. Home, tmp, home, as BlobFiles.open looks.
        return [home, os.path.join(data_dir, "tmp", parts[-1]), home]
    return [home]


def _other_files(data_dir: str) -> list[str]:
    """The folder's top-level files but the index and the lock: the admin keys, the cloud key pair..."""
    with os.scandir(data_dir) as entries:
        return sorted(
            e.name
            for e in entries
            if e.is_file(follow_symlinks=False)
            and e.name not in _NOT_COPIED
            and not e.name.startswith((INDEX_FILE, f".{INDEX_FILE}"))
            # Files being written whole (cloudkey.py's, this module's): the finished file is the one to copy.
            and not e.name.endswith(".tmp")
        )


def _write_marker(dest: str, data_dir: str, summary: Summary, version: int) -> None:
    now = time.time()
    marker = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "created_unix": now,
        "source": data_dir,
        "schema_version": version,
        "objects": summary.objects,
        "object_bytes": summary.object_bytes,
        "blobs": summary.blobs,
        "images": summary.images,
        "bytes": summary.bytes,
        "rounds": summary.rounds,
    }
    temp = os.path.join(dest, f".{MARKER}.tmp")
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(marker, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(temp, os.path.join(dest, MARKER))
    _sync_dir(dest)


def read_marker(source: str) -> dict[str, Any]:
    """The marker of the backup in *source*; NotABackup if it has none, or one this release cannot read."""
    path = os.path.join(source, MARKER)
    try:
        with open(path, encoding="utf-8") as f:
            marker = json.load(f)
    except FileNotFoundError:
        raise NotABackup(
            f"{source} is not a finished objectstore backup ({MARKER} is missing: not a backup, or one cut short)"
        ) from None
    except (OSError, ValueError) as e:
        raise NotABackup(f"cannot read {path}: {e}") from None
    if not isinstance(marker, dict) or marker.get("format") != FORMAT:
        raise NotABackup(f"{path} is not an objectstore backup's marker")
    version = marker.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise NotABackup(
            f"{source} was made by a newer objectstore (backup format {version}; this release reads up to "
            f"{FORMAT_VERSION}): restore it with that release"
        )
    return marker


# -- restore ---------------------------------------------------------------------------


def restore(
    source: str, data_dir: str, *, err: TextIO = sys.stderr, link: bool = False, progress_every: int = PROGRESS_EVERY
) -> Summary:
    """Fill *data_dir* (absent or empty) from the backup in *source*, and check it.

    *link*: hard-link the blob and image files instead of copying them (the
    data folder then shares them with the backup; they are never written
    once made, so that is safe, but one disk then holds both).
    Raises a BackupError, the data folder emptied again, if it cannot be done.
    """
    source, data_dir = os.path.abspath(source), os.path.abspath(data_dir)
    marker = read_marker(source)
    index = os.path.join(source, INDEX_FILE)
    if not os.path.isfile(index):
        raise NotABackup(f"{source} has a marker but no {INDEX_FILE}: it is damaged")
    _refuse_newer(index, "restore it with that release")
    created = _claim_empty(data_dir)
    # Held while the folder fills, as a server holds it: one started meanwhile is refused, rather
    # than make an index of its own that the restored one would then be renamed over.
    lock = lock_data_dir(data_dir)
    progress = Progress(err, "restore", progress_every)
    try:
        summary = _restore(source, data_dir, marker, link, progress)
    except BaseException:
        _empty(data_dir, created)
        raise
    finally:
        os.close(lock)
    progress.note("checked: the index is whole and every file it references is there")
    return summary


def _restore(source: str, data_dir: str, marker: dict[str, Any], link: bool, progress: Progress) -> Summary:
    placer = _Placer(link, progress)
    files = [rel for folder in (BLOBS, IMAGES) for rel in _files_under(source, folder)]
    progress.start(len(files))
    for rel in files:
        size = placer.place([os.path.join(source, rel)], os.path.join(data_dir, rel))
        if size is None:
            raise NotABackup(f"{os.path.join(source, rel)} vanished while it was restored")
        progress.step(size)
    progress.line()
    for name in _other_files(source):
        _copy_file(os.path.join(source, name), os.path.join(data_dir, name))
    # Under a name no server opens until it is checked.
    pending = os.path.join(data_dir, f".{INDEX_FILE}.restoring")
    _copy_file(os.path.join(source, INDEX_FILE), pending)
    os.chmod(pending, 0o600)
    wanted = _check(data_dir, pending)
    found = (wanted.objects, wanted.blobs, wanted.images)
    recorded = (marker.get("objects"), marker.get("blobs"), marker.get("images"))
    if found != recorded:
        raise DataDirDamaged(
            f"the restored index holds {found[0]} objects, {found[1]} blobs and {found[2]} images; "
            f"the backup's marker says {recorded[0]}, {recorded[1]} and {recorded[2]}"
        )
    _sync_tree(data_dir)
    os.rename(pending, os.path.join(data_dir, INDEX_FILE))
    _sync_dir(data_dir)
    return Summary(
        objects=wanted.objects,
        object_bytes=wanted.object_bytes,
        blobs=wanted.blobs,
        images=wanted.images,
        bytes=progress.bytes,
        rounds=0,
        path=data_dir,
    )


def _check(data_dir: str, index: str) -> _Referenced:
    """The restored index is whole, and every file it references is there with its recorded size."""
    conn = sqlite3.connect(f"file:{quote(index)}?mode=ro", uri=True, isolation_level=None)
    try:
        verdict = [str(line) for (line,) in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as e:  # too damaged to be checked at all
        verdict = [str(e)]
    finally:
        conn.close()
    if verdict != ["ok"]:
        raise DataDirDamaged(f"the backup's index fails SQLite's integrity check: {'; '.join(verdict[:5])}")
    try:
        wanted = _referenced(index)
    except sqlite3.DatabaseError as e:
        raise DataDirDamaged(f"the backup's index cannot be read: {e}") from None
    for rel, (need, exact) in wanted.files.items():
        size = _size(os.path.join(data_dir, rel))
        if size is None:
            raise DataDirDamaged(f"the backup lacks {rel}, which its index references")
        if size < need or (exact and size != need):
            raise DataDirDamaged(f"{rel} in the backup is {size} bytes; its index records {need}")
    return wanted


# -- files -----------------------------------------------------------------------------


class _Placer:
    """Puts a file into the backup (or data folder): a hard link where it can, else a copy."""

    def __init__(self, link: bool, progress: Progress) -> None:
        self.link = link
        self.progress = progress

    def place(self, sources: list[str], target: str) -> Optional[int]:
        """Link or copy the first of *sources* that exists to *target*; its size, or None if none exists."""
        os.makedirs(os.path.dirname(target), exist_ok=True)
        for path in sources:
            if self.link:
                try:
                    os.link(path, target, follow_symlinks=False)
                    return os.stat(target).st_size
                except FileNotFoundError:
                    continue
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                        raise
                    # Another file system (or one without hard links): copies from now on.
                    self.link = False
                    self.progress.note(f"cannot hard-link into {os.path.dirname(target)} ({e.strerror}): copying")
            try:
                # Opened first: a delete after this cannot take the bytes away.
                f = open(path, "rb")
            except FileNotFoundError:
                continue
            with f:
                return _copy_open(f, target)
        return None


def _copy_file(path: str, target: str) -> int:
    with open(path, "rb") as f:
        return _copy_open(f, target)


def _copy_open(f: BinaryIO, target: str) -> int:
    """Copy the open file *f* to a new file *target* with its mode (0600 stays 0600), synced; its size."""
    mode = os.fstat(f.fileno()).st_mode & 0o7777
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # past the umask
        with open(fd, "wb", closefd=False) as out:
            shutil.copyfileobj(f, out, MiB)
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _files_under(root: str, folder: str) -> list[str]:
    found: list[str] = []
    for where, _, names in os.walk(os.path.join(root, folder)):
        found.extend(os.path.relpath(os.path.join(where, name), root) for name in names)
    return sorted(found)


def _claim_empty(path: str) -> bool:
    """Make sure *path* is an empty folder (making it, owner-only, if absent); whether it was made."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path, 0o700)
        return True
    except FileExistsError:
        pass
    if not os.path.isdir(path):
        raise DestinationNotEmpty(f"{path} exists and is not a folder")
    if os.listdir(path):
        raise DestinationNotEmpty(f"{path} is not empty: give an absent or empty folder")
    return False


def _empty(path: str, created: bool) -> None:
    """Take away what a failed backup or restore put into *path* (it was empty, or absent, before)."""
    if created:
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            _unlink(full)


def _refuse_newer(index: str, advice: str) -> None:
    try:
        schema.refuse_if_newer(index)
    except schema.SchemaTooNew as e:
        raise BackupError(f"{e}; {advice}") from None


def _within(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _sync_tree(root: str) -> None:
    """fsync every folder under *root* (the new names of linked and copied files), deepest first."""
    for where, _, _ in sorted(os.walk(root), key=lambda entry: -entry[0].count(os.sep)):
        _sync_dir(where)


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
