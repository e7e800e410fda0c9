"""Blob files: the bytes of objects, named by random ids, never by keys.

A blob is written in ``tmp/``, fsynced there, and only renamed into its
fanned-out home (``blobs/ab/cd/<id>``) once the metadata row that references
it is committed. So after a crash, ``tmp/`` holds every blob whose fate is
open: referenced ones are moved home, the rest are deleted, and ``blobs/``
never holds an orphan that only a full walk could find.
"""

import errno
import hashlib
import os
import secrets
from contextlib import contextmanager

from objectstore.errors import StorageFull

CHUNK = 256 * 1024


def new_blob_id():
    return secrets.token_hex(16)


class BlobFiles:
    def __init__(self, root, durable):
        self.root = root
        self.durable = durable
        self.tmp = os.path.join(root, "tmp")
        self.home = os.path.join(root, "blobs")
        os.makedirs(self.tmp, exist_ok=True)
        os.makedirs(self.home, exist_ok=True)

    def tmp_path(self, blob):
        return os.path.join(self.tmp, blob)

    def path(self, blob):
        return os.path.join(self.home, blob[:2], blob[2:4], blob)

    def writer(self):
        return BlobWriter(self)

    def move_home(self, blob):
        """Rename a committed blob from tmp/ into place (writer thread)."""
        target = self.path(blob)
        try:
            os.rename(self.tmp_path(blob), target)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(self.tmp_path(blob), target)

    def unlink(self, blob):
        for path in (self.path(blob), self.tmp_path(blob)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def open(self, blob):
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

    def sync_dir(self, path):
        if not self.durable:
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def leftovers(self):
        """Blob ids still in tmp/ (start-up recovery decides their fate)."""
        return os.listdir(self.tmp)


class BlobWriter:
    """Receives an object's bytes as they arrive, hashing them on the way.

    ``write`` appends to the page cache (cheap); ``sync`` - the part that
    waits on the disk - is meant to run in a thread.
    """

    def __init__(self, files):
        self.files = files
        self.blob = new_blob_id()
        self.path = files.tmp_path(self.blob)
        self.size = 0
        self.md5 = hashlib.md5()
        with full_disk_is_storage_full():
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def write(self, data):
        self.md5.update(data)
        view = memoryview(data)
        with full_disk_is_storage_full():
            while view:
                view = view[os.write(self._fd, view) :]
        self.size += len(data)

    def sync(self):
        """Make the bytes and the tmp/ entry durable (blocking: run in a thread)."""
        with full_disk_is_storage_full():
            if self.files.durable:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            self.files.sync_dir(self.files.tmp)

    def abort(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


@contextmanager
def full_disk_is_storage_full():
    """A full disk or quota is the client's StorageFull; any other OSError stays what it is."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull() from e
        raise


def copy_blob(files, sources):
    """Copy (blob, offset, length) runs into a new, synced blob.

    Blocking: run in a thread. The copy is hashed on the way, so the new
    object's ETag is the MD5 of what was actually written.
    """
    writer = BlobWriter(files)
    try:
        for blob, offset, length in sources:
            src = files.open(blob)
            if src is None:
                raise FileNotFoundError(blob)
            with src:
                _copy_range(src.fileno(), writer, offset, length)
        writer.sync()
    except BaseException:
        writer.abort()
        raise
    return writer


def _copy_range(src_fd, writer, offset, length):
    end = offset + length
    while offset < end:
        data = os.pread(src_fd, min(CHUNK * 4, end - offset), offset)
        if not data:
            raise OSError(errno.EIO, "blob shorter than its record")
        writer.write(data)
        offset += len(data)
