"""The tar stream of a bundle, written as euca2ools 3.1+ writes it (docs/bundle-format.md §2.1)."""

import tarfile
from collections.abc import Generator

from images.errors import BundleError
from images.streams import Readable

BLOCK_SIZE = tarfile.BLOCKSIZE  # 512
RECORD_SIZE = tarfile.RECORDSIZE  # 10240: tar's default 20-block record
_CHECKSUM = slice(148, 156)
_DEVICE_NUMBERS = slice(329, 345)  # devmajor, devminor


def single_member_tar(fileobj: Readable, name: str, size: int, chunk_size: int) -> Generator[bytes, None, None]:
    """Yield a GNU-format tar stream holding one regular file read from ``fileobj``.

    Header: mode 0644, uid/gid 0, mtime 0, no user or group names, a GNU
    LongLink header before names over 100 bytes and base-256 sizes from 8 GiB
    (tarfile does both). Then the data padded to 512 bytes, two zero blocks,
    and zero fill to a whole 10240-byte record. ``size`` bytes must come out
    of ``fileobj``: an image that shrinks or grows while it is read is refused.
    """
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.type = tarfile.REGTYPE
    header = _with_device_numbers(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
    yield header

    remaining = size
    while remaining:
        chunk = fileobj.read(min(chunk_size, remaining))
        if not chunk:
            raise BundleError(f"the image shrank while it was being bundled ({size - remaining} of {size} bytes read)")
        remaining -= len(chunk)
        yield chunk
    if fileobj.read(1):
        raise BundleError(f"the image grew while it was being bundled (it was {size} bytes)")

    written = len(header) + size + _padding(size, BLOCK_SIZE) + 2 * BLOCK_SIZE
    yield bytes(_padding(size, BLOCK_SIZE) + 2 * BLOCK_SIZE + _padding(written, RECORD_SIZE))


def _with_device_numbers(header):
    """Write devmajor/devminor as "0000000\\0", as euca2ools' tarfile did.

    Newer Pythons leave them NUL for anything but device nodes; the stream's
    SHA1 is the image digest, so the bytes are kept as the reference producer
    wrote them. The header is one block, or a LongLink block, the long name,
    then the member's block: the first and last blocks are the headers.
    """
    header = bytearray(header)
    for start in sorted({0, len(header) - BLOCK_SIZE}):
        block = header[start : start + BLOCK_SIZE]
        if block[_DEVICE_NUMBERS] == bytes(16):
            block[_DEVICE_NUMBERS] = b"0000000\0" * 2
            block[_CHECKSUM] = b"        "
            block[_CHECKSUM] = b"%06o\0 " % sum(block)
            header[start : start + BLOCK_SIZE] = block
    return bytes(header)


def _padding(length, multiple):
    return -length % multiple
