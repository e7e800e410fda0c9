"""Reading a stored object: its bytes inline, in opened blobs, or in pinned blobs opened as the read goes.

Each body reads like ``contract.BodyReader``: ``read(offset, length)``
returns up to *length* bytes (stopping at a segment's end), and ``close``
lets go of what keeps the bytes (open files, pins). ``Pins`` is how an
object of many segments keeps its blobs from being unlinked by an
overwrite or delete while a read is still on its way through them.
"""

import bisect
import collections
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO, Optional

from objectstore.storage.blobs import BlobFiles
from objectstore.storage.records import Segment


class InlineBody:
    """The bytes of an object kept in the index, read like an ObjectBody."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]

    def close(self) -> None:
        self._data = b""


class ObjectBody:
    """The opened blobs of one object, read by absolute object offset."""

    def __init__(self, segments: Sequence[Segment], handles: Sequence[BinaryIO]) -> None:
        self._runs = list(zip(segments, handles, strict=True))

    def read(self, offset: int, length: int) -> bytes:
        """Up to *length* bytes from *offset*, never crossing a segment end."""
        for segment, handle in self._runs:
            if offset < segment.length:
                n = min(length, segment.length - offset)
                return os.pread(handle.fileno(), n, segment.offset + offset)
            offset -= segment.length
        return b""

    def close(self) -> None:
        for _, handle in self._runs:
            handle.close()
        self._runs = []


class SegmentedBody:
    """The pinned blobs of an object of many segments, each opened when the read reaches it.

    One blob is open at a time; reads go forward (a GET, a copy), so each is
    opened once. *release* runs at close, to unpin the blobs.
    """

    def __init__(self, segments: Sequence[Segment], files: BlobFiles, release: Callable[[], None]) -> None:
        self._segments = segments
        # Where each segment ends in the object, to find one by offset (bisect).
        self._ends = list(itertools.accumulate(segment.length for segment in segments))
        self._files = files
        self._release: Optional[Callable[[], None]] = release
        self._open: tuple[Optional[int], Optional[BinaryIO]] = (None, None)  # (index, handle)

    def read(self, offset: int, length: int) -> bytes:
        """Up to *length* bytes from *offset*, never crossing a segment end; b"" past the end or if a blob is gone."""
        index = bisect.bisect_right(self._ends, offset)
        if index >= len(self._segments) or self._release is None:
            return b""
        segment = self._segments[index]
        handle = self._handle(index)
        if handle is None:
            return b""
        start = self._ends[index] - segment.length
        n = min(length, self._ends[index] - offset)
        return os.pread(handle.fileno(), n, segment.offset + offset - start)

    def _handle(self, index):
        current, handle = self._open
        if current != index:
            if handle is not None:
                handle.close()
            handle = self._files.open(self._segments[index].blob)
            self._open = (index, handle)
        return handle

    def close(self) -> None:
        _, handle = self._open
        if handle is not None:
            handle.close()
        self._open = (None, None)
        if self._release is not None:
            release, self._release = self._release, None
            release()


class Pins:
    """Blobs that reads in progress still need, counted; an unlink of one waits for the last reader.

    Pinned and released in the reactor thread, claimed for unlinking in the
    writer thread: one lock keeps them apart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers: collections.Counter[str] = collections.Counter()
        self._doomed: set[str] = set()

    def pin(self, blobs: Iterable[str]) -> None:
        with self._lock:
            self._readers.update(blobs)

    def release(self, blobs: Iterable[str]) -> list[str]:
        """Unpin *blobs*; the doomed ones no read needs any more, to unlink now."""
        free = []
        with self._lock:
            for blob in blobs:
                self._readers[blob] -= 1
                if self._readers[blob] <= 0:
                    del self._readers[blob]
                    if blob in self._doomed:
                        self._doomed.discard(blob)
                        free.append(blob)
        return free

    def claim(self, blobs: Iterable[str]) -> list[str]:
        """Of *blobs* (garbage now), those to unlink at once; the pinned ones wait for their release."""
        with self._lock:
            if not self._readers:
                return list(blobs)
            free = []
            for blob in blobs:
                if blob in self._readers:
                    self._doomed.add(blob)
                else:
                    free.append(blob)
            return free
