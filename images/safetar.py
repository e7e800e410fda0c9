"""Take the one image file out of a bundle's tar stream, refusing anything else (docs/bundle-format.md §6.7).

A bundle's tar stream must hold exactly one regular file. Everything else a
tar can carry - links, devices, FIFOs, directories, names that climb out of a
folder, a second member, data hidden after the end - is refused, and the
member's name is only ever reported, never used as a path.

tarfile reads GNU long names, pax headers and sparse maps into memory while
it parses a header, so headers are bounded twice: a header block claiming a
large metadata record is refused as soon as it is parsed, and the bytes
tarfile may read while parsing headers are budgeted.
"""

import os
import re
import secrets
import tarfile
from collections.abc import Callable
from typing import Optional

from images.errors import BundleError, DigestMismatch, ImageTooLarge, UnsafeArchive
from images.streams import Readable

# What a tar stream may add to its member's data: the header, a long-name or
# pax record, two end blocks and the fill to a 10240-byte record.
TAR_OVERHEAD = 64 * 1024
# The largest long-name or pax record accepted (names beyond 4096 bytes are not real).
METADATA_LIMIT = 16 * 1024
# The most tarfile may read while parsing the member's headers, read-ahead included
# (a GNU sparse map of some 40000 extents fits).
HEADER_BUDGET = 1024 * 1024

_METADATA_TYPES = {
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
}
_FILE_TYPES = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.GNUTYPE_SPARSE}
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.DIRTYPE: "a directory",
    tarfile.CONTTYPE: "a contiguous file",
}
# Problems tarfile raises on malformed input: some of its parsers let a bare
# ValueError out (an unparsable sparse map, say).
_TAR_PROBLEMS = (tarfile.TarError, ValueError, OverflowError, EOFError)


def stream_cap(image_size: int) -> int:
    """The most a tar stream holding an image of ``image_size`` bytes may be."""
    return image_size + (-image_size % tarfile.BLOCKSIZE) + TAR_OVERHEAD


def extract_image(
    tar_stream: Readable,
    write: Callable[[bytes], object],
    *,
    image_size: int,
    max_member_size: int,
    chunk_size: int,
    on_start: Optional[Callable[[], object]] = None,
) -> str:
    """Pass the data of the tar stream's only member to ``write``; returns the member's name.

    ``tar_stream`` is read forward only. The member must be a regular file of
    exactly ``image_size`` bytes; the whole stream is read to its end so that
    whoever hashes it sees every byte. ``on_start`` is called just before the
    first byte is written. What ``write``, ``on_start`` and ``tar_stream``
    raise comes out unchanged.
    """
    reader = _BudgetedReader(tar_stream)
    tar_problems = _TarProblems(reader)
    reader.allow(HEADER_BUDGET)
    with tar_problems:
        # Stream mode ("r|") only calls read(); typeshed's overloads want a whole file object.
        tar = tarfile.open(fileobj=reader, mode="r|", tarinfo=_checked_header_class(max_member_size))  # type: ignore[call-overload]
        member = tar.next()
    if member is None:
        raise UnsafeArchive("the image archive is empty")
    check_member(member)
    if member.size > max_member_size:
        raise ImageTooLarge(
            f"the image archive's member claims {member.size} bytes, more than the {max_member_size} allowed"
        )
    if member.size != image_size:
        raise DigestMismatch(f"the image in the archive is {member.size} bytes but the manifest says {image_size}")
    reader.allow(None)
    if on_start is not None:
        on_start()
    with tar_problems:
        source = tar.extractfile(member)
    copied = 0
    while True:
        with tar_problems:
            chunk = source.read(chunk_size)
        if not chunk:
            break
        write(chunk)
        copied += len(chunk)
    if copied != member.size:
        raise UnsafeArchive(f"the image archive ends inside its member ({copied} of {member.size} bytes)")
    with tar_problems:
        _read_to_end(tar, chunk_size)
    return member.name


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse a member that is not a plain regular file with a harmless name."""
    name = member.name
    shown = repr(name[:200])
    if not name:
        raise UnsafeArchive("the image archive's member has no name")
    if name.startswith(("/", "\\")):
        raise UnsafeArchive(f"the image archive's member {shown} has an absolute name")
    if ".." in re.split(r"[/\\]", name):
        raise UnsafeArchive(f"the image archive's member {shown} has a '..' in its name")
    if member.type not in _FILE_TYPES:
        kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
        raise UnsafeArchive(f"the image archive's member {shown} is {kind}; only a regular file is allowed")
    # A second opinion from Python's own extraction filter (PEP 706), where
    # this Python has it. Its destination only has to not exist: the member
    # is never written by name.
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        return
    destination = os.path.join(os.sep, "nonexistent-" + secrets.token_hex(8))
    try:
        data_filter(member, destination)
    except tarfile.FilterError as e:
        raise UnsafeArchive(
            f"the image archive's member {shown} is refused by tar's data filter ({type(e).__name__})"
        ) from None


def _checked_header_class(max_member_size):
    """A TarInfo that refuses an oversized header the moment its block is parsed.

    Without this, tarfile would read a long-name or pax record of any claimed
    size into memory before showing us the member.
    """

    class CheckedHeader(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf, encoding, errors):
            header = super().frombuf(buf, encoding, errors)
            if header.type in _METADATA_TYPES and header.size > METADATA_LIMIT:
                raise UnsafeArchive(
                    f"the image archive has a {header.size}-byte header record; at most {METADATA_LIMIT} is allowed"
                )
            if header.size > max_member_size:
                raise ImageTooLarge(
                    f"the image archive's member claims {header.size} bytes, more than the {max_member_size} allowed"
                )
            return header

    return CheckedHeader


class _BudgetedReader:
    """The tar stream as tarfile reads it, with an optional limit on how much more may be read."""

    def __init__(self, stream):
        self._stream = stream
        self._position = 0
        self._limit = None
        self.upstream_error = None

    def allow(self, budget):
        self._limit = None if budget is None else self._position + budget

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._stream.read(size)
        except BaseException as e:
            self.upstream_error = e
            raise
        self._position += len(data)
        if self._limit is not None and self._position > self._limit:
            raise UnsafeArchive(f"the image archive's headers take more than {HEADER_BUDGET} bytes")
        return data


class _TarProblems:
    """Turns what tarfile raises on malformed input into ``UnsafeArchive``.

    Only tarfile's own complaints: a BundleError, or whatever the stream
    feeding tarfile raised (a cancelling callback, say), passes unchanged.
    """

    def __init__(self, reader):
        self._reader = reader

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, BundleError) or error is self._reader.upstream_error:
            return False
        if isinstance(error, _TAR_PROBLEMS):
            raise UnsafeArchive(f"the image archive is not a valid tar stream: {error}") from None
        return False


def _read_to_end(tar, chunk_size):
    """Read the rest of the stream: only zeros may follow the member.

    tarfile itself would stop at the first zero block and take a corrupt
    header for the end of the archive; reading on means a second member,
    hidden or not, is refused, and the caller's hash covers the record fill.
    """
    stream = tar.fileobj
    stream.read(tar.offset - stream.tell())  # the zero padding of the member's last block
    end = stream.read(tarfile.BLOCKSIZE)
    if end.count(0) != len(end):
        raise UnsafeArchive(_describe_second_member(end, tar))
    while chunk := stream.read(chunk_size):
        if chunk.count(0) != len(chunk):
            raise UnsafeArchive("the image archive has data after its end-of-archive marker")


def _describe_second_member(block, tar):
    try:
        header = tarfile.TarInfo.frombuf(block, tar.encoding, tar.errors)
    except _TAR_PROBLEMS:
        return "the image archive has data after its member where the end-of-archive marker belongs"
    return f"the image archive holds a second member {header.name[:200]!r}; only one is allowed"
