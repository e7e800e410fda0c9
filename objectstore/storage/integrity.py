"""Finding bit rot: an object's bytes checked against what was recorded when they were written.

Every segment this release writes has the CRC32 of its bytes (``segments.crc32``;
inline bytes: ``inline_data.crc32``). Rows written before CRCs were kept have
their ETag: the MD5 of the body of an object uploaded whole, or for one
completed from N parts (each a segment) the MD5 of the parts' MD5s and
``-N``. That is what they are checked against, once the last byte is in,
and a scrub that passes records their CRCs (storage/scrub.py).

A ``Check`` covers a span of the object. Whoever reads it (a GET, a copy,
the scrubber) feeds a ``Verifier`` the bytes as they are read, and the check
is decided at the span's last byte, before that byte is handed on: a
mismatch raises ObjectDamaged instead of returning it, so a client never
receives the last byte of a damaged object and cannot take it for whole
(as Swift's object server cuts its stream). A read that starts elsewhere than
a span's first byte (a range) decides nothing for that span; ``VerifyingBody``
says so when closed, so that the object is read whole in the background and a
range cannot keep damage hidden.
"""

import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional, Protocol, Union

from isal.isal_zlib import crc32  # zlib's CRC32, SIMD-fast (see setup.py)

from objectstore.errors import ObjectDamaged
from objectstore.storage.contract import BodyReader
from objectstore.storage.records import ObjectInfo

_PLAIN_ETAG = re.compile(r"[0-9a-f]{32}")
_MULTIPART_ETAG = re.compile(r"([0-9a-f]{32})-([0-9]+)")


# What a digest is fed: bytes as read, or a slice of them taken without copying.
Chunk = Union[bytes, memoryview]


class Digest(Protocol):
    """A running checksum of the bytes fed to it, and whether it is what was recorded."""

    def update(self, data: Chunk) -> None: ...

    def matches(self) -> bool: ...


class CRC32:
    """zlib's CRC32, against the value recorded."""

    def __init__(self, expected: int) -> None:
        self._expected = expected
        self.value = 0

    def update(self, data: Chunk) -> None:
        self.value = crc32(data, self.value)

    def matches(self) -> bool:
        return self.value == self._expected


class HexDigest:
    """A hashlib algorithm (MD5 for an ETag, SHA1 for an image) against the hex digest recorded."""

    def __init__(self, algorithm: str, expected: str) -> None:
        self._hash = hashlib.new(algorithm)
        self._expected = expected

    def update(self, data: Chunk) -> None:
        self._hash.update(data)

    def matches(self) -> bool:
        return self._hash.hexdigest() == self._expected


class PartMD5s:
    """A multipart ETag: the MD5 of each part's MD5 (parts of the *lengths* given, in order), and ``-N``."""

    def __init__(self, lengths: Sequence[int], expected: str) -> None:
        self._lengths = list(lengths)
        self._expected = expected
        self._digests: list[bytes] = []
        self._part = hashlib.md5()
        self._left = self._lengths[0] if self._lengths else 0
        self._overflow = False  # bytes past the last part: never what was recorded

    def update(self, data: Chunk) -> None:
        view = memoryview(data)
        while view and self._left >= 0:  # -1: past the last part, where no byte should be
            take = min(len(view), self._left)
            self._part.update(view[:take])
            view = view[take:]
            self._left -= take
            if self._left == 0:
                self._end_part()
        while self._left == 0 and len(self._digests) < len(self._lengths):
            self._end_part()  # empty parts at the end
        if view:
            self._overflow = True

    def _end_part(self) -> None:
        self._digests.append(self._part.digest())
        self._part = hashlib.md5()
        n = len(self._digests)
        self._left = self._lengths[n] if n < len(self._lengths) else -1

    def matches(self) -> bool:
        if self._overflow or len(self._digests) != len(self._lengths):
            return False
        combined = hashlib.md5(b"".join(self._digests)).hexdigest()
        return f"{combined}-{len(self._lengths)}" == self._expected


@dataclass(frozen=True)
class Check:
    """Bytes [start, end) of an object must make *digest()* match; *what* names them in a report."""

    start: int
    end: int
    digest: Callable[[], Digest]
    what: str


def object_checks(info: ObjectInfo, inline_crc: Optional[int] = None) -> list[Check]:
    """The checks *info*'s bytes must pass; *inline_crc*: the CRC32 of its inline bytes, if it has them.

    Empty for an object with nothing recorded to check against: an empty
    one, or one from before CRCs whose ETag is neither form above.
    """
    size = info.size
    if size == 0:
        return []
    if not info.segments:
        if inline_crc is not None:
            recorded = inline_crc
            return [Check(0, size, lambda: CRC32(recorded), "its bytes")]
        return _etag_checks(info)
    if all(segment.crc32 is not None for segment in info.segments):
        checks, start = [], 0
        for number, segment in enumerate(info.segments, 1):
            end = start + segment.length
            if end > start:
                crc = segment.crc32
                what = "its bytes" if len(info.segments) == 1 else f"part {number}"
                checks.append(Check(start, end, functools.partial(CRC32, crc), what))
            start = end
        return checks
    return _etag_checks(info)


def _etag_checks(info: ObjectInfo) -> list[Check]:
    """The check of an object from before CRCs: its ETag, over the whole of it."""
    if _PLAIN_ETAG.fullmatch(info.etag) and len(info.segments) <= 1:
        etag = info.etag
        return [Check(0, info.size, lambda: HexDigest("md5", etag), "its bytes (against their MD5 ETag)")]
    found = _MULTIPART_ETAG.fullmatch(info.etag)
    if found and int(found.group(2)) == len(info.segments):
        lengths = [segment.length for segment in info.segments]
        etag = info.etag
        return [Check(0, info.size, lambda: PartMD5s(lengths, etag), "its parts (against their multipart ETag)")]
    return []


class Verifier:
    """Decides *checks* as their bytes are fed in order, each at its last byte."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self._checks = [check for check in checks if check.end > check.start]
        self._by_start = {check.start: i for i, check in enumerate(self._checks)}
        self._current: Optional[int] = None  # the check being fed
        self._running: Optional[Digest] = None
        self._position = -1  # the offset the next byte fed must have to go on with it
        self._passed: set[int] = set()
        self.touched = False

    @property
    def checkable(self) -> bool:
        """Is anything recorded to check these bytes against?"""
        return bool(self._checks)

    @property
    def complete(self) -> bool:
        """Has every check passed?"""
        return len(self._passed) == len(self._checks)

    def feed(self, offset: int, data: bytes) -> Optional[str]:
        """Bytes [offset, offset + len(data)) as read; what fails its check, if the last byte of one is among them."""
        if not data:
            return None
        self.touched = True
        if offset != self._position:
            # A jump: nothing fed so far counts for the check it was in; one starting here begins afresh.
            self._current = self._by_start.get(offset)
            self._running = None
            self._position = offset
        view = memoryview(data)
        while view and self._current is not None:
            check = self._checks[self._current]
            if self._running is None:
                self._running = check.digest()
            take = min(len(view), check.end - self._position)
            self._running.update(view[:take])
            view = view[take:]
            self._position += take
            if self._position == check.end:
                passed, self._running = self._running.matches(), None
                if not passed:
                    return f"{check.what} fail{'' if check.what.startswith('its') else 's'} the checksum recorded"
                self._passed.add(self._current)
                self._current = self._by_start.get(check.end)
        if view:
            self._position += len(view)
        return None


class VerifyingBody:
    """A BodyReader whose reads are checked on the way (see Verifier).

    On a mismatch *damaged(what)* runs and the read raises ObjectDamaged
    rather than hand on the bytes. At close, *unverified()* runs if bytes
    were read but not every check decided (a range): the object is to be
    read whole elsewhere. Either may run in any thread.
    """

    def __init__(
        self, body: BodyReader, verifier: Verifier, damaged: Callable[[str], None], unverified: Callable[[], None]
    ) -> None:
        self._body = body
        self._verifier = verifier
        self._damaged = damaged
        self._unverified: Optional[Callable[[], None]] = unverified

    def read(self, offset: int, length: int) -> bytes:
        data = self._body.read(offset, length)
        problem = self._verifier.feed(offset, data)
        if problem is not None:
            self._unverified = None
            self._damaged(problem)
            raise ObjectDamaged()
        return data

    def close(self) -> None:
        self._body.close()
        verifier, unverified, self._unverified = self._verifier, self._unverified, None
        if unverified is not None and verifier.touched and verifier.checkable and not verifier.complete:
            unverified()
