"""The streaming pieces: gunzip as gzip(1) reads, and a pull-based reader for tarfile."""

import gzip
import os
import zlib

import pytest

from images.errors import DecryptError
from images.streams import IteratorReader, gunzip


def chunks_of(data, size):
    return [data[i : i + size] for i in range(0, len(data), size)]


def inflate(data, feed=7, max_chunk=100):
    return b"".join(gunzip(chunks_of(data, feed), max_chunk))


@pytest.mark.parametrize("feed", [1, 7, 4096])
def test_one_gzip_member_inflates_in_any_chunking(feed):
    data = os.urandom(3000) + bytes(5000)
    assert inflate(gzip.compress(data), feed=feed) == data


def test_concatenated_members_inflate_as_one_stream():
    assert inflate(gzip.compress(b"first ") + gzip.compress(b"") + gzip.compress(b"second")) == b"first second"


def test_zero_padding_between_and_after_members_is_skipped():
    assert inflate(gzip.compress(b"a") + bytes(100) + gzip.compress(b"b") + bytes(1000)) == b"ab"


def test_no_output_chunk_is_larger_than_asked():
    data = bytes(10 * 1024 * 1024)
    sizes = [len(chunk) for chunk in gunzip([gzip.compress(data)], 65536)]
    assert max(sizes) == 65536 and sum(sizes) == len(data)


def test_a_stream_cut_short_is_a_decrypt_error():
    with pytest.raises(DecryptError, match="ends early"):
        inflate(gzip.compress(os.urandom(1000))[:-10])


def test_garbage_after_a_member_is_a_decrypt_error():
    with pytest.raises(DecryptError, match="not valid gzip"):
        inflate(gzip.compress(b"image") + b"trailing garbage")


def test_a_bad_checksum_is_a_decrypt_error():
    data = bytearray(gzip.compress(b"image data" * 100))
    data[-6] ^= 1  # the CRC32 in the trailer
    with pytest.raises(DecryptError, match="not valid gzip"):
        inflate(bytes(data))


def test_raw_deflate_without_a_gzip_header_is_a_decrypt_error():
    with pytest.raises(DecryptError):
        inflate(zlib.compress(b"not gzip"))


@pytest.mark.parametrize("data", [b"", bytes(50)])
def test_no_compressed_data_at_all_is_a_decrypt_error(data):
    with pytest.raises(DecryptError, match="no compressed data"):
        inflate(data)


def test_the_reader_returns_what_was_asked_across_chunk_boundaries():
    reader = IteratorReader(iter([b"abc", b"", b"defgh", b"i"]))
    assert [reader.read(2), reader.read(4), reader.read(0), reader.read(100), reader.read(5)] == [
        b"ab",
        b"cdef",
        b"",
        b"ghi",
        b"",
    ]
    assert reader.position == 9


def test_the_reader_reads_everything_when_no_size_is_given():
    assert IteratorReader(iter([b"abc", b"def"])).read() == b"abcdef"


def test_closing_the_reader_closes_the_pipeline_behind_it():
    closed = []

    def pipeline():
        try:
            yield b"x"
            yield b"y"
        finally:
            closed.append(True)

    reader = IteratorReader(pipeline())
    reader.read(1)
    reader.close()
    assert closed == [True]
