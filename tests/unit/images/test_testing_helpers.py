"""The hostile-bundle builders make what they claim, so tests built on them mean something."""

import gzip
import io
import shutil
import subprocess
import tarfile
import zlib

import pytest

from images.testing import (
    crc32_of_zeros,
    gnu_sparse_tar,
    gzip_bomb,
    hardlink,
    pax_sparse_tar,
    regular,
    sparse_contents,
    symlink,
    tar_with_members,
)


@pytest.mark.parametrize("crc, count", [(0, 0), (0, 1), (0, 1000), (0xDEADBEEF, 4097), (12345, 3 * 1024 * 1024 + 5)])
def test_crc32_of_zeros_matches_zlib(crc, count):
    assert crc32_of_zeros(crc, count) == zlib.crc32(bytes(count), crc)


@pytest.mark.parametrize("size, prefix", [(0, b""), (10, b"abc"), (5 * 1024 * 1024 + 3, b"header" * 100)])
def test_a_gzip_bomb_is_valid_gzip_of_its_prefix_then_zeros(size, prefix):
    data = gzip_bomb(size, prefix=prefix, block_size=1024 * 1024).read()
    assert gzip.decompress(data) == prefix + bytes(size - len(prefix))


EXTENTS = [(0, b"a" * 1024), (5120, b"b" * 512), (9216, b"c" * 512), (20480, b"d" * 512), (30720, b"e" * 512)]


@pytest.mark.parametrize("builder", [gnu_sparse_tar, pax_sparse_tar])
def test_sparse_builders_make_what_tarfile_reads(builder):
    tar = tarfile.open(fileobj=io.BytesIO(builder("disk.img", 50000, EXTENTS)))
    member = tar.next()
    assert (member.name, member.size, member.issparse()) == ("disk.img", 50000, True)
    assert tar.extractfile(member).read() == sparse_contents(50000, EXTENTS)


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("builder", [gnu_sparse_tar, pax_sparse_tar])
def test_sparse_builders_make_what_gnu_tar_reads(builder):
    result = subprocess.run(["tar", "xOf", "-"], input=builder("disk.img", 50000, EXTENTS), capture_output=True)
    assert result.returncode == 0 and result.stdout == sparse_contents(50000, EXTENTS)


def test_member_builders_make_the_member_types_they_name():
    tar = tarfile.open(
        fileobj=io.BytesIO(tar_with_members([("a", b"1"), symlink("b", "/"), hardlink("c", "/etc/passwd")]))
    )
    a, b, c = tar.getmembers()
    assert a.isreg() and (b.issym(), b.linkname) == (True, "/") and (c.islnk(), c.linkname) == (True, "/etc/passwd")


def test_a_regular_member_can_claim_more_than_its_data():
    member = tarfile.open(fileobj=io.BytesIO(tar_with_members([regular("a", b"12", size=5)]))).next()
    assert member.size == 5
