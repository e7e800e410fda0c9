"""Checking blob files against the index, and repairing what is safe: the storage half of ``fsck``.

``objectstore-manage fsck`` (objectstore/fsck.py) runs this beside the
image check (registry/fsck.py). It finds:

- ``orphan-blob``: a file in ``blobs/ab/<id>`` that no segment or part
  references and that ``garbage`` does not list;
- ``missing-blob`` / ``short-blob``: an object's segment whose blob is gone,
  or shorter than ``offset + length``;
- ``missing-part-blob`` / ``wrong-size-part-blob``: an upload's part whose
  blob is gone, or not exactly the part's size;
- ``stale-tmp``: a file in ``tmp/`` that no row references (only checked
  while no server runs: a server's tmp/ holds its spares and in-flight
  uploads, which look exactly like that).

Blobs listed in ``garbage`` are not damage: the row records an unlink that
a crash interrupted, or that waits for a reader (a pinned blob, disk.py).
They are counted; ``--repair``, which holds the data-dir lock and so runs
with no server, finishes their unlink as start-up recovery would.

Beside a running server, every candidate is confirmed before it is
reported. The server keeps one invariant: a file in ``blobs/`` is
referenced or listed in ``garbage`` at every moment (a blob moves home only
after the commit that references it; the commit that drops its last
reference lists it in garbage; its garbage row goes only after the
unlink). So a file listed *before* the index said "unknown", and still
there *after*, is an orphan: blob ids are random and never come back. A
row whose blob is missing is confirmed the other way round: the row is
still there after the file was found missing, so the blob was referenced
all along (references are never taken back and given again).

Reads page through the index (``PAGE`` rows a statement) so that no read
transaction stays open across the file checks: a long one would keep the
server's WAL from being checkpointed.
"""

import os
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterator
from typing import Any, Optional, TextIO
from urllib.parse import quote

from objectstore.storage import rows
from objectstore.storage.blobs import BlobFiles
from objectstore.storage.multipart import drop_uploads

# How many rows one read statement pages in.
PAGE = 1000
# Progress goes to stderr once every this many files or rows of a phase.
PROGRESS_EVERY = 10_000
# What the summary line counts, always all of them, in this order (scripts may parse it).
COUNTED = ("objects", "segments", "uploads", "parts", "blobs", "tmp", "tmp-committed", "garbage", "images")


class Report:
    """Where findings go: one line each on *out*, progress and notes on *err*, counts for the summary."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, progress_every: int = PROGRESS_EVERY):
        self.out = out
        self.err = err
        self.progress_every = progress_every
        self.counts: dict[str, int] = dict.fromkeys(COUNTED, 0)
        self.findings = 0
        self.repaired = 0

    def finding(self, kind: str, subject: str, *details: str, repaired: Optional[str] = None) -> None:
        """One finding: ``KIND SUBJECT key=value... [repaired=WHAT]`` (subjects never hold spaces)."""
        self.findings += 1
        words = [kind, subject, *details]
        if repaired:
            self.repaired += 1
            words.append(f"repaired={repaired}")
        print(" ".join(words), file=self.out, flush=True)

    def count(self, what: str, n: int = 1) -> None:
        """Count *n* more of *what*; a progress line every ``progress_every`` of them."""
        before = self.counts.get(what, 0)
        self.counts[what] = before + n
        if self.progress_every and (before + n) // self.progress_every > before // self.progress_every:
            self.note(f"{what}: {before + n} checked")

    def note(self, message: str) -> None:
        print(f"fsck: {message}", file=self.err, flush=True)

    @property
    def unrepaired(self) -> int:
        return self.findings - self.repaired

    def summary(self) -> str:
        counts = [f"{name}={n}" for name, n in self.counts.items()]
        return " ".join(["summary", *counts, f"findings={self.findings}", f"repaired={self.repaired}"])


def file_name(data_dir: str, path: str) -> str:
    """*path* relative to the data folder, percent-encoded (a stray file's name may hold anything)."""
    return quote(os.path.relpath(path, data_dir), safe="/")


def object_name(bucket: str, key: str) -> str:
    """``bucket/key`` with the key percent-encoded as S3's encoding-type=url does, so it holds no space or newline."""
    return f"{bucket}/{quote(key, safe='/')}"


class StorageCheck:
    """The checks of blobs/, tmp/ and the segments and parts rows, over one data folder.

    *repair* must only be set by a caller that holds the data-dir lock
    (objectstore/fsck.py): the repairs assume no server writes meanwhile.
    *server_running* (read-only only) leaves tmp/ unjudged.
    """

    def __init__(
        self,
        data_dir: str,
        conn: sqlite3.Connection,
        write: Callable[[Callable[[sqlite3.Connection], Any]], Any],
        report: Report,
        *,
        repair: bool = False,
        server_running: Callable[[], bool] = lambda: False,
    ) -> None:
        self.data_dir = data_dir
        self.files = BlobFiles(data_dir, durable=True)
        self.conn = conn
        self.write = write
        self.report = report
        self.repair = repair
        self.server_running = server_running

    def run(self) -> None:
        (objects,) = self.conn.execute("SELECT COUNT(*) FROM objects").fetchone()
        (uploads,) = self.conn.execute("SELECT COUNT(*) FROM uploads").fetchone()
        self.report.count("objects", objects)
        self.report.count("uploads", uploads)
        self.check_blob_files()
        self.check_tmp()
        self.check_segments()
        self.check_parts()
        self.settle_garbage()

    # -- files -------------------------------------------------------------

    def check_blob_files(self) -> None:
        """Every file of blobs/*/: referenced, in garbage, or an orphan."""
        if not os.path.isdir(self.files.home):
            return
        for folder in sorted(_subfolders(self.files.home)):
            # Listed first, looked up second, stat'ed third: see the module's docstring.
            names = sorted(_file_names(os.path.join(self.files.home, folder)))
            candidates = []
            for name in names:
                self.report.count("blobs")
                if self._referenced(name):
                    continue
                if self._garbage(name):
                    continue  # an unlink to come: counted with the garbage rows
                candidates.append(name)
            for name in candidates:
                path = os.path.join(self.files.home, folder, name)
                size = _size(path)
                if size is None:
                    continue  # unlinked since the listing: a delete the server finished
                repaired = None
                if self.repair:
                    os.unlink(path)
                    repaired = "deleted"
                self.report.finding("orphan-blob", file_name(self.data_dir, path), f"size={size}", repaired=repaired)

    def check_tmp(self) -> None:
        """tmp/'s files no row references, while no server runs (start-up recovery would delete them)."""
        if not os.path.isdir(self.files.tmp):
            return
        names = sorted(_file_names(self.files.tmp))
        self.report.count("tmp", len(names))
        if self.server_running():
            # Its spares (empty, and as old as the server) and in-flight uploads
            # are unreferenced too, and no age tells them from leftovers.
            self.report.note("a server is running: tmp/ is its own (spares, uploads in flight), not checked")
            return
        stale = []
        for name in names:
            if self._referenced(name):
                # Committed before a crash, not yet renamed home: the next start moves it.
                self.report.count("tmp-committed")
            else:
                stale.append(name)
        if self.server_running():
            # Started during the listing: what it made since is not ours to judge.
            self.report.note("a server started during the check: tmp/ is its own now, not reported")
            return
        for name in stale:
            path = self.files.tmp_path(name)
            size = _size(path)
            if size is None:
                continue
            repaired = None
            if self.repair:
                os.unlink(path)
                repaired = "deleted"
            self.report.finding("stale-tmp", file_name(self.data_dir, path), f"size={size}", repaired=repaired)

    # -- rows --------------------------------------------------------------

    def check_segments(self) -> None:
        """Each object segment's blob: there, and at least offset + length bytes long. Reported only."""
        statement = (
            "SELECT s.object, s.seq, s.blob, s.offset, s.length, o.bucket, o.key"
            " FROM segments s JOIN objects o ON o.id = s.object"
            " WHERE (s.object, s.seq) > (?, ?) ORDER BY s.object, s.seq LIMIT ?"
        )
        for object_id, seq, blob, offset, length, bucket, key in self._pages(statement):
            self.report.count("segments")
            size = self._blob_size(blob)
            if size is not None and size >= offset + length:
                continue
            still = "SELECT 1 FROM segments WHERE object = ? AND seq = ? AND blob = ?"
            if not self.conn.execute(still, (object_id, seq, blob)).fetchone():
                continue  # replaced or deleted meanwhile: its blob went with it
            size = self._blob_size(blob)
            name = object_name(bucket, key)
            if size is None:
                self.report.finding("missing-blob", name, f"blob={blob}")
            elif size < offset + length:
                self.report.finding("short-blob", name, f"blob={blob}", f"needs={offset + length}", f"size={size}")

    def check_parts(self) -> None:
        """Each part's blob: there and exactly the part's size; --repair drops an upload with a bad part."""
        statement = (
            "SELECT p.upload, p.number, p.blob, p.size, u.bucket, u.key"
            " FROM parts p JOIN uploads u ON u.id = p.upload"
            " WHERE (p.upload, p.number) > (?, ?) ORDER BY p.upload, p.number LIMIT ?"
        )
        dropped: set[str] = set()
        for upload, number, blob, expected, bucket, key in self._pages(statement, start=("", 0)):
            self.report.count("parts")
            if upload in dropped:
                continue
            size = self._blob_size(blob)
            if size == expected:
                continue
            still = "SELECT 1 FROM parts WHERE upload = ? AND number = ? AND blob = ?"
            if not self.conn.execute(still, (upload, number, blob)).fetchone():
                continue  # replaced, completed or aborted meanwhile
            size = self._blob_size(blob)
            if size == expected:
                continue
            repaired = None
            if self.repair:
                # The upload cannot complete into a whole object any more: the
                # client must start it again, as after an abort or expiry.
                self._drop_upload(upload)
                dropped.add(upload)
                repaired = "upload-dropped"
            where = (object_name(bucket, key), f"upload={upload}", f"part={number}", f"blob={blob}")
            if size is None:
                self.report.finding("missing-part-blob", *where, repaired=repaired)
            else:
                sizes = (f"expected={expected}", f"size={size}")
                self.report.finding("wrong-size-part-blob", *where, *sizes, repaired=repaired)

    def _drop_upload(self, upload: str) -> None:
        blobs = self.write(lambda conn: drop_uploads(conn, [upload]))
        self._unlink_garbage(blobs)

    def settle_garbage(self) -> None:
        """Count the garbage rows; with --repair, finish their unlinks as start-up recovery does."""
        garbage = rows.garbage_blobs(self.conn)
        self.report.count("garbage", len(garbage))
        if self.repair and garbage:
            self._unlink_garbage(garbage)

    def _unlink_garbage(self, blobs: list[str]) -> None:
        # A blob still referenced would be damage, not garbage: never unlinked here.
        free = [blob for blob in blobs if not self._referenced(blob)]
        for blob in free:
            self.files.unlink(blob)

        def forget(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM garbage WHERE blob = ?", [(blob,) for blob in free])

        self.write(forget)

    # -- helpers -------------------------------------------------------------

    def _pages(self, statement: str, start: tuple = (0, 0)) -> Iterator[tuple]:
        """The rows of *statement* (keyset-paged on its first two columns), each page read whole."""
        after = start
        while True:
            page = self.conn.execute(statement, (*after, PAGE)).fetchall()
            if not page:
                return
            yield from page
            after = (page[-1][0], page[-1][1])

    def _referenced(self, blob: str) -> bool:
        return rows.blob_is_referenced(self.conn, blob)

    def _garbage(self, blob: str) -> bool:
        return self.conn.execute("SELECT 1 FROM garbage WHERE blob = ?", (blob,)).fetchone() is not None

    def _blob_size(self, blob: str) -> Optional[int]:
        """The blob's size wherever it is; None if nowhere.

        Home, tmp/, home again, as BlobFiles.open looks: a blob committed but
        not yet renamed is in tmp/, and the rename may happen in between.
        """
        for path in (self.files.path(blob), self.files.tmp_path(blob), self.files.path(blob)):
            size = _size(path)
            if size is not None:
                return size
        return None


def _size(path: str) -> Optional[int]:
    """A regular file's size; None if there is none at *path*."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _subfolders(path: str) -> Iterator[str]:
    with os.scandir(path) as entries:
        yield from (e.name for e in entries if e.is_dir(follow_symlinks=False))


def _file_names(path: str) -> list[str]:
    with os.scandir(path) as entries:
        return [e.name for e in entries if e.is_file(follow_symlinks=False)]
