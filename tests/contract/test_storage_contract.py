"""The storage contract (objectstore/storage/contract.py), checked against every backend in conftest.BACKENDS.

Written against the protocols only: no SQL, no file paths, no private
attributes, so that the distributed backend runs the same tests unchanged.
"""

import hashlib
import inspect

import pytest
import pytest_twisted

from objectstore.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooSmall,
    InvalidPart,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
)
from objectstore.storage.contract import BodyReader, MultipartUploads, ObjectStore, UploadWriter
from objectstore.storage.records import RequestedPart
from tests.contract.conftest import settle

MiB = 1024 * 1024
ACL = {"owner": "alice", "grants": [["alice", "FULL_CONTROL"]]}


def payload(seed, size):
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


async def put(store, bucket, key, data, **fields):
    writer = store.new_writer()
    for start in range(0, len(data), 100_000):
        writer.write(data[start : start + 100_000])
    writer.finish()
    values = dict(owner="alice", acl=ACL, headers={}, metadata={}, checksums={})
    values.update(fields)
    return await store.put_object(bucket, key, writer, **values)


def read_range(body, offset, length):
    """*length* bytes from *offset*, in as many reads as the body needs (it may answer short)."""
    pieces = []
    while length > 0:
        piece = body.read(offset, length)
        if not piece:
            break
        pieces.append(piece)
        offset += len(piece)
        length -= len(piece)
    return b"".join(pieces)


async def read_all(store, bucket, key):
    info, body = await settle(store.open_object(bucket, key))
    try:
        return info, read_range(body, 0, info.size)
    finally:
        body.close()


async def keys_of(store, bucket, **options):
    return [entry.key for entry in (await store.list_objects(bucket, **options)).entries]


async def failure_of(call):
    """The error *call* raises, at once or from what it returns."""
    try:
        await settle(call())
    except Exception as e:  # noqa: BLE001 - the test looks at it
        return e
    raise AssertionError("expected an error")


def test_the_backend_declares_every_verb_of_the_contract_with_its_parameters(store):
    assert isinstance(store, ObjectStore)
    assert isinstance(store.multipart, MultipartUploads)
    assert isinstance(store.new_writer(), UploadWriter)
    for protocol, implementation in ((ObjectStore, store), (MultipartUploads, store.multipart)):
        for name, declared in inspect.getmembers(protocol, inspect.isfunction):
            if name.startswith("_"):
                continue
            implemented = inspect.signature(getattr(implementation, name))
            wanted = [p for p in inspect.signature(declared).parameters if p != "self"]
            assert list(implemented.parameters) == wanted, name


@pytest_twisted.ensureDeferred
async def test_buckets_are_created_listed_refused_twice_and_deleted(store):
    made = await store.create_bucket("photos", "alice", "eu-west-1", ACL)
    assert (made.name, made.owner, made.region, made.acl) == ("photos", "alice", "eu-west-1", ACL)
    found = await settle(store.get_bucket("photos"))
    assert (found.name, found.owner, found.region, found.acl) == ("photos", "alice", "eu-west-1", ACL)
    await store.create_bucket("bob-stuff", "bob", "us-east-1", ACL)
    assert [b.name for b in await settle(store.list_buckets("alice"))] == ["photos"]
    assert [b.name for b in await settle(store.list_buckets())] == ["bob-stuff", "photos"]
    assert isinstance(
        await failure_of(lambda: store.create_bucket("photos", "alice", "r", ACL)), BucketAlreadyOwnedByYou
    )
    assert isinstance(await failure_of(lambda: store.create_bucket("photos", "bob", "r", ACL)), BucketAlreadyExists)
    assert (await settle(store.get_bucket("photos"))).owner == "alice"  # the refusals changed nothing
    await store.set_bucket_acl("photos", {"owner": "alice", "grants": []})
    assert (await settle(store.get_bucket("photos"))).acl == {"owner": "alice", "grants": []}
    await store.delete_bucket("photos")
    assert isinstance(await failure_of(lambda: store.get_bucket("photos")), NoSuchBucket)
    assert isinstance(await failure_of(lambda: store.delete_bucket("photos")), NoSuchBucket)
    assert isinstance(await failure_of(lambda: store.set_bucket_acl("photos", ACL)), NoSuchBucket)


@pytest_twisted.ensureDeferred
async def test_a_bucket_keeps_its_tag_set_in_order_until_it_is_removed_or_the_bucket_goes(store):
    await store.create_bucket("tagged", "alice", "r", ACL)
    assert await settle(store.get_bucket_tags("tagged")) is None
    await store.set_bucket_tags("tagged", [("team", "blue"), ("cost", "42")])
    assert await settle(store.get_bucket_tags("tagged")) == [("team", "blue"), ("cost", "42")]
    await store.set_bucket_tags("tagged", [("only", "")])
    assert await settle(store.get_bucket_tags("tagged")) == [("only", "")]
    await store.set_bucket_tags("tagged", None)
    assert await settle(store.get_bucket_tags("tagged")) is None
    await store.set_bucket_tags("tagged", [("again", "x")])
    await store.delete_bucket("tagged")
    await store.create_bucket("tagged", "bob", "r", ACL)
    assert await settle(store.get_bucket_tags("tagged")) is None  # a new bucket of the name starts bare
    assert isinstance(await failure_of(lambda: store.get_bucket_tags("missing")), NoSuchBucket)
    assert isinstance(await failure_of(lambda: store.set_bucket_tags("missing", [("a", "b")])), NoSuchBucket)


@pytest_twisted.ensureDeferred
async def test_a_bucket_with_objects_is_not_deleted(store):
    await store.create_bucket("b", "alice", "r", ACL)
    await put(store, "b", "k", b"x")
    assert isinstance(await failure_of(lambda: store.delete_bucket("b")), BucketNotEmpty)
    assert (await read_all(store, "b", "k"))[1] == b"x"


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 64 * 1024 + 1, MiB + 3])
@pytest_twisted.ensureDeferred
async def test_an_object_is_read_back_whole_and_in_ranges_with_what_was_stored_with_it(store, size):
    await store.create_bucket("b", "alice", "r", ACL)
    data = payload("object", size)
    headers = {"Content-Type": "image/jpeg"}
    info = await put(
        store, "b", "dir/k", data, headers=headers, metadata={"camera": "x100"}, checksums={"CRC32": "AAAAAA=="}
    )
    assert (info.size, info.etag) == (size, hashlib.md5(data).hexdigest())
    found = await settle(store.get_object("b", "dir/k"))
    assert (found.size, found.etag, found.owner, found.acl) == (size, info.etag, "alice", ACL)
    assert (found.headers, found.metadata, found.checksums) == (headers, {"camera": "x100"}, {"CRC32": "AAAAAA=="})
    info, body = await settle(store.open_object("b", "dir/k"))
    assert isinstance(body, BodyReader)
    try:
        assert read_range(body, 0, size) == data
        assert read_range(body, size // 3, 1000) == data[size // 3 : size // 3 + 1000]
        assert body.read(size, 10) == b""
    finally:
        body.close()


@pytest_twisted.ensureDeferred
async def test_an_overwrite_is_seen_at_once_and_a_body_opened_before_it_reads_the_old_bytes_whole(store):
    await store.create_bucket("b", "alice", "r", ACL)
    old, new = payload("old", 2 * MiB), payload("new", 3000)
    await put(store, "b", "k", old)
    _, body = await settle(store.open_object("b", "k"))
    try:
        info = await put(store, "b", "k", new)
        assert (await read_all(store, "b", "k"))[1] == new
        assert (await settle(store.get_object("b", "k"))).etag == info.etag
        await store.delete_object("b", "k")
        # Overwritten and deleted meanwhile: the open body still reads the old object.
        assert read_range(body, 0, len(old)) == old
    finally:
        body.close()
    assert isinstance(await failure_of(lambda: store.get_object("b", "k")), NoSuchKey)


@pytest_twisted.ensureDeferred
async def test_deleting_missing_keys_is_no_error_and_a_missing_bucket_is(store):
    await store.create_bucket("b", "alice", "r", ACL)
    await put(store, "b", "keep", b"k")
    await store.delete_object("b", "never-there")
    await store.delete_objects("b", ["a", "b", "keep"])
    assert await keys_of(store, "b") == []
    assert isinstance(await failure_of(lambda: store.delete_object("nobucket", "k")), NoSuchBucket)
    assert isinstance(await failure_of(lambda: store.get_object("nobucket", "k")), NoSuchBucket)
    assert isinstance(await failure_of(lambda: store.get_object("b", "keep")), NoSuchKey)


@pytest_twisted.ensureDeferred
async def test_a_put_into_a_missing_bucket_is_refused_and_stores_nothing(backend):
    store = backend.store
    assert isinstance(await failure_of(lambda: put(store, "nobucket", "k", payload("x", MiB))), NoSuchBucket)
    await store.create_bucket("nobucket", "alice", "r", ACL)
    assert await keys_of(store, "nobucket") == []


@pytest_twisted.ensureDeferred
async def test_listings_page_by_key_with_prefixes_and_delimiters(store):
    await store.create_bucket("b", "alice", "r", ACL)
    for key in ["a", "b/1", "b/2", "b/3/x", "c", "é/1"]:
        await put(store, "b", key, key.encode())
    assert await keys_of(store, "b") == ["a", "b/1", "b/2", "b/3/x", "c", "é/1"]
    rolled = await store.list_objects("b", delimiter="/")
    assert [e.key for e in rolled.entries] == ["a", "c"] and rolled.prefixes == ["b/", "é/"]
    under = await store.list_objects("b", prefix="b/", delimiter="/")
    assert [e.key for e in under.entries] == ["b/1", "b/2"] and under.prefixes == ["b/3/"]
    first = await store.list_objects("b", max_keys=2)
    assert [e.key for e in first.entries] == ["a", "b/1"] and first.truncated
    rest = await store.list_objects("b", after=first.last)
    assert [e.key for e in rest.entries] == ["b/2", "b/3/x", "c", "é/1"] and not rest.truncated
    entry = rest.entries[0]
    assert (entry.size, entry.etag, entry.owner) == (3, hashlib.md5(b"b/2").hexdigest(), "alice")
    assert isinstance(await failure_of(lambda: store.list_objects("nobucket")), NoSuchBucket)


@pytest_twisted.ensureDeferred
async def test_copies_to_another_key_and_in_place(store):
    await store.create_bucket("b", "alice", "r", ACL)
    data = payload("copy", 200_000)
    source = await put(store, "b", "src", data, metadata={"a": "1"})
    _, body = await settle(store.open_object("b", "src"))
    try:
        copied = await store.copy_object(
            source, body, "b", "dst", owner="bob", acl=ACL, headers={"Content-Type": "text/plain"}, metadata={"b": "2"}
        )
    finally:
        body.close()
    assert copied.etag == source.etag
    info, read = await read_all(store, "b", "dst")
    assert read == data and info.owner == "bob" and info.metadata == {"b": "2"}
    _, body = await settle(store.open_object("b", "src"))
    try:
        await store.copy_object(source, body, "b", "src", owner="alice", acl=ACL, headers={}, metadata={"c": "3"})
    finally:
        body.close()
    info, read = await read_all(store, "b", "src")
    assert read == data and info.metadata == {"c": "3"}


@pytest_twisted.ensureDeferred
async def test_an_acl_is_set_only_on_the_object_it_was_decided_for(store):
    await store.create_bucket("b", "alice", "r", ACL)
    first = await put(store, "b", "k", b"one")
    public = {"owner": "alice", "grants": [["AllUsers", "READ"]]}
    await put(store, "b", "k", b"two")
    assert await store.set_object_acl("b", "k", public, expected=first) is False
    assert (await settle(store.get_object("b", "k"))).acl == ACL
    current = await settle(store.get_object("b", "k"))
    assert await store.set_object_acl("b", "k", public, expected=current) is True
    assert (await settle(store.get_object("b", "k"))).acl == public
    assert isinstance(await failure_of(lambda: store.set_object_acl("b", "gone", public, expected=current)), NoSuchKey)


async def new_upload(store, key="big"):
    return await store.multipart.create(
        "b", key, initiator="alice", owner="alice", acl=ACL, headers={"Content-Type": "x/y"}, metadata={"m": "1"}
    )


async def upload_part(store, upload, number, data):
    writer = store.multipart.new_part_writer()
    writer.write(data)
    part = await store.multipart.upload_part(upload, number, writer, {})
    return RequestedPart(number, part.etag)


@pytest_twisted.ensureDeferred
async def test_a_multipart_upload_completes_into_one_object_and_is_gone(store):
    await store.create_bucket("b", "alice", "r", ACL)
    upload = await new_upload(store)
    assert (await settle(store.multipart.get(upload.id, "b", "big"))).id == upload.id
    one, two = payload("p1", 5 * MiB), payload("p2", 1234)
    requested = [await upload_part(store, upload, 1, one), await upload_part(store, upload, 2, two)]
    parts = await store.multipart.list_parts(upload)
    assert [(p.number, p.size) for p in parts.parts] == [(1, len(one)), (2, len(two))]
    listed = await store.multipart.list_uploads("b")
    assert [(u.key, u.id) for u in listed.uploads] == [("big", upload.id)]
    assert await keys_of(store, "b") == []  # not an object until completed
    info = await store.multipart.complete(upload.id, "b", "big", requested)
    assert info.size == len(one) + len(two) and info.etag.endswith("-2")
    found, data = await read_all(store, "b", "big")
    assert data == one + two and found.headers == {"Content-Type": "x/y"} and found.metadata == {"m": "1"}
    assert (await store.multipart.list_uploads("b")).uploads == []
    assert isinstance(await failure_of(lambda: store.multipart.get(upload.id, "b", "big")), NoSuchUpload)


@pytest_twisted.ensureDeferred
async def test_the_same_completion_again_answers_the_same_object_while_the_key_holds_it(backend):
    store = backend.store
    await store.create_bucket("b", "alice", "r", ACL)
    upload = await new_upload(store)
    requested = [await upload_part(store, upload, 1, payload("p1", 5 * MiB)), await upload_part(store, upload, 2, b"z")]
    first = await store.multipart.complete(upload.id, "b", "big", requested)
    again = await store.multipart.complete(upload.id, "b", "big", requested)
    assert (again.etag, again.size, again.modified, again.checksums) == (
        first.etag,
        first.size,
        first.modified,
        first.checksums,
    )
    assert (await settle(store.multipart.completed(upload.id, "b", "big"))).etag == first.etag
    # Kept across a restart (it is a row of the index, committed with the object).
    store = backend.reopen()
    assert (await store.multipart.complete(upload.id, "b", "big", requested)).etag == first.etag
    # Other parts named, another key, or an upload still unknown: NoSuchUpload, as before.
    for bad in (
        lambda: store.multipart.complete(upload.id, "b", "big", requested[:1]),
        lambda: store.multipart.complete(upload.id, "b", "other", requested),
        lambda: store.multipart.abort(upload.id, "b", "big"),
        lambda: store.multipart.get(upload.id, "b", "big"),
    ):
        assert isinstance(await failure_of(bad), NoSuchUpload)
    assert (await read_all(store, "b", "big"))[1][-1:] == b"z"
    # Once the key holds another object, the upload is gone for good.
    await put(store, "b", "big", b"overwritten")
    assert await settle(store.multipart.completed(upload.id, "b", "big")) is None
    assert isinstance(
        await failure_of(lambda: store.multipart.complete(upload.id, "b", "big", requested)), NoSuchUpload
    )
    assert (await read_all(store, "b", "big"))[1] == b"overwritten"


@pytest_twisted.ensureDeferred
async def test_a_completion_is_answered_again_for_a_day_at_most(store):
    await store.create_bucket("b", "alice", "r", ACL)
    upload = await new_upload(store)
    requested = [await upload_part(store, upload, 1, b"only")]
    info = await store.multipart.complete(upload.id, "b", "big", requested)
    await store.multipart.expire(3600, now=info.modified + 3600)
    assert (await store.multipart.complete(upload.id, "b", "big", requested)).etag == info.etag
    await store.multipart.expire(3600, now=info.modified + 24 * 3600 + 1)
    assert isinstance(
        await failure_of(lambda: store.multipart.complete(upload.id, "b", "big", requested)), NoSuchUpload
    )
    assert (await read_all(store, "b", "big"))[1] == b"only"


@pytest_twisted.ensureDeferred
async def test_a_refused_completion_changes_nothing(store):
    await store.create_bucket("b", "alice", "r", ACL)
    await put(store, "b", "big", b"the old object")
    upload = await new_upload(store)
    small = [await upload_part(store, upload, 1, b"tiny"), await upload_part(store, upload, 2, b"parts")]
    assert isinstance(await failure_of(lambda: store.multipart.complete(upload.id, "b", "big", small)), EntityTooSmall)
    wrong = [RequestedPart(1, "0" * 32)]
    assert isinstance(await failure_of(lambda: store.multipart.complete(upload.id, "b", "big", wrong)), InvalidPart)
    assert (await read_all(store, "b", "big"))[1] == b"the old object"
    assert [p.number for p in (await store.multipart.list_parts(upload)).parts] == [1, 2]


@pytest_twisted.ensureDeferred
async def test_aborted_expired_and_bucket_deleted_uploads_are_gone(store):
    await store.create_bucket("b", "alice", "r", ACL)
    aborted, expired = await new_upload(store, "a"), await new_upload(store, "e")
    await upload_part(store, aborted, 1, b"x")
    await store.multipart.abort(aborted.id, "b", "a")
    assert isinstance(await failure_of(lambda: store.multipart.get(aborted.id, "b", "a")), NoSuchUpload)
    assert isinstance(await failure_of(lambda: store.multipart.abort(aborted.id, "b", "a")), NoSuchUpload)
    assert await store.multipart.expire(3600, now=expired.created + 7200) == 1
    assert (await store.multipart.list_uploads("b")).uploads == []
    kept = await new_upload(store, "k")
    await upload_part(store, kept, 1, b"y")
    await store.delete_bucket("b")
    await store.create_bucket("b", "alice", "r", ACL)
    assert (await store.multipart.list_uploads("b")).uploads == []


@pytest_twisted.ensureDeferred
async def test_what_was_answered_is_there_after_a_restart(backend):
    store = backend.store
    await store.create_bucket("b", "alice", "r", ACL)
    small, large = b"small", payload("large", 3 * MiB)
    await put(store, "b", "small", small)
    await put(store, "b", "large", large)
    upload = await new_upload(store)
    requested = [await upload_part(store, upload, 1, payload("p", 5 * MiB))]
    store = backend.reopen()
    assert (await read_all(store, "b", "small"))[1] == small
    assert (await read_all(store, "b", "large"))[1] == large
    info = await store.multipart.complete(upload.id, "b", "big", requested)
    assert info.size == 5 * MiB
