"""Where an object's bytes go while they arrive: memory while small, a blob once not.

Small objects are kept in the index itself (``inline_data``), so
publishing one is a single SQLite commit, shared with the rest of its
batch: no temp file to create, fdatasync, rename and unlink. A durable
4 KiB PUT then costs one WAL fsync per batch instead of three per object
(blob, tmp/ folder, WAL). Bigger objects spill into a temp blob as soon as
they pass the limit, so memory stays bounded by the limit per upload.
"""

import errno
import hashlib
from typing import Optional, Protocol

from isal.isal_zlib import crc32  # zlib's CRC32, SIMD-fast (see setup.py)

from objectstore.storage.blobs import BlobFiles, BlobWriter
from objectstore.storage.space import NO_CLAIM, Claim

# Objects up to this size live in the index. SQLite reads and writes blobs
# of this size faster than the file system (https://sqlite.org/intern-v-extern-blob.html)
# and it keeps an upload's buffer small.
INLINE_LIMIT = 64 * 1024
COPY_CHUNK = 1024 * 1024


class RangeReader(Protocol):
    """What copy_body reads from: the reading half of ``contract.BodyReader`` (a part's window of one is enough)."""

    def read(self, offset: int, length: int) -> bytes: ...


class ObjectWriter:
    """Receives an object's bytes, hashing them on the way (the MD5 is the ETag; the CRC32, what reads check).

    *claim* holds the free space the bytes take (see storage/space.py): a
    body longer than it claimed claims more as it arrives, and is refused
    (StorageFull) once it would cross the reserve.
    """

    def __init__(self, files: BlobFiles, inline_limit: int = INLINE_LIMIT, claim: Claim = NO_CLAIM) -> None:
        self._files = files
        self._limit = inline_limit
        self.claim = claim
        self.size = 0
        self.md5 = hashlib.md5()
        # zlib's CRC32 of the bytes so far: what a read or a scrub checks
        # them against later (storage/integrity.py). At ~5 GB/s it costs a
        # fraction of the MD5 beside it.
        self.crc32 = 0
        self._buffer = bytearray()
        self._blob: Optional[BlobWriter] = None

    @property
    def blob(self) -> Optional[str]:
        """The temp blob holding the bytes, or None while they are inline."""
        return None if self._blob is None else self._blob.blob

    def data(self) -> bytes:
        """The bytes of an inline object."""
        assert self._blob is None, "the object spilled into a blob"
        return bytes(self._buffer)

    def write(self, data: bytes) -> None:
        size = self.size + len(data)
        if size > self.claim.size:
            self.claim.extend(size)
        self.md5.update(data)
        self.crc32 = crc32(data, self.crc32)
        self.size = size
        if self._blob is None:
            if size <= self._limit:
                self._buffer += data
                return
            self._blob = self._files.writer()
            self._blob.write(self._buffer)
            self.claim.stored(len(self._buffer))
            self._buffer = bytearray()
        self._blob.write(data)
        self.claim.stored(len(data))

    def finish(self) -> None:
        """Every byte is in (BodySink). Nothing to check or flush: a blob's bytes are made durable by
        ``sync``, in the commit batch that publishes them, off the reactor."""

    def sync(self) -> None:
        """Make a blob's bytes durable (blocking; nothing to do for inline bytes)."""
        if self._blob is not None:
            self._blob.sync()

    def published(self) -> None:
        """The bytes are committed: the space they take is the filesystem's to count now."""
        self.claim.kept()

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._blob is not None:
            self._blob.abort()
        self.claim.dropped()


def copy_body(
    files: BlobFiles, body: RangeReader, size: int, inline_limit: int = INLINE_LIMIT, claim: Claim = NO_CLAIM
) -> ObjectWriter:
    """Copy an opened object's bytes into a new writer, synced (blocking: run in a thread).

    The copy is hashed on the way, so the new object's ETag is the MD5 of
    what was actually written. *claim*: the room claimed for its *size* bytes.
    """
    writer = ObjectWriter(files, inline_limit, claim)
    try:
        offset = 0
        while offset < size:
            data = body.read(offset, min(COPY_CHUNK, size - offset))
            if not data:
                raise OSError(errno.EIO, "blob shorter than its record")
            writer.write(data)
            offset += len(data)
        writer.finish()
        writer.sync()
    except BaseException:
        writer.abort()
        raise
    return writer
