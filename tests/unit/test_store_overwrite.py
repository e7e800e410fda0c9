"""Publishing over an existing key: one row per key, its own bytes, whatever the old object was.

A PUT of a new key is a single INSERT (see Store._swap_row); only one that
finds the key taken removes the old row first. These go through every
pairing of inline bytes and blobs, and a bucket deleted under the upload.
"""

import hashlib
import os

import pytest
import pytest_twisted

from objectstore.errors import NoSuchBucket


@pytest.fixture
def store_options():
    """For the ``store`` fixture (tests/unit/conftest.py): objects of up to 16 bytes inline, larger ones in blobs."""
    return {"inline_limit": 16}


async def put(store, key, data, bucket="b", metadata=None):
    writer = store.new_writer()
    writer.write(data)
    return await store.put_object(
        bucket, key, writer, owner="o", acl={"owner": "o"}, headers={}, metadata=metadata or {}, checksums={}
    )


def rows(store, table):
    return store.index.reader().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def blob_files(store):
    return sum(len(files) for _, _, files in os.walk(store.files.home))


def read_whole(store, key):
    info, body = store.open_object("b", key)
    try:
        return info, body.read(0, info.size)
    finally:
        body.close()


SMALL, BIG = b"inline", b"spills into a blob file"


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(("first", "second"), [(SMALL, SMALL + b"!"), (SMALL, BIG), (BIG, SMALL), (BIG, BIG + b"!")])
async def test_an_overwrite_leaves_one_row_with_the_new_bytes_only(store, first, second):
    await store.create_bucket("b", "o", "r", {})
    await put(store, "k", first, metadata={"v": "1"})
    await put(store, "other", first)
    await put(store, "k", second, metadata={"v": "2"})
    await store.index.tidied()

    info, data = read_whole(store, "k")
    assert (data, info.metadata, info.etag) == (second, {"v": "2"}, hashlib.md5(second).hexdigest())
    assert read_whole(store, "other")[1] == first
    assert rows(store, "objects") == 2
    # The old object's bytes went with its row: inline ones at once, a blob after the commit.
    kept_inline = [len(d) <= store.inline_limit for d in (second, first)]
    assert rows(store, "inline_data") == sum(kept_inline)
    assert rows(store, "segments") == 2 - sum(kept_inline)
    assert blob_files(store) == 2 - sum(kept_inline)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("data", [SMALL, BIG])
async def test_a_put_into_a_deleted_bucket_is_refused_and_leaves_nothing(store, data):
    await store.create_bucket("b", "o", "r", {})
    await store.delete_bucket("b")

    with pytest.raises(NoSuchBucket):
        await put(store, "k", data)
    await store.index.tidied()

    assert [rows(store, table) for table in ("objects", "inline_data", "segments")] == [0, 0, 0]
    assert blob_files(store) == 0
