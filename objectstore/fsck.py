"""``objectstore-manage fsck [--repair]``: a data folder's files checked against its index.

The checks live with what they check: blobs, tmp/, segments and parts in
storage/fsck.py; image files in registry/fsck.py. This runs both, in that
order, and decides who may repair.

Without ``--repair`` nothing is changed, and it may run beside a server on
the same folder: candidates are confirmed so that a write in flight is
never reported, and tmp/ (the server's own) is not judged. ``--repair``
takes the data-dir lock for its whole run, as a server does, so it is
refused while a server runs, and a server cannot start while it repairs.

``--repair`` does only what loses nothing a client could still read:

- deletes orphan blobs and stale temp files (no row names them, so no
  request can reach their bytes), and folders of images/ with no row;
- drops an upload one of whose parts is gone or truncated (it can never
  complete into a whole object; its client starts again, as after expiry);
- finishes the unlinks that ``garbage`` records, as start-up recovery does.

It does not touch an object whose blob is missing or short, nor an
available image whose file is: the row is the only record of what was
there (key, size, ETag, owner), the bytes may come back from a backup or
a disk that failed to mount, and deleting the row would turn a loud error
into a silent 404. These are reported; delete the object (or deregister
the image) through the API once you have decided it is lost.
"""

import os
from typing import TextIO

from objectstore.commandline import EXIT_DAMAGE
from objectstore.index.database import Index
from objectstore.registry.catalog import Catalog
from objectstore.registry.fsck import GRACE_SECONDS, check_images
from objectstore.storage.datadir import DataDirInUse, lock_data_dir, lock_holder
from objectstore.storage.fsck import PROGRESS_EVERY, Report, StorageCheck


class RepairRefused(Exception):
    """--repair while a server holds the data folder's lock."""


def fsck(
    data_dir: str,
    index: Index,
    out: TextIO,
    err: TextIO,
    *,
    repair: bool = False,
    grace: float = GRACE_SECONDS,
    progress_every: int = PROGRESS_EVERY,
) -> int:
    """Check (and with *repair*, fix what is safe in) *data_dir*, whose index is open as *index*.

    Findings go to *out*, one line each, then a summary line; progress and
    notes to *err*. Returns 0 if healthy (or all repaired), EXIT_DAMAGE if not.
    Raises RepairRefused, having changed nothing, if *repair* and a server runs.
    """
    lock = None
    if repair:
        try:
            lock = lock_data_dir(data_dir)
        except DataDirInUse as e:
            raise RepairRefused(
                f"{e}: stop it before fsck --repair (fsck without --repair may run beside it)"
            ) from None
    try:
        report = Report(out, err, progress_every)
        holder = None if repair else lock_holder(data_dir)
        if holder is not None:
            report.note(f"a server (pid {holder or 'unknown'}) is running on {data_dir}: checking beside it")

        def server_running() -> bool:
            return not repair and lock_holder(data_dir) is not None

        check = StorageCheck(
            data_dir, index.reader(), index.write_now, report, repair=repair, server_running=server_running
        )
        check.run()
        check_images(data_dir, Catalog(index), report, repair=repair, server_running=server_running(), grace=grace)
        print(report.summary(), file=out, flush=True)
    finally:
        if lock is not None:
            os.close(lock)
    return EXIT_DAMAGE if report.unrepaired else 0
