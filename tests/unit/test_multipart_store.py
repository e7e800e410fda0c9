"""Multipart uploads in the store: parts, completion, listing, expiry, and reads of many-segment objects."""

import base64
import hashlib
import json
import os
import random
import time
import zlib

import pytest
import pytest_twisted
from awscrt import checksums as crt
from twisted.internet import reactor, task

from objectstore.auth.credentials import Credentials
from objectstore.checksums import b64digest, new_checksum
from objectstore.config import Config
from objectstore.errors import (
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    MalformedXML,
    NoSuchUpload,
)
from objectstore.service import DAY, StoreService
from objectstore.storage import multipart
from objectstore.storage.composite import composite_checksum, composite_etag, full_object_crc
from objectstore.storage.multipart import MIN_PART_SIZE, choose_parts
from objectstore.storage.records import RequestedPart, Upload
from objectstore.storage.store import Store
from objectstore.web.multipart_input import parse_complete
from tests.helpers import eventually, traced_writes

MiB = 1024 * 1024


async def new_upload(store, key="k", bucket="b", checksum=(None, None)):
    if bucket not in {b.name for b in store.list_buckets()}:
        await store.create_bucket(bucket, "o", "r", {"owner": "o", "grants": []})
    return await store.multipart.create(
        bucket,
        key,
        initiator="o",
        owner="o",
        acl={"owner": "o", "grants": []},
        headers={},
        metadata={},
        checksum=checksum,
    )


async def put_part(store, upload, number, data, checksums=None):
    writer = store.multipart.new_part_writer()
    writer.write(data)
    return await store.multipart.upload_part(upload, number, writer, checksums or {})


def requested(parts):
    return [RequestedPart(part.number, part.etag) for part in parts]


def read_all(store, key, bucket="b"):
    info, body = store.open_object(bucket, key)
    try:
        chunks, offset = [], 0
        while offset < info.size:
            data = body.read(offset, 1 << 20)
            assert data, "short read"
            chunks.append(data)
            offset += len(data)
        return b"".join(chunks)
    finally:
        body.close()


def blobs_on_disk(store):
    found = set()
    for folder in (store.files.tmp, store.files.home):
        for _, _, names in os.walk(folder):
            found.update(names)
    return found - store.files.spare_names()


# -- the checksums of completed objects ---------------------------------------------------------


def checksum_of(algorithm, data):
    running = new_checksum(algorithm)
    running.update(data)
    return b64digest(running)


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_a_full_object_crc_combined_from_parts_is_the_crc_of_the_whole(algorithm):
    rng = random.Random(algorithm)
    for _ in range(30):
        parts = [rng.randbytes(rng.choice([0, 1, 3, 100, 4096, 65537])) for _ in range(rng.randint(1, 7))]
        combined = full_object_crc(algorithm, [(checksum_of(algorithm, p), len(p)) for p in parts])
        assert combined == checksum_of(algorithm, b"".join(parts))


def test_the_reference_crcs_agree_with_the_ones_combined():
    data = b"123456789"
    halves = [(data[:4], 4), (data[4:], 5)]
    for algorithm, reference in (
        ("CRC32", zlib.crc32(data).to_bytes(4, "big")),
        ("CRC32C", crt.crc32c(data).to_bytes(4, "big")),
        ("CRC64NVME", crt.crc64nvme(data).to_bytes(8, "big")),
    ):
        parts = [(checksum_of(algorithm, piece), n) for piece, n in halves]
        assert full_object_crc(algorithm, parts) == base64.b64encode(reference).decode()


def test_composite_values_are_a_checksum_of_checksums_with_the_part_count():
    parts = [b"a" * 10, b"b" * 20, b"c"]
    sha = [hashlib.sha256(p).digest() for p in parts]
    values = [base64.b64encode(d).decode() for d in sha]
    assert (
        composite_checksum("SHA256", values) == base64.b64encode(hashlib.sha256(b"".join(sha)).digest()).decode() + "-3"
    )
    md5s = [hashlib.md5(p).hexdigest() for p in parts]
    assert composite_etag(md5s) == hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"


# -- choosing the parts a Complete names -----------------------------------------------------------


UPLOAD = Upload("u", "b", "k", "o", "o", {})


def stored_parts(*sizes):
    return {n: (f"blob{n}", size, f"etag{n}", {}) for n, size in enumerate(sizes, 1)}


@pytest.mark.parametrize(
    "numbers, error",
    [
        ([0, 1], InvalidArgument),
        ([1, 10001], InvalidArgument),
        ([2, 1], InvalidPartOrder),
        ([1, 2, 2, 1], InvalidPartOrder),
        ([1, 4], InvalidPart),
    ],
)
def test_complete_refuses_numbers_out_of_range_order_or_upload(numbers, error):
    stored = stored_parts(MIN_PART_SIZE, MIN_PART_SIZE, 1)
    with pytest.raises(error):
        choose_parts(UPLOAD, [RequestedPart(n, f"etag{n}") for n in numbers], stored)


def test_a_part_named_again_in_a_row_counts_by_its_last_entry():
    # s3-tests' test_multipart_resend_first_finishes_last: part 1 sent twice, the first send finishing last.
    stored = stored_parts(MIN_PART_SIZE, 1)
    requested = [RequestedPart(1, "stale"), RequestedPart(1, "etag1"), RequestedPart(2, "etag2")]
    assert [blob for blob, _, _, _ in choose_parts(UPLOAD, requested, stored)] == ["blob1", "blob2"]
    with pytest.raises(InvalidPart):
        choose_parts(UPLOAD, [RequestedPart(1, "etag1"), RequestedPart(1, "stale")], stored)


def test_complete_refuses_a_wrong_etag_or_checksum():
    stored = stored_parts(MIN_PART_SIZE, 1)
    stored[2] = ("blob2", 1, "etag2", {"CRC32": "AAAAAA=="})
    with pytest.raises(InvalidPart):
        choose_parts(UPLOAD, [RequestedPart(1, "etag1"), RequestedPart(2, "other")], stored)
    with pytest.raises(InvalidPart):
        choose_parts(UPLOAD, [RequestedPart(1, "etag1"), RequestedPart(2, "etag2", {"CRC32": "AAAAAQ=="})], stored)
    chosen = choose_parts(UPLOAD, [RequestedPart(1, "etag1"), RequestedPart(2, "etag2", {"CRC32": "AAAAAA=="})], stored)
    assert [blob for blob, _, _, _ in chosen] == ["blob1", "blob2"]


def test_only_the_last_part_may_be_under_5_mib():
    stored = stored_parts(MIN_PART_SIZE, MIN_PART_SIZE - 1, 0)
    with pytest.raises(EntityTooSmall):
        choose_parts(UPLOAD, [RequestedPart(n, f"etag{n}") for n in (1, 2, 3)], stored)
    # Leaving the small part out, or making it the last, is fine; so is a last part of no bytes.
    assert len(choose_parts(UPLOAD, [RequestedPart(1, "etag1"), RequestedPart(3, "etag3")], stored)) == 2
    assert len(choose_parts(UPLOAD, [RequestedPart(1, "etag1"), RequestedPart(2, "etag2")], stored)) == 2


def test_an_object_over_5_tib_is_entity_too_large():
    stored = {n: (f"blob{n}", 5 * 1024**3, "e", {}) for n in range(1, 1026)}
    with pytest.raises(EntityTooLarge):
        choose_parts(UPLOAD, [RequestedPart(n, "e") for n in range(1, 1026)], stored)


def test_complete_documents_parse_with_or_without_quotes_and_namespace():
    body = (
        b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Part><ETag>&quot;abc&quot;</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>"
        b"<Part><PartNumber> 2 </PartNumber><ETag>def</ETag></Part>"
        b"<Part><PartNumber>123456789012</PartNumber><ETag>x</ETag></Part>"
        b"</CompleteMultipartUpload>"
    )
    assert parse_complete(body) == [
        RequestedPart(1, "abc", {"CRC32": "AAAAAA=="}),
        RequestedPart(2, "def"),
        RequestedPart(multipart.MAX_PARTS + 1, "x"),  # out of range, refused at Complete
    ]
    with pytest.raises(MalformedXML):
        parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>--1</PartNumber><ETag>x</ETag></Part>")


# -- parts and completion in the store ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_complete_makes_the_parts_blobs_the_object_segments_without_copying(store):
    upload = await new_upload(store)
    data = [os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE + 1), b"tail"]
    parts = [await put_part(store, upload, n, d) for n, d in enumerate(data, 1)]
    await store.index.tidied()
    part_blobs = blobs_on_disk(store)
    inodes = {os.stat(store.files.path(b)).st_ino for b in part_blobs}

    info = await store.multipart.complete(upload.id, "b", "k", requested(parts))
    await store.index.tidied()
    assert info.etag == composite_etag([hashlib.md5(d).hexdigest() for d in data])
    assert {s.blob for s in info.segments} == part_blobs == blobs_on_disk(store)
    assert {os.stat(store.files.path(b)).st_ino for b in part_blobs} == inodes
    assert read_all(store, "k") == b"".join(data)
    conn = store.index.reader()
    assert conn.execute("SELECT COUNT(*) FROM parts").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM uploads").fetchone() == (0,)
    with pytest.raises(NoSuchUpload):
        store.multipart.get(upload.id, "b", "k")


@pytest_twisted.ensureDeferred
async def test_a_part_arriving_after_its_upload_was_aborted_is_no_such_upload_and_leaves_no_blob(store):
    upload = await new_upload(store)
    writer = store.multipart.new_part_writer()
    writer.write(b"late part")
    await store.multipart.abort(upload.id, "b", "k")
    with pytest.raises(NoSuchUpload):
        await store.multipart.upload_part(upload, 1, writer, {})
    await store.index.tidied()
    assert blobs_on_disk(store) == set()


@pytest_twisted.ensureDeferred
async def test_completing_10000_parts_is_one_quick_write(store):
    upload = await new_upload(store)
    size, etag = MIN_PART_SIZE, hashlib.md5(b"").hexdigest()
    rows = [(upload.id, n, f"blob{n:05d}", size, etag, "{}", 0.0) for n in range(1, 10_001)]

    def insert(conn):
        conn.executemany(
            "INSERT INTO parts (upload, number, blob, size, etag, checksum, modified) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    await store.disk.write(insert)
    with traced_writes(store) as writes:
        info = await store.multipart.complete(upload.id, "b", "k", [RequestedPart(n, etag) for n in range(1, 10_001)])
    # Quick as in little work, which a loaded machine does not change: one write, running
    # at most a statement per part (its segment row) plus a handful, however many parts.
    (statements,) = writes
    assert len(statements) <= 10_000 + 8, sorted({s.split(" (")[0] for s in statements})
    assert (info.size, info.part_count) == (10_000 * size, 10_000)
    looked_up = store.get_object("b", "k")
    assert [s.blob for s in looked_up.segments] == [f"blob{n:05d}" for n in range(1, 10_001)]


@pytest_twisted.ensureDeferred
async def test_a_many_segment_object_read_during_its_overwrite_is_read_whole(store):
    upload = await new_upload(store)
    data = [os.urandom(MIN_PART_SIZE), os.urandom(1000)]
    parts = [await put_part(store, upload, n, d) for n, d in enumerate(data, 1)]
    await store.multipart.complete(upload.id, "b", "k", requested(parts))
    await store.index.tidied()
    old_blobs = blobs_on_disk(store)

    info, body = store.open_object("b", "k")
    first = body.read(0, 100)
    # Overwritten (and its blobs garbage) while the read is under way.
    writer = store.new_writer()
    writer.write(b"new")
    await store.put_object("b", "k", writer, owner="o", acl={}, headers={}, metadata={}, checksums={})
    await store.index.tidied()
    assert old_blobs <= blobs_on_disk(store)  # kept for the read
    rest = b""
    while len(first) + len(rest) < info.size:
        rest += body.read(len(first) + len(rest), 1 << 20)
    assert first + rest == b"".join(data)
    body.close()
    await store.index.tidied()
    # The release's unlink runs in a pool thread: the files go, then the blobs are recorded
    # for the next write to forget. Wait for both (a loaded machine may pause in between).
    await eventually(
        lambda: not old_blobs & blobs_on_disk(store) and old_blobs <= set(store.disk._unlinked),
        exceptions=(RuntimeError,),  # the deque may grow while it is read
    )
    # Their garbage rows go with the next write.
    await store.create_bucket("another", "o", "r", {})
    assert store.index.reader().execute("SELECT COUNT(*) FROM garbage").fetchone() == (0,)


@pytest_twisted.ensureDeferred
async def test_a_many_segment_object_holds_one_file_open_at_a_time(store):
    upload = await new_upload(store)
    data = [os.urandom(MIN_PART_SIZE) for _ in range(3)] + [b"end"]
    parts = [await put_part(store, upload, n, d) for n, d in enumerate(data, 1)]
    await store.multipart.complete(upload.id, "b", "k", requested(parts))
    fds_before = len(os.listdir("/proc/self/fd"))
    info, body = store.open_object("b", "k")
    try:
        assert len(os.listdir("/proc/self/fd")) == fds_before
        assert body.read(MIN_PART_SIZE - 2, 10) == data[0][-2:]  # stops at the segment's end
        assert len(os.listdir("/proc/self/fd")) == fds_before + 1
        assert body.read(3 * MIN_PART_SIZE, 10) == b"end"
        assert len(os.listdir("/proc/self/fd")) == fds_before + 1
        assert body.read(info.size, 10) == b""
    finally:
        body.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before


# -- listing uploads ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_uploads_are_listed_by_key_then_age_with_markers_and_prefixes(store):
    ids = {}
    for key in ("b", "a", "b", "c/1", "c/2", "d"):
        ids.setdefault(key, []).append((await new_upload(store, key)).id)

    async def keys(**kwargs):
        page = await store.multipart.list_uploads("b", **kwargs)
        return [(u.key, u.id) for u in page.uploads], page.prefixes, page.truncated

    everything = [("a", ids["a"][0]), ("b", ids["b"][0]), ("b", ids["b"][1])]
    everything += [("c/1", ids["c/1"][0]), ("c/2", ids["c/2"][0]), ("d", ids["d"][0])]
    assert await keys() == (everything, [], False)
    assert await keys(max_uploads=2) == (everything[:2], [], True)
    assert await keys(key_marker="b", upload_id_marker=ids["b"][0]) == (everything[2:], [], False)
    assert await keys(key_marker="b") == (everything[3:], [], False)
    assert await keys(delimiter="/") == (everything[:3] + everything[5:], ["c/"], False)
    assert await keys(delimiter="/", key_marker="c/") == (everything[5:], [], False)
    assert await keys(prefix="c/") == (everything[3:5], [], False)
    assert await keys(prefix="c", delimiter="/") == ([], ["c/"], False)
    assert await keys(max_uploads=0) == ([], [], False)
    page = await store.multipart.list_uploads("b", delimiter="/", max_uploads=4)
    assert (page.prefixes, page.truncated, page.next_key_marker, page.next_upload_id_marker) == (["c/"], True, "c/", "")


@pytest_twisted.ensureDeferred
async def test_parts_are_listed_in_pages(store):
    upload = await new_upload(store)
    for n in (3, 1, 2, 10):
        await put_part(store, upload, n, b"part %d" % n)
    page = await store.multipart.list_parts(upload, 0, 2)
    assert ([p.number for p in page.parts], page.truncated, page.next_marker) == ([1, 2], True, 2)
    page = await store.multipart.list_parts(upload, 2, 2)
    assert ([p.number for p in page.parts], page.truncated, page.next_marker) == ([3, 10], False, 10)
    assert page.parts[1].etag == hashlib.md5(b"part 10").hexdigest()


# -- expiry ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_expire_aborts_uploads_older_than_the_age_and_frees_their_parts(store):
    old, young = await new_upload(store, "old"), await new_upload(store, "young")
    await put_part(store, old, 1, b"old part")
    await put_part(store, young, 1, b"young part")
    now = time.time()
    aborted = await store.multipart.expire(7 * DAY, now=now + 7 * DAY - 1)
    assert aborted == 0
    # The old one started a day earlier: six days and a second later, it is seven days and a second old.
    await store.disk.write(
        lambda conn: conn.execute("UPDATE uploads SET created = created - ? WHERE id = ?", (DAY, old.id))
    )
    aborted = await store.multipart.expire(7 * DAY, now=now + 6 * DAY + 1)
    assert aborted == 1
    await store.index.tidied()
    with pytest.raises(NoSuchUpload):
        store.multipart.get(old.id, "b", "old")
    assert store.multipart.get(young.id, "b", "young").key == "young"
    assert len(blobs_on_disk(store)) == 1


@pytest_twisted.ensureDeferred
async def test_the_store_service_sweeps_expired_uploads_hourly_on_its_clock(tmp_path):
    clock = task.Clock()
    clock.advance(time.time())
    data_dir = str(tmp_path / "data")
    store = Store(data_dir, reactor=reactor)
    config = Config(data_dir=data_dir, admin_keys=("AKIDEXPIRYTEST000001", "secret"), multipart_expiry=1.0)
    service = StoreService(store, Credentials(store.index), config, clock=clock)
    service.startService()
    try:
        upload = await new_upload(store)
        there = []
        for _ in range(26):
            clock.advance(3600)
            await store.index.tidied()  # the sweep's write, queued before, is done
            age = clock.seconds() - upload.created
            there.append((age, store.index.reader().execute("SELECT COUNT(*) FROM uploads").fetchone()[0]))
        young, old = [c for age, c in there if age < DAY], [c for age, c in there if age > DAY + 3600]
        assert young and old
        assert set(young) == {1} and set(old) == {0}
    finally:
        service.stopService()


def test_an_expiry_of_zero_never_sweeps(tmp_path):
    data_dir = str(tmp_path / "data")
    store = Store(data_dir, reactor=reactor)
    config = Config(data_dir=data_dir, admin_keys=("AKIDEXPIRYTEST000002", "secret"), multipart_expiry=0)
    clock = task.Clock()
    service = StoreService(store, Credentials(store.index), config, clock=clock)
    service.startService()
    try:
        assert clock.getDelayedCalls() == []
    finally:
        service.stopService()


# -- deleting a bucket --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_deleting_a_bucket_drops_its_uploads_but_not_other_buckets(store):
    mine = await new_upload(store, "k", bucket="mine")
    theirs = await new_upload(store, "k", bucket="theirs")
    await put_part(store, mine, 1, b"mine")
    await put_part(store, theirs, 1, b"theirs")
    await store.delete_bucket("mine")
    await store.index.tidied()
    rows = store.index.reader().execute("SELECT upload, blob FROM parts").fetchall()
    assert [upload for upload, _ in rows] == [theirs.id]
    assert blobs_on_disk(store) == {rows[0][1]}
    assert json.loads(json.dumps(store.multipart.get(theirs.id, "theirs", "k").acl)) == {"owner": "o", "grants": []}
