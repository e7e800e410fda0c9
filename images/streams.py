"""Small pieces for streaming bundles in constant memory: chunk readers, gunzip, a pull-based file."""

import zlib
from collections.abc import Generator, Iterable
from typing import Optional, Protocol

from images.errors import DecryptError

GZIP_WBITS = 31  # zlib's "gzip header and trailer" mode


class Readable(Protocol):
    """A binary file object as far as reading it forward goes (a file, BytesIO, IteratorReader)."""

    def read(self, size: int = -1, /) -> bytes: ...


def read_chunks(fileobj: Readable, chunk_size: int) -> Generator[bytes, None, None]:
    """The file's bytes from where it stands, ``chunk_size`` at a time."""
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            return
        yield chunk


def gunzip(chunks: Iterable[bytes], max_chunk: int) -> Generator[bytes, None, None]:
    """Decompress a gzip stream (several concatenated members allowed, as gzip itself does).

    No output chunk is larger than ``max_chunk``, so a decompression bomb never
    inflates more than that in memory at once: whoever consumes the chunks
    decides when to stop. Zero bytes between or after members are skipped, as
    Python's gzip module does.
    """
    inflater = None  # None between members
    members = 0
    for data in chunks:
        pending = True
        while pending:
            if inflater is None:
                data = data.lstrip(b"\0")
                if not data:
                    break
                inflater = zlib.decompressobj(wbits=GZIP_WBITS)
            try:
                output = inflater.decompress(data, max_chunk)
            except zlib.error as e:
                raise DecryptError(
                    f"the decrypted image is not valid gzip data ({e}): wrong key or corrupt bundle"
                ) from None
            if output:
                yield output
            if inflater.eof:
                members += 1
                data = inflater.unused_data
                inflater = None
                pending = bool(data)
            else:
                data = inflater.unconsumed_tail
                # Output cut at max_chunk may leave more inside zlib even when
                # all the input went in: ask again until it comes out short.
                pending = bool(data) or len(output) == max_chunk
    if inflater is not None:
        raise DecryptError("the compressed image ends early: a part is missing or truncated")
    if members == 0:
        raise DecryptError("the bundle holds no compressed data")


class IteratorReader:
    """A read-only, forward-only file over an iterator of byte chunks.

    This turns the pull of ``tarfile`` (``read(n)``) into pulls on the chunk
    pipeline behind it, so nothing is buffered beyond one chunk.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = b""
        self._offset = 0
        self.position = 0

    def read(self, size: Optional[int] = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(self._read_pieces(None))
        return b"".join(self._read_pieces(size))

    def _read_pieces(self, size):
        pieces = []
        wanted = size
        while wanted is None or wanted > 0:
            if self._offset >= len(self._chunk):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._chunk, self._offset = chunk, 0
                continue
            end = len(self._chunk) if wanted is None else self._offset + wanted
            piece = self._chunk[self._offset : end]
            self._offset += len(piece)
            self.position += len(piece)
            if wanted is not None:
                wanted -= len(piece)
            pieces.append(piece)
        return pieces

    def close(self) -> None:

        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
