"""Blob files: the bytes of objects, named by random ids, never by keys.

A blob is written in ``tmp/``, fsynced there, and only renamed into its
fanned-out home (``blobs/ab/<id>``) once the metadata row that references
it is committed. So after a crash, ``tmp/`` holds every blob whose fate is
open: referenced ones are moved home, the rest are deleted, and ``blobs/``
never holds an orphan that only a full walk could find.

Creating a file can stall for milliseconds on a busy disk, so empty temp
files are made ahead of need in a thread ("spares"); an upload takes one
without touching the file system on the event loop.
"""

import collections
import concurrent.futures
import errno
import os
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from io import FileIO
from typing import Optional, Union

from objectstore.errors import StorageFull


def new_blob_id() -> str:
    return secrets.token_hex(16)


SPARES = 32


class BlobFiles:
    def __init__(self, root: str, durable: bool, spares: int = SPARES) -> None:
        self.root = root
        self.durable = durable
        self.tmp = os.path.join(root, "tmp")
        self.home = os.path.join(root, "blobs")
        self._spares: collections.deque = collections.deque()
        self._spares_wanted = spares
        self._refilling = threading.Lock()

    def create_folders(self) -> "BlobFiles":
        """Make tmp/ and blobs/ if they are missing (blocking; once, before use); returns self."""
        os.makedirs(self.tmp, exist_ok=True)
        os.makedirs(self.home, exist_ok=True)
        return self

    def tmp_path(self, blob: str) -> str:
        return os.path.join(self.tmp, blob)

    def path(self, blob: str) -> str:
        return os.path.join(self.home, blob[:2], blob)

    def writer(self) -> "BlobWriter":
        """A writer on a fresh temp file (a spare one when there is one)."""
        try:
            blob, fd = self._spares.popleft()
        except IndexError:
            blob, fd = self._create()
        return BlobWriter(self, blob, fd)

    def needs_spares(self) -> bool:
        return len(self._spares) < self._spares_wanted // 2

    def make_spares(self) -> None:
        """Top the spare temp files up (blocking: run in a thread)."""
        if not self._refilling.acquire(blocking=False):
            return
        try:
            while len(self._spares) < self._spares_wanted:
                self._spares.append(self._create())
        except StorageFull:
            pass  # uploads will report it when they create their own
        finally:
            self._refilling.release()

    def spare_names(self) -> set[str]:
        return {blob for blob, _ in list(self._spares)}

    def drop_spares(self) -> None:
        while self._spares:
            blob, fd = self._spares.popleft()
            os.close(fd)
            self.unlink(blob)

    def _create(self) -> tuple[str, int]:
        blob = new_blob_id()
        with full_disk_is_storage_full():
            fd = os.open(self.tmp_path(blob), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return blob, fd

    def move_home(self, blob: str) -> None:
        """Rename a committed blob from tmp/ into place (after the answer: off the critical path)."""
        target = self.path(blob)
        try:
            os.rename(self.tmp_path(blob), target)
        except FileNotFoundError:
            # The first blob of its fan-out folder (one of 256) makes the folder.
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(self.tmp_path(blob), target)

    def unlink(self, blob: str) -> None:
        for path in (self.path(blob), self.tmp_path(blob)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def open(self, blob: str) -> Optional[FileIO]:
        """Open a blob for reading wherever it is right now.

        A blob is in tmp/ between its commit and its rename home; trying
        home, tmp, home again covers a rename that happens in between.
        """
        for path in (self.path(blob), self.tmp_path(blob), self.path(blob)):
            try:
                return open(path, "rb", buffering=0)
            except FileNotFoundError:
                continue
        return None

    def sync_dir(self, path: str) -> None:
        if not self.durable:
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_tmp(self) -> None:
        """Make the entries of every synced temp blob durable (once per commit batch)."""
        self.sync_dir(self.tmp)

    def leftovers(self) -> list[str]:
        """Blob ids still in tmp/ (start-up recovery decides their fate)."""
        return os.listdir(self.tmp)


# A big upload's bytes start going to disk every this many bytes, while the
# rest still arrives, so that the fdatasync before the answer has only the
# tail to write (as Swift's object server syncs every bytes_per_sync). The
# receive and the disk then overlap: a 1 GiB PUT took 12% less time.
FLUSH_EVERY = 32 * 1024 * 1024
_flusher = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="objectstore-flush")


class BlobWriter:
    """Appends an upload's bytes to its temp blob.

    ``write`` appends to the page cache (cheap); ``sync`` - the part that
    waits on the disk - runs off the event loop (in the index writer's
    batch, see ``Index.write``'s *prepare*).
    """

    def __init__(self, files: BlobFiles, blob: str, fd: int) -> None:
        self.files = files
        self.blob = blob
        self.path = files.tmp_path(blob)
        self._fd: Optional[int] = fd
        self._unflushed = 0
        self._flushing: Optional[Future[None]] = None

    def write(self, data: Union[bytes, bytearray, memoryview]) -> None:

        fd = self._fd
        assert fd is not None, "written after sync or abort"
        view = memoryview(data)
        with full_disk_is_storage_full():
            while view:
                view = view[os.write(fd, view) :]
        self._unflushed += len(data)
        if self.files.durable and self._unflushed >= FLUSH_EVERY and (self._flushing is None or self._flushing.done()):
            # Early, not instead: sync() still makes it all durable, and
            # reports this flush's error (the kernel reports one only once).
            self._unflushed = 0
            self._flushing = _flusher.submit(os.fdatasync, fd)

    def sync(self) -> None:
        """Make the bytes durable (blocking: run in a thread); once is enough.

        The tmp/ entry is made durable by the commit batch that publishes
        the blob (one folder fsync for all of them: ``BlobFiles.sync_tmp``).
        """
        if self._fd is None:
            return
        with full_disk_is_storage_full():
            if self._flushing is not None:
                self._flushing.result()  # waited for before the fd closes; its error is ours
            if self.files.durable:
                os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = None

    def abort(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if self._flushing is not None and not self._flushing.done():
                # Closed after the flush: never under it (the number could name another file by then).
                self._flushing.add_done_callback(lambda _: os.close(fd))
            else:
                os.close(fd)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


@contextmanager
def full_disk_is_storage_full() -> Iterator[None]:
    """A full disk or quota is the client's StorageFull; any other OSError stays what it is."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull() from e
        raise
