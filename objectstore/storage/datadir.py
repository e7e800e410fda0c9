"""The data folder's lock: one server at a time, and who holds it.

The lock is an flock on ``data/lock``, held while the file is open, with
the holder's pid written in it so that a second server (or the start-up
checks, which must create nothing) can say who is using the folder.
"""

import fcntl
import os
from typing import Optional


class DataDirInUse(Exception):
    """Another server already serves this data folder."""

    def __init__(self, data_dir: str, pid: Optional[str] = "") -> None:
        self.data_dir = data_dir
        self.pid = pid
        by = f"another objectstore (pid {pid})" if pid else "another objectstore"
        super().__init__(f"{data_dir} is already served by {by}")


LOCK_FILE = "lock"


def lock_data_dir(data_dir: str) -> int:
    """Take the folder's lock (held while the fd is open) and write our PID in it, for lock_holder()."""
    fd = os.open(os.path.join(data_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = lock_holder(data_dir)
        raise DataDirInUse(data_dir, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def lock_holder(data_dir: str) -> Optional[str]:
    """The PID (as text, "" if unknown) of the process serving *data_dir*, or None if none does.

    Creates nothing: a folder, or a lock file, that does not exist is not in use.
    """
    try:
        fd = os.open(os.path.join(data_dir, LOCK_FILE), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
