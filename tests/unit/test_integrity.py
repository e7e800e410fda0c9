"""storage/integrity.py: what an object's bytes are checked against, and the Verifier that decides as they are read."""

import hashlib
import os
import zlib

import pytest

from objectstore.errors import ObjectDamaged
from objectstore.storage.integrity import (
    CRC32,
    Check,
    HexDigest,
    PartMD5s,
    Verifier,
    VerifyingBody,
    object_checks,
)
from objectstore.storage.records import ObjectInfo, Segment


def info(data_parts, etag=None, crcs=True):
    """An ObjectInfo of segments holding *data_parts*, CRCs recorded unless *crcs* is False."""
    segments = tuple(
        Segment(f"blob{n}", 0, len(part), zlib.crc32(part) if crcs else None) for n, part in enumerate(data_parts)
    )
    whole = b"".join(data_parts)
    return ObjectInfo("b", "k", len(whole), etag or hashlib.md5(whole).hexdigest(), 0.0, "owner", {}, segments=segments)


def multipart_etag(parts):
    combined = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f"{combined}-{len(parts)}"


def feed_all(verifier, data, chunk):
    """Feed *data* in *chunk*-sized reads; the first problem reported, or None."""
    for offset in range(0, len(data), chunk):
        problem = verifier.feed(offset, data[offset : offset + chunk])
        if problem is not None:
            return offset, problem
    return None


def flipped(data, at):
    out = bytearray(data)
    out[at] ^= 0x80
    return bytes(out)


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_a_whole_read_in_any_chunking_passes_every_check(chunk):
    parts = [os.urandom(5000), os.urandom(3), os.urandom(10000)]
    verifier = Verifier(object_checks(info(parts), None))
    assert feed_all(verifier, b"".join(parts), chunk) is None
    assert verifier.complete and verifier.checkable


@pytest.mark.parametrize("at", [0, 4999, 5000, 5002, 15002])
def test_a_flipped_byte_fails_its_part_at_the_read_holding_that_parts_last_byte(at):
    parts = [os.urandom(5000), os.urandom(3), os.urandom(10000)]
    data = flipped(b"".join(parts), at)
    verifier = Verifier(object_checks(info(parts), None))
    offset, problem = feed_all(verifier, data, 1000)
    ends = [5000, 5003, 15003]
    number = next(n for n, end in enumerate(ends, 1) if at < end)
    # Reported by the read that holds that part's last byte: before that byte is handed on.
    assert offset <= ends[number - 1] - 1 < offset + 1000
    assert problem == f"part {number} fails the checksum recorded"
    assert not verifier.complete


def test_a_one_segment_object_names_its_bytes():
    data = os.urandom(100)
    verifier = Verifier(object_checks(info([data]), None))
    assert verifier.feed(0, flipped(data, 50)) == "its bytes fail the checksum recorded"


def test_inline_bytes_are_checked_against_their_own_crc():
    data = os.urandom(300)
    record = ObjectInfo("b", "k", 300, hashlib.md5(data).hexdigest(), 0.0, "o", {})
    assert Verifier(object_checks(record, zlib.crc32(data))).feed(0, data) is None
    assert Verifier(object_checks(record, zlib.crc32(data))).feed(0, flipped(data, 299)) is not None


def test_a_range_decides_nothing_and_a_jump_starts_afresh():
    parts = [os.urandom(100), os.urandom(100)]
    data = b"".join(parts)
    verifier = Verifier(object_checks(info(parts), None))
    # A range inside part 1, then one from the middle of part 1 to the end of part 2: neither
    # covers part 1 from its start, so only part 2 (read from its own start) is decided.
    assert verifier.feed(10, flipped(data, 20)[10:50]) is None
    assert verifier.feed(50, data[50:]) is None
    assert verifier.touched and not verifier.complete
    # A range that begins at a part's start decides that part.
    verifier = Verifier(object_checks(info(parts), None))
    assert verifier.feed(100, flipped(data, 150)[100:]) == "part 2 fails the checksum recorded"


def test_an_empty_object_has_nothing_to_check():
    assert object_checks(info([]), None) == []


def test_objects_from_before_crcs_are_checked_against_their_md5_etag():
    data = os.urandom(2000)
    record = info([data], crcs=False)
    checks = object_checks(record, None)
    assert [c.what for c in checks] == ["its bytes (against their MD5 ETag)"]
    assert Verifier(checks).feed(0, data) is None
    assert Verifier(checks).feed(0, flipped(data, 3)) is not None


def test_multipart_objects_from_before_crcs_are_checked_against_their_multipart_etag():
    parts = [os.urandom(700), os.urandom(300), os.urandom(5)]
    record = info(parts, etag=multipart_etag(parts), crcs=False)
    checks = object_checks(record, None)
    assert [c.what for c in checks] == ["its parts (against their multipart ETag)"]
    data = b"".join(parts)
    assert feed_all(Verifier(checks), data, 64) is None
    assert feed_all(Verifier(checks), flipped(data, 900), 64) is not None


def test_an_etag_that_is_no_digest_of_the_bytes_leaves_an_old_object_uncheckable():
    # A copy's or a composed object's ETag from an old release: nothing to check against.
    record = info([b"abc", b"def"], etag="0123456789abcdef0123456789abcdef-7", crcs=False)
    assert object_checks(record, None) == []
    assert not Verifier([]).checkable


def test_part_md5s_handles_empty_trailing_parts_and_a_byte_too_many():
    digest = PartMD5s([3, 0], multipart_etag([b"abc", b""]))
    digest.update(b"abc")
    assert digest.matches()
    digest = PartMD5s([3], multipart_etag([b"abc"]))
    digest.update(b"abcd")
    assert not digest.matches()


def test_digests_compare_against_what_was_recorded():
    crc = CRC32(zlib.crc32(b"hello"))
    crc.update(b"hel")
    crc.update(memoryview(b"lo"))
    assert crc.matches()
    md5 = HexDigest("md5", hashlib.md5(b"x").hexdigest())
    md5.update(b"y")
    assert not md5.matches()


def _appender(found):
    return lambda: found.append(True)


class Body:
    def __init__(self, data):
        self.data = data
        self.closed = False

    def read(self, offset, length):
        return self.data[offset : offset + length]

    def close(self):
        self.closed = True


def test_verifying_body_refuses_the_failing_read_and_reports_it_once():
    data = os.urandom(1000)
    found, unverified = [], []
    body = VerifyingBody(
        Body(flipped(data, 999)),
        Verifier([Check(0, 1000, lambda: CRC32(zlib.crc32(data)), "its bytes")]),
        damaged=found.append,
        unverified=lambda: unverified.append(True),
    )
    assert body.read(0, 500) == flipped(data, 999)[:500]
    with pytest.raises(ObjectDamaged):
        body.read(500, 500)
    body.close()
    assert found == ["its bytes fail the checksum recorded"] and unverified == []


def test_verifying_body_asks_for_a_whole_read_after_a_range_only():
    data = os.urandom(1000)
    check = [Check(0, 1000, lambda: CRC32(zlib.crc32(data)), "its bytes")]
    for reads, asked in (([(10, 100)], True), ([(0, 1000)], False), ([], False)):
        unverified: list = []
        body = VerifyingBody(Body(data), Verifier(check), damaged=pytest.fail, unverified=_appender(unverified))
        for offset, length in reads:
            body.read(offset, length)
        body.close()
        assert bool(unverified) == asked, reads
