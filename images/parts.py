"""Bundle parts: cutting ciphertext into part files, and reading parts back only once they check out (§2.5, §6.5)."""

import hashlib
import os
from collections.abc import Callable, Generator
from typing import Any, BinaryIO, Optional

from images.errors import BundleError, DigestMismatch, MissingPart
from images.manifest import Part


def part_file_name(prefix: str, index: int) -> str:
    """``<prefix>.part.NN``: at least two digits, as euca2ools writes them."""
    return f"{prefix}.part.{index:02d}"


class PartWriter:
    """Writes a byte stream into part files of exactly ``part_size`` bytes.

    A new part is opened as soon as one fills up, so a stream whose length is
    an exact multiple of ``part_size`` ends with an empty part: euca2ools
    keeps writing until a part comes out short, and readers expect that.
    """

    def __init__(self, folder: str, prefix: str, part_size: int) -> None:
        if part_size <= 0:
            raise ValueError("part_size must be positive")
        self._folder = folder
        self._prefix = prefix
        self._part_size = part_size
        self._paths: list[str] = []
        self._parts: list[Part] = []
        self._total = 0
        self._file: Any = None  # the part file being written
        self._open_next()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            piece = view[: self._part_size - self._length]
            self._file.write(piece)
            self._sha1.update(piece)
            self._length += len(piece)
            view = view[len(piece) :]
            if self._length == self._part_size:
                self._finish_current()
                self._open_next()

    def close(self) -> tuple[tuple[Part, ...], tuple[str, ...], int]:
        """Finish the last part; returns ``(parts, paths, total_bytes)``."""
        self._finish_current()
        return tuple(self._parts), tuple(self._paths), self._total

    def discard(self) -> None:
        """Remove every part written so far (after a failure)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for path in self._paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _open_next(self):
        index = len(self._paths)
        path = os.path.join(self._folder, part_file_name(self._prefix, index))
        self._paths.append(path)
        self._file = open(path, "wb")
        self._sha1 = hashlib.sha1()
        self._length = 0

    def _finish_current(self):
        self._file.close()
        self._file = None
        index = len(self._parts)
        self._parts.append(Part(index, os.path.basename(self._paths[index]), self._sha1.hexdigest()))
        self._total += self._length


def verified_part_chunks(
    open_part: Callable[[Part], BinaryIO],
    part: Part,
    chunk_size: int,
    checkpoint: Optional[Callable[[], object]] = None,
) -> Generator[bytes, None, None]:
    """The part's bytes, ``chunk_size`` at a time, but only after the whole part matched its digest.

    The part is read twice: once to hash it, then again to use it. The second
    read is hashed too, so a part that changes in between is caught (the
    caller then discards whatever it made of it). ``checkpoint`` is called
    after every chunk of the first read, so a long check can be cancelled.
    """
    fileobj = _open(open_part, part)
    try:
        first = hashlib.sha1()
        for chunk in _chunks(fileobj, part, chunk_size):
            first.update(chunk)
            if checkpoint is not None:
                checkpoint()
        if first.hexdigest() != part.digest:
            raise DigestMismatch(
                f"part {part.index} ({part.filename}) does not match its digest in the manifest:"
                " it is corrupt, truncated or from another bundle"
            )
        _rewind(fileobj, part)
        second = hashlib.sha1()
        for chunk in _chunks(fileobj, part, chunk_size):
            second.update(chunk)
            yield chunk
        if second.hexdigest() != part.digest:
            raise DigestMismatch(f"part {part.index} ({part.filename}) changed while it was being read")
    finally:
        fileobj.close()


def _open(open_part, part):
    try:
        return open_part(part)
    except FileNotFoundError:
        raise MissingPart(f"part {part.index} ({part.filename}) is missing") from None
    except OSError as e:
        raise BundleError(f"part {part.index} ({part.filename}) cannot be opened: {e.strerror or e}") from None


def _chunks(fileobj, part, chunk_size):
    while True:
        try:
            chunk = fileobj.read(chunk_size)
        except OSError as e:
            raise BundleError(f"part {part.index} ({part.filename}) cannot be read: {e.strerror or e}") from None
        if not chunk:
            return
        yield chunk


def _rewind(fileobj, part):
    try:
        fileobj.seek(0)
    except OSError as e:
        raise BundleError(f"part {part.index} ({part.filename}) cannot be read twice: {e.strerror or e}") from None
