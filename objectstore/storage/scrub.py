"""Reading stored objects whole, at a bounded rate, to find bit rot before a client does.

``ObjectScrub`` checks objects one at a time against what was recorded
when they were written (storage/integrity.py), in a thread of its own: it
blocks on reads and on its ``Pace``. What it finds it settles through the
*write* it is given: a damaged object is marked (refused to readers from
then on), and an object from before CRCs that passes its MD5 check has its
CRCs recorded, so that its next check is the cheap one.

It may run beside a server (``objectstore-manage scrub``, or the server's
own background scrub). A blob is never rewritten, only unlinked once no
row names it, and its id is never reused, so bytes read from an opened
blob are the bytes of the object whose row named it; a blob found missing
or a check found failing is confirmed against the row again, and an object
replaced or deleted meanwhile is not reported.
"""

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from isal.isal_zlib import crc32  # zlib's CRC32, SIMD-fast (see setup.py)

from objectstore.errors import NoSuchBucket, NoSuchKey
from objectstore.storage import rows
from objectstore.storage.blobs import BlobFiles
from objectstore.storage.integrity import Verifier, object_checks
from objectstore.storage.records import ObjectInfo

CHUNK = 1024 * 1024
PAGE = 100

# What a check of one object (or image) found.
OK = "ok"
DAMAGED = "damaged"  # found now, and marked
QUARANTINED = "quarantined"  # marked damaged before
UNREADABLE = "unreadable"  # a blob missing or short (fsck's to report in detail)
UNCHECKABLE = "uncheckable"  # nothing recorded to check it against
GONE = "gone"  # deleted or replaced while being checked: nothing to say
STOPPED = "stopped"  # the scrub was stopped before it was done

DAMAGE = (DAMAGED, QUARANTINED, UNREADABLE)


@dataclass
class Verdict:
    state: str
    what: str = ""
    read: int = 0  # bytes read to decide
    info: Optional[ObjectInfo] = None
    # CRC32s to record for rows from before CRCs, once they passed: (Segment, crc); None for inline bytes.
    crcs: list = field(default_factory=list)


class Stopped(Exception):
    """The scrub was asked to stop."""


class Pace:
    """Keeps reads to *rate* bytes a second on average (0: as fast as the disk goes).

    *wait(seconds)* sleeps and returns True if the scrub is to stop
    meanwhile (a threading.Event's wait does both).
    """

    def __init__(self, rate: int, wait: Callable[[float], bool], clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._wait = wait
        self._clock = clock
        self._due = clock()

    def spend(self, n: int) -> None:
        """*n* bytes were read: sleep off what they cost (Stopped if told to stop meanwhile)."""
        if self.rate <= 0:
            return
        now = self._clock()
        # A pause (a quiet spell between objects) earns no burst afterwards.
        self._due = max(self._due, now) + n / self.rate
        if self._due > now and self._wait(self._due - now):
            raise Stopped()


def unpaced() -> Pace:
    return Pace(0, lambda seconds: False)


class ObjectScrub:
    """Checks objects of the index read on *conn* (this thread's) with blobs in *files*.

    *write(operation)* runs ``operation(conn)`` in an index write and
    returns its result (blocking): ``Index.write_now`` in a command, a call
    into the reactor in the server.
    """

    def __init__(self, conn: Any, files: BlobFiles, write: Callable[[Callable[[Any], Any]], Any], pace: Pace) -> None:
        self._conn = conn
        self._files = files
        self._write = write
        self.pace = pace

    def objects(self, after: int = 0) -> Iterator[tuple[int, Verdict]]:
        """``(id, verdict)`` of every object with an id above *after*, by id (settled as they come)."""
        while True:
            page = rows.objects_after(self._conn, after, PAGE)
            if not page:
                return
            for object_id, bucket, key in page:
                yield object_id, self.check(bucket, key)
                after = object_id

    def check(self, bucket: str, key: str) -> Verdict:
        """Read ``bucket/key`` whole against its checksums and settle what was found (Stopped if told to stop)."""
        verdict = self._read(bucket, key)
        info = verdict.info
        if verdict.state == DAMAGED and info is not None:
            if not self._write(lambda conn: rows.mark_damaged(conn, info, verdict.what)):
                return Verdict(GONE, read=verdict.read)  # replaced (or marked by a reader) meanwhile
        elif verdict.state in (OK, UNCHECKABLE) and verdict.crcs and info is not None:
            self._write(lambda conn: rows.record_crcs(conn, info, verdict.crcs))
        return verdict

    def _read(self, bucket: str, key: str) -> Verdict:
        try:
            info, (data, inline_crc) = rows.lookup_object(self._conn, rows.OBJECT_WITH_BYTES, bucket, key)
        except (NoSuchKey, NoSuchBucket):
            return Verdict(GONE)
        if info.damage is not None:
            return Verdict(QUARANTINED, info.damage, info=info)
        verifier = Verifier(object_checks(info, inline_crc))
        crcs: list = []
        read = 0
        if not info.segments:
            data = data or b""
            for offset in range(0, len(data), CHUNK):
                chunk = data[offset : offset + CHUNK]
                self.pace.spend(len(chunk))
                problem = verifier.feed(offset, chunk)
                if problem is not None:
                    # Row and bytes came from one statement: the damage is this object's.
                    return Verdict(DAMAGED, problem, len(data), info)
            read = len(data)
            if inline_crc is None:
                crcs.append((None, crc32(data)))
        else:
            start = 0
            for number, segment in enumerate(info.segments, 1):
                handle = self._files.open(segment.blob)
                if handle is None:
                    return self._confirmed(Verdict(UNREADABLE, f"part {number}'s blob is missing", read, info))
                with handle:
                    crc, done = 0, 0
                    while done < segment.length:
                        chunk = os.pread(handle.fileno(), min(CHUNK, segment.length - done), segment.offset + done)
                        if not chunk:
                            what = f"part {number}'s blob is shorter than its record"
                            return self._confirmed(Verdict(UNREADABLE, what, read, info))
                        self.pace.spend(len(chunk))
                        crc = crc32(chunk, crc)
                        problem = verifier.feed(start + done, chunk)
                        done += len(chunk)
                        read += len(chunk)
                        if problem is not None:
                            return self._confirmed(Verdict(DAMAGED, problem, read, info))
                if segment.crc32 is None:
                    crcs.append((segment, crc))
                start += segment.length
        if not verifier.checkable and info.size > 0:
            # Nothing older to check it against (an ETag that is no digest of its bytes): its CRCs
            # from now are a baseline, as an old image's are, so that later rot is found.
            return Verdict(UNCHECKABLE, read=read, info=info, crcs=crcs)
        return Verdict(OK, read=read, info=info, crcs=crcs)

    def _confirmed(self, verdict: Verdict) -> Verdict:
        """*verdict* if its object is still its key's (same ETag, time and blobs); GONE if it was replaced."""
        info = verdict.info
        assert info is not None
        try:
            now = rows.lookup_object(self._conn, rows.OBJECT_WITH_SEGMENTS, info.bucket, info.key)[0]
        except (NoSuchKey, NoSuchBucket):
            return Verdict(GONE, read=verdict.read)
        same = (now.etag, now.modified, [s.blob for s in now.segments]) == (
            info.etag,
            info.modified,
            [s.blob for s in info.segments],
        )
        return verdict if same else Verdict(GONE, read=verdict.read)
