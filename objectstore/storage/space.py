"""The free-space reserve: writes stop while the data dir's filesystem is nearly full; deletes never do.

A full disk must not wedge the store. At 0 bytes free SQLite cannot commit
even a delete (its WAL needs pages), so no space could be reclaimed through
the API. So every write that adds to what is stored (objects, parts, copies,
buckets, ACLs, uploads started or completed, images) first *claims* the bytes
it brings, and is refused (StorageFull) if the free space would then fall
below the reserve (``--min-free-space``). Deletes never claim: the reserve is
the room they commit in.

Free space is what an unprivileged process may use (``statvfs``:
``f_bavail * f_frsize``), sampled at most every SAMPLE_INTERVAL seconds, and
every byte accepted since is counted against the sample:

- a claim's bytes are *promised* until they reach the filesystem: a PUT's
  declared length is promised before its body is read, so ten uploads
  arriving at once cannot each count on the same free space;
- bytes written into a blob file are *spent*: the next sample sees them
  itself, so spent counts from zero again at each sample;
- inline bytes (kept in the index) reach the disk with their commit: they
  stay promised until the claim is *kept*, after it;
- a claim *dropped* (a refused or aborted write) gives its promise back.

A body of undeclared length (chunked) claims as it arrives, each piece
checked, so it stops as soon as it would cross the reserve.
"""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from objectstore.errors import StorageFull

MiB = 1024**2
# How long a statvfs sample is trusted (bytes accepted since are counted against it).
SAMPLE_INTERVAL = 0.1


@dataclass(frozen=True)
class Reserve:
    """How much free space to keep: *size* bytes or *percent* of the filesystem, whichever is larger."""

    size: int = 0
    percent: float = 0.0

    def __bool__(self) -> bool:
        return self.size > 0 or self.percent > 0

    def bytes_of(self, total: int) -> int:
        """The bytes kept free on a filesystem of *total* bytes."""
        return max(self.size, int(total * self.percent / 100))

    def __str__(self) -> str:
        """As ``--min-free-space`` takes it: ``256M, 1%``, ``4M``, ``0``."""
        parts = [option_size(self.size)] if self.size else []
        if self.percent:
            parts.append(f"{self.percent:g}%")
        return ", ".join(parts) if parts else "0"


# The default keeps room for deletes on any disk: 1% of the filesystem (as
# MinIO fills a drive to 99% at most) but never less than 256 MiB, far more
# than the WAL pages a DeleteObjects of 1000 keys, an abort or a checkpoint
# need, and the rest of the server's own writes between two samples.
DEFAULT_RESERVE = Reserve(256 * MiB, 1.0)
NO_RESERVE = Reserve()


def human(size: int) -> str:
    """*size* bytes in binary units (``4 MiB``, ``1.5 GiB``, ``512 bytes``)."""
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if abs(size) >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + " " + unit
    return f"{size} bytes"


def option_size(size: int) -> str:
    """*size* bytes as a size option reads it: the largest binary unit that divides it (``4M``, ``1536K``)."""
    for unit, scale in (("T", 1024**4), ("G", 1024**3), ("M", MiB), ("K", 1024)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


class Claim:
    """Room held for one write's bytes: promised until they reach the disk, then spent.

    ``size`` is what the claim holds room for; ``extend`` makes it more
    (refused, StorageFull, if the reserve would be crossed). A claim ends
    ``kept`` (its bytes are committed) or ``dropped`` (nothing of it stays).
    """

    def __init__(self, space: "Space", size: int) -> None:
        self._space = space
        self.size = size
        self._promised = size

    def extend(self, size: int) -> None:
        """Hold room for *size* bytes in all (more than now); StorageFull if they do not fit."""
        self._space._promise(size - self.size)
        self._promised += size - self.size
        self.size = size

    def stored(self, count: int) -> None:
        """*count* of the claimed bytes have been written to a file (the filesystem counts them now)."""
        self._space._settle(self, min(count, self._promised), spent=True)

    def kept(self) -> None:
        """The write is committed: whatever is still promised is on the disk now (inline bytes)."""
        self._space._settle(self, self._promised, spent=True)

    def dropped(self) -> None:
        """The write failed or was refused: what is still promised will never be written."""
        self._space._settle(self, self._promised, spent=False)

    def __del__(self) -> None:
        # A claim its write forgot to end (a bug) must not hold its room for ever: a
        # store whose promises only grew would end up refusing every write.
        if self._promised:
            self.dropped()


class _NoClaim(Claim):
    """The claim of a store without a reserve: it holds nothing and refuses nothing."""

    def __init__(self) -> None:
        self.size = 1 << 62
        self._promised = 0

    def extend(self, size: int) -> None:
        pass

    def stored(self, count: int) -> None:
        pass

    def kept(self) -> None:
        pass

    def dropped(self) -> None:
        pass


NO_CLAIM: Claim = _NoClaim()


class Space:
    """The free space of one filesystem (the one holding *path*), and the claims on it.

    Thread-safe: claims are made on the reactor and in copy and image
    threads. *statvfs* and *clock* are os.statvfs and time.monotonic,
    replaced by tests.
    """

    def __init__(
        self,
        path: str,
        reserve: Reserve = DEFAULT_RESERVE,
        *,
        statvfs: Callable[[str], Any] = os.statvfs,
        clock: Callable[[], float] = time.monotonic,
        interval: float = SAMPLE_INTERVAL,
    ) -> None:
        self.path = path
        self.reserve = reserve
        self._statvfs = statvfs
        self._clock = clock
        self._interval = interval
        # Reentrant: a forgotten claim's __del__ may run while this thread holds it.
        self._lock = threading.RLock()
        self._sampled_at = float("-inf")
        self._sampled_free = 0
        self._reserved = 0
        # Bytes written to files since the sample, and bytes claimed but not written yet.
        self._spent = 0
        self._promised = 0

    def claim(self, size: int = 0) -> Claim:
        """Room for a write of *size* bytes (0: one that only changes rows); StorageFull if it would cross the reserve.

        The one entry point of every write verb. The caller ends the claim
        (``kept`` or ``dropped``); a claim of 0 bytes may just be forgotten.
        """
        if not self.reserve:
            return NO_CLAIM
        self._promise(size)
        return Claim(self, size)

    def free(self) -> int:
        """The free bytes as the reserve counts them: the last sample, less what was accepted since."""
        with self._lock:
            self._sample()
            return self._sampled_free - self._spent - self._promised

    def resample(self) -> None:
        """Look at the filesystem again at the next claim (files were just deleted)."""
        self._sampled_at = float("-inf")

    # -- the claims' bookkeeping --------------------------------------------

    def _promise(self, size: int) -> None:
        with self._lock:
            self._sample()
            free = self._sampled_free - self._spent - self._promised
            if free - size < self._reserved:
                raise StorageFull(self._refusal(free, size))
            self._promised += size

    def _settle(self, claim: Claim, count: int, spent: bool) -> None:
        with self._lock:
            claim._promised -= count
            self._promised -= count
            if spent:
                self._spent += count

    def _sample(self) -> None:
        now = self._clock()
        if now - self._sampled_at < self._interval:
            return
        stat = self._statvfs(self.path)
        self._sampled_free = stat.f_bavail * stat.f_frsize
        self._reserved = self.reserve.bytes_of(stat.f_blocks * stat.f_frsize)
        self._spent = 0
        self._sampled_at = now

    def _refusal(self, free: int, size: int) -> str:
        needs = f"; this write needs {human(size)}" if size else ""
        return (
            f"Storage backend has reached its minimum free drive threshold: {human(max(free, 0))} free, "
            f"and {human(self._reserved)} is kept free so that deletes always have room "
            f"(--min-free-space {self.reserve}){needs}. Delete objects or abort multipart uploads to make room."
        )
