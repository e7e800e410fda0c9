"""Builders of hostile and unusual bundles, for this package's tests and the registry's.

Every hostile case of docs/bundle-format.md §10 and docs/threat-model.md row 14 takes a
few lines::

    tar = tar_with_members([("../x", b"data")])           # or symlink(...), device(...), ...
    result = bundle_tar(tar, folder, size=4, user_id="1", cloud_certificate=cert)

    bomb = gzip_bomb(2 * 1024**3, prefix=tar_header("image.img", 1024))
    result = bundle_stream(bomb, folder, prefix="image.img", size=1024, gzipped=True,
                           image_digest="0" * 40, user_id="1", cloud_certificate=cert)

    hostile = rebuild_manifest(result.manifest, parts=[Part(0, "../x", digest)])
"""

import dataclasses
import io
import struct
import tarfile
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional, Union

from images.bundle import BundleResult, bundle_stream
from images.manifest import Manifest, build_manifest
from images.streams import IteratorReader

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# ---------------------------------------------------------------- tar members


@dataclasses.dataclass
class TarMember:
    info: tarfile.TarInfo
    data: bytes = b""


def regular(name: str, data: bytes = b"", **attributes: Any) -> TarMember:
    """A regular file; ``attributes`` set TarInfo fields (``pax_headers``, ``type``, ``size`` to lie, ...)."""
    attributes.setdefault("size", len(data))
    return _member(name, data, **{"type": tarfile.REGTYPE, **attributes})


def symlink(name: str, target: str) -> TarMember:
    return _member(name, type=tarfile.SYMTYPE, linkname=target)


def hardlink(name: str, target: str) -> TarMember:
    return _member(name, type=tarfile.LNKTYPE, linkname=target)


def char_device(name: str, major: int = 1, minor: int = 3) -> TarMember:
    return _member(name, type=tarfile.CHRTYPE, devmajor=major, devminor=minor)


def block_device(name: str, major: int = 8, minor: int = 0) -> TarMember:
    return _member(name, type=tarfile.BLKTYPE, devmajor=major, devminor=minor)


def fifo(name: str) -> TarMember:
    return _member(name, type=tarfile.FIFOTYPE)


def directory(name: str) -> TarMember:
    return _member(name, type=tarfile.DIRTYPE, mode=0o755)


def _member(name, data=b"", **attributes):
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    for key, value in attributes.items():
        setattr(info, key, value)
    return TarMember(info, data)


def tar_with_members(
    members: Iterable[Union[TarMember, tuple[str, bytes]]], *, format: int = tarfile.GNU_FORMAT
) -> bytes:
    """A tar stream, in memory, of ``members``: TarMember objects or (name, data) pairs for regular files.

    A member whose ``size`` attribute exceeds its data gets its data padded
    with zeros, so a header may claim any size a test needs.
    """
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=format) as tar:
        for member in members:
            if isinstance(member, tuple):
                member = regular(*member)
            data = member.data
            if member.info.isreg():
                data = data.ljust(member.info.size, b"\0")[: member.info.size]
                tar.addfile(member.info, io.BytesIO(data))
            else:
                tar.addfile(member.info)
    return out.getvalue()


def tar_header(name: str, size: int, type: bytes = tarfile.REGTYPE) -> bytes:
    """Just the GNU header block(s) of a member claiming ``size`` bytes: the start of a hand-made stream."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = type
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def end_of_archive(length_so_far: int) -> bytes:
    """Two zero blocks and the fill to a whole 10240-byte record."""
    length = length_so_far + 2 * tarfile.BLOCKSIZE
    return bytes(2 * tarfile.BLOCKSIZE + (-length % tarfile.RECORDSIZE))


# ---------------------------------------------------------------- sparse members


def sparse_contents(real_size: int, extents: Iterable[tuple[int, bytes]]) -> bytes:
    """The file a sparse member describes: zeros, with each (offset, data) extent in place."""
    contents = bytearray(real_size)
    for offset, data in extents:
        contents[offset : offset + len(data)] = data
    return bytes(contents)


def gnu_sparse_tar(name: str, real_size: int, extents: Iterable[tuple[int, bytes]]) -> bytes:
    """A tar stream holding one old-GNU sparse member (typeflag ``S``), as ``tar --format=gnu -S`` writes.

    ``extents`` are (offset, data) pairs in order, 512-byte aligned as GNU
    tar makes them; the rest of the file is a hole. More than four extents
    spill into extension blocks, as in GNU tar.
    """
    extents = _with_end_marker(real_size, extents)
    stored = b"".join(data for _, data in extents)
    info = tarfile.TarInfo(name)
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = len(stored)
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
    main = header[-tarfile.BLOCKSIZE :]
    entries = [(offset, len(data)) for offset, data in extents]
    for i, entry in enumerate(entries[:4]):
        main[386 + 24 * i : 410 + 24 * i] = _sparse_entry(*entry)
    main[482] = 1 if len(entries) > 4 else 0
    main[483:495] = _octal(real_size)
    header[-tarfile.BLOCKSIZE :] = _with_checksum(main)
    extensions = b""
    rest = entries[4:]
    while rest:
        block = bytearray(tarfile.BLOCKSIZE)
        for i, entry in enumerate(rest[:21]):
            block[24 * i : 24 * (i + 1)] = _sparse_entry(*entry)
        rest = rest[21:]
        block[504] = 1 if rest else 0
        extensions += bytes(block)
    stream = bytes(header) + extensions + _padded(stored)
    return stream + end_of_archive(len(stream))


def pax_sparse_tar(name: str, real_size: int, extents: Iterable[tuple[int, bytes]]) -> bytes:
    """A tar stream holding one POSIX sparse member, format 1.0 (``tar --format=posix --sparse-version=1.0 -S``)."""
    extents = _with_end_marker(real_size, extents)
    sparse_map = f"{len(extents)}\n" + "".join(f"{offset}\n{len(data)}\n" for offset, data in extents)
    data = _padded(sparse_map.encode("ascii")) + b"".join(data for _, data in extents)
    info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
    info.size = len(data)
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(real_size),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _with_end_marker(real_size: int, extents: Iterable[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """GNU tar ends a map with an empty extent at the file's size when the file ends in a hole."""
    extents = list(extents)
    if not extents or extents[-1][0] + len(extents[-1][1]) < real_size:
        extents.append((real_size, b""))
    return extents


def _sparse_entry(offset, length):
    return _octal(offset) + _octal(length)


def _octal(number):
    return b"%011o\0" % number


def _with_checksum(block):
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)
    return block


def _padded(data):
    return data + bytes(-len(data) % tarfile.BLOCKSIZE)


# ---------------------------------------------------------------- gzip bombs


def gzip_bomb(expanded_size: int, *, prefix: bytes = b"", block_size: int = 1024 * 1024) -> IteratorReader:
    """A valid gzip stream of ``prefix`` then zeros, ``expanded_size`` bytes in all, as a file object.

    It is produced as it is read and never holds more than one block: the
    deflate output of one block of zeros is computed once and repeated (each
    copy starts after a full flush, so it stands alone), and the CRC of the
    zeros is computed arithmetically. About 1 KiB of gzip per MiB expanded.
    """
    if expanded_size < len(prefix):
        raise ValueError("the prefix is longer than the expanded size")
    return IteratorReader(_gzip_bomb_chunks(expanded_size, prefix, block_size))


def _gzip_bomb_chunks(expanded_size, prefix, block_size):
    zeros = expanded_size - len(prefix)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # gzip header: magic, deflate, no flags, mtime 0, maximum compression, unknown OS.
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    yield deflater.compress(prefix) + deflater.flush(zlib.Z_FULL_FLUSH)
    whole_blocks, rest = divmod(zeros, block_size)
    if whole_blocks:
        one_block = deflater.compress(bytes(block_size)) + deflater.flush(zlib.Z_FULL_FLUSH)
        for _ in range(whole_blocks):
            yield one_block
    yield deflater.compress(bytes(rest)) + deflater.flush(zlib.Z_FINISH)
    crc = crc32_of_zeros(zlib.crc32(prefix), zeros)
    yield struct.pack("<II", crc, expanded_size & 0xFFFFFFFF)


def crc32_of_zeros(crc: int, count: int) -> int:
    """``zlib.crc32(bytes(count), crc)`` without making the bytes.

    Appending zero bytes is a linear map of the (inverted) CRC register; it
    is applied by repeated squaring of its 32x32 bit matrix over GF(2), as
    zlib's crc32_combine does.
    """
    register = crc ^ 0xFFFFFFFF
    # The map for one zero bit, then squared: 2 bits, 4 bits, 8 bits = one byte.
    operator = [0xEDB88320] + [1 << n for n in range(31)]
    for _ in range(3):
        operator = _gf2_square(operator)
    while count:
        if count & 1:
            register = _gf2_times(operator, register)
        count >>= 1
        if count:
            operator = _gf2_square(operator)
    return register ^ 0xFFFFFFFF


def _gf2_times(matrix, vector):
    total = 0
    row = 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix):
    return [_gf2_times(matrix, column) for column in matrix]


# ---------------------------------------------------------------- bundles and manifests


def bundle_tar(tar: bytes, destination: str, *, size: int, prefix: str = "image.img", **options: Any) -> BundleResult:
    """Bundle ready-made tar bytes (hostile or not); ``options`` as for ``bundle_stream``."""
    return bundle_stream(io.BytesIO(tar), destination, prefix=prefix, size=size, **options)


def rebuild_manifest(manifest: Manifest, *, private_key: Optional["RSAPrivateKey"] = None, **changes: Any) -> bytes:
    """The manifest's bytes, re-serialised with ``changes`` (build_manifest's keywords) and re-signed."""
    fields: dict[str, Any] = {
        "name": manifest.name,
        "user": manifest.user,
        "image_digest": manifest.image_digest,
        "size": manifest.size,
        "bundled_size": manifest.bundled_size,
        "parts": manifest.parts,
        "ec2_encrypted_key": manifest.ec2_encrypted_key,
        "ec2_encrypted_iv": manifest.ec2_encrypted_iv,
        "user_encrypted_key": manifest.user_encrypted_key,
        "user_encrypted_iv": manifest.user_encrypted_iv,
        "architecture": manifest.architecture,
        "image_type": manifest.type,
        "kernel_id": manifest.kernel_id,
        "ramdisk_id": manifest.ramdisk_id,
        "block_device_mapping": manifest.block_device_mapping,
        "bundler_name": manifest.bundler_name,
        "bundler_version": manifest.bundler_version,
        "version": manifest.version,
    }
    fields.update(changes)
    return build_manifest(private_key=private_key, **fields)
