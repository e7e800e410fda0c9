"""Byte ranges on GET and HEAD in memory, as AWS serves them.

One ``bytes=`` range is a 206 with ``Content-Range: bytes first-last/size``
and the range's Content-Length; a range starting at or past the end (and
any range of an empty object) is 416 InvalidRange, with RFC 7233's
``Content-Range: bytes */size``. What S3 does not serve -- several ranges,
another unit, malformed specs -- is ignored: a 200 of the whole object
(AWS answers a multi-range request so; see awslabs/aws-c-s3#257).
"""

import pytest
import pytest_twisted

BODY = b"0123456789"
BIG = bytes(range(256)) * 800  # 200 KiB: served through the streaming producer, not at once


@pytest_twisted.async_fixture
async def objects(s3, bucket):
    await s3.put_object(bucket, "ten", BODY)
    await s3.put_object(bucket, "empty", b"")
    return bucket


async def ranged(s3, bucket, spec, key="ten", method="GET", raw=False):
    send = s3.raw if raw else s3.request
    return await send(method, f"/{bucket}/{key}", headers={"Range": spec})


@pytest.mark.parametrize(
    "spec, first, last",
    [
        ("bytes=0-0", 0, 0),
        ("bytes=-5", 5, 9),
        ("bytes=5-", 5, 9),
        ("bytes=0-", 0, 9),
        ("bytes=3-6", 3, 6),
        ("bytes=9-9", 9, 9),
        ("bytes=9-", 9, 9),
        ("bytes=-1", 9, 9),
        ("bytes=-10", 0, 9),
        ("bytes=-11", 0, 9),
        ("bytes=-1000", 0, 9),
        ("bytes=8-1000", 8, 9),
        ("bytes=0-9", 0, 9),
    ],
)
@pytest_twisted.ensureDeferred
async def test_one_range_is_206_with_content_range_and_length(s3, objects, spec, first, last):
    answer = await ranged(s3, objects, spec, raw=True)
    assert answer.status == 206, answer.body
    assert answer.header("content-range") == f"bytes {first}-{last}/10"
    assert answer.header("content-length") == str(last - first + 1)
    assert answer.header("accept-ranges") == "bytes"
    assert answer.body == BODY[first : last + 1]


@pytest.mark.parametrize("spec, first, last", [("bytes=2-5", 2, 5), ("bytes=-3", 7, 9), ("bytes=4-", 4, 9)])
@pytest_twisted.ensureDeferred
async def test_head_with_a_range_answers_its_headers_without_a_body(s3, objects, spec, first, last):
    answer = await ranged(s3, objects, spec, method="HEAD", raw=True)
    assert answer.status == 206
    assert answer.header("content-range") == f"bytes {first}-{last}/10"
    assert answer.header("content-length") == str(last - first + 1)
    assert answer.body == b""


@pytest.mark.parametrize("spec", ["bytes=10-", "bytes=10-20", "bytes=11-11", "bytes=1000-", "bytes=-0"])
@pytest_twisted.ensureDeferred
async def test_unsatisfiable_range_is_416_invalid_range_naming_the_size(s3, objects, spec):
    answer = await ranged(s3, objects, spec, raw=True)
    assert answer.status == 416
    assert answer.header("content-range") == "bytes */10"
    assert answer.header("content-type") == "application/xml"
    assert answer.header("content-length") == str(len(answer.body))
    for name in ("etag", "last-modified", "accept-ranges"):
        assert answer.header(name) is None, name
    full = await ranged(s3, objects, spec)
    code, message, resource, request_id = full.error()
    assert (code, message, resource) == ("InvalidRange", "The requested range is not satisfiable", f"/{objects}/ten")
    assert full.xml().findtext("RangeRequested") == spec
    assert full.xml().findtext("ActualObjectSize") == "10"
    assert request_id == full.header("x-amz-request-id")


@pytest_twisted.ensureDeferred
async def test_unsatisfiable_range_on_head_is_416_without_a_body(s3, objects):
    answer = await ranged(s3, objects, "bytes=10-", method="HEAD", raw=True)
    assert answer.status == 416
    assert answer.header("content-range") == "bytes */10"
    assert answer.body == b""


@pytest.mark.parametrize(
    "spec",
    [
        "bytes=0-1,3-4",
        "bytes=0-0, 9-9",
        "bytes=-1,-2",
        "bytes=20-30,0-1",
        "items=0-1",
        "bytes=abc",
        "bytes=5-3",
        "bytes=",
        "bytes=-",
        "bytes=1-2-3",
        "0-1",
    ],
)
@pytest_twisted.ensureDeferred
async def test_range_s3_does_not_serve_is_ignored_for_the_whole_object(s3, objects, spec):
    answer = await ranged(s3, objects, spec, raw=True)
    assert answer.status == 200
    assert answer.header("content-range") is None
    assert answer.header("content-length") == "10"
    assert answer.body == BODY


@pytest.mark.parametrize("spec", ["bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-10"])
@pytest_twisted.ensureDeferred
async def test_any_range_of_an_empty_object_is_416(s3, objects, spec):
    answer = await ranged(s3, objects, spec, key="empty", raw=True)
    assert answer.status == 416
    assert answer.header("content-range") == "bytes */0"
    full = await ranged(s3, objects, spec, key="empty")
    assert full.code == "InvalidRange"
    assert full.xml().findtext("ActualObjectSize") == "0"


@pytest.mark.parametrize("spec", ["bytes=0-1,3-4", "items=0-1"])
@pytest_twisted.ensureDeferred
async def test_a_range_ignored_on_an_empty_object_is_an_empty_200(s3, objects, spec):
    answer = await ranged(s3, objects, spec, key="empty", raw=True)
    assert (answer.status, answer.header("content-length"), answer.body) == (200, "0", b"")
    assert answer.header("content-range") is None


@pytest_twisted.ensureDeferred
async def test_the_answer_to_a_range_describes_the_object(s3, bucket):
    stored = {"Content-Type": "text/plain", "Cache-Control": "max-age=60", "x-amz-meta-colour": "blue"}
    etag = (await s3.put_object(bucket, "described", BODY, headers=stored)).header("ETag")
    answer = await s3.raw("GET", f"/{bucket}/described", headers={"Range": "bytes=1-1"})
    assert answer.status == 206
    assert answer.header("etag") == etag
    assert answer.header("content-type") == "text/plain"
    assert answer.header("cache-control") == "max-age=60"
    assert answer.header("x-amz-meta-colour") == "blue"
    assert answer.header("last-modified")


@pytest.mark.parametrize(
    "spec, first, last",
    [
        ("bytes=1000-199999", 1000, 199999),
        ("bytes=-70000", len(BIG) - 70000, len(BIG) - 1),
        ("bytes=0-", 0, len(BIG) - 1),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_large_range_is_streamed_exactly(s3, bucket, spec, first, last):
    await s3.put_object(bucket, "big", BIG)
    answer = await ranged(s3, bucket, spec, key="big")
    assert answer.status == 206
    assert answer.header("Content-Range") == f"bytes {first}-{last}/{len(BIG)}"
    assert answer.length == last - first + 1
    assert answer.body == BIG[first : last + 1]


@pytest_twisted.ensureDeferred
async def test_a_range_with_part_number_is_invalid_request(s3, objects):
    # GetObject: "You can't use partNumber and Range together."
    answer = await s3.request("GET", f"/{objects}/ten?partNumber=1", headers={"Range": "bytes=0-1"})
    assert (answer.status, answer.code) == (400, "InvalidRequest")
