"""Byte ranges and conditional requests on GetObject and HeadObject.

What AWS does, and so what we do:
- one range is served as 206 with Content-Range; start past the end is 416
  InvalidRange (with ``Content-Range: bytes */size``, RFC 7233's hint);
- syntax S3 does not serve -- garbage, a last byte before the first, several
  ranges -- is ignored: 200 with the whole object. AWS answers several ranges
  this way (awslabs/aws-c-s3#257 shows the 200 without Content-Range);
- If-Match / If-Unmodified-Since fail with 412, If-None-Match /
  If-Modified-Since with 304, and a satisfied If-Match (If-None-Match) wins
  over a failed If-Unmodified-Since (If-Modified-Since), as RFC 7232 says.
"""

import datetime
import gc
import warnings
from email.utils import formatdate

import pytest
import pytest_twisted
from botocore.exceptions import ClientError

from tests.s3http import call, error_code, header

BODY = b"0123456789"


async def ten_byte_object(server, bucket, key="ten", body=BODY):
    response, _ = await call(server, "PUT", f"/{bucket}")
    assert response.code == 200
    response, _ = await call(server, "PUT", f"/{bucket}/{key}", body=body)
    assert response.code == 200
    return header(response, "ETag")


async def get(server, bucket, key="ten", method="GET", **headers):
    return await call(server, method, f"/{bucket}/{key}", headers=headers)


def http_date(when):
    return formatdate(when.timestamp(), usegmt=True)


LONG_AGO = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
FAR_AHEAD = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)


# -- ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, content_range, expected",
    [
        ("bytes=0-0", "bytes 0-0/10", b"0"),
        ("bytes=-1", "bytes 9-9/10", b"9"),
        ("bytes=5-", "bytes 5-9/10", b"56789"),
        ("bytes=2-4", "bytes 2-4/10", b"234"),
        ("bytes=7-100", "bytes 7-9/10", b"789"),
        ("bytes=-100", "bytes 0-9/10", BODY),
        ("bytes=9-9", "bytes 9-9/10", b"9"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_single_range_is_partial_content(server, bucket_name, spec, content_range, expected):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, Range=spec)
    assert response.code == 206
    assert header(response, "Content-Range") == content_range
    assert response.length == len(expected)
    assert content == expected


@pytest.mark.parametrize("spec", ["bytes=10-20", "bytes=10-", "bytes=99-100"])
@pytest_twisted.ensureDeferred
async def test_range_starting_past_the_end_is_invalid_range(server, bucket_name, spec):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, Range=spec)
    assert response.code == 416
    assert error_code(content) == "InvalidRange"


@pytest_twisted.ensureDeferred
async def test_invalid_range_answer_names_the_object_size(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, Range="bytes=10-20")
    assert response.code == 416
    assert header(response, "Content-Range") == "bytes */10"


@pytest_twisted.ensureDeferred
async def test_invalid_range_error_document_names_the_range_and_size(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, Range="bytes=10-20")
    assert b"<RangeRequested>bytes=10-20</RangeRequested>" in content
    assert b"<ActualObjectSize>10</ActualObjectSize>" in content


@pytest.mark.parametrize(
    "spec", ["bytes=abc", "bytes=5-3", "items=0-1", "bytes=", "bytes=-", "bytes=0-1,3-4", "bytes=1-2, 5-6"]
)
@pytest_twisted.ensureDeferred
async def test_range_s3_does_not_serve_is_ignored(server, bucket_name, spec):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, Range=spec)
    assert response.code == 200
    assert header(response, "Content-Range") is None
    assert content == BODY


@pytest_twisted.ensureDeferred
async def test_empty_object_without_range_is_an_empty_200(server, bucket_name):
    await ten_byte_object(server, bucket_name, key="empty", body=b"")
    response, content = await get(server, bucket_name, key="empty")
    assert response.code == 200
    assert (response.length, content) == (0, b"")


@pytest.mark.parametrize("spec", ["bytes=0-0", "bytes=0-", "bytes=-1"])
@pytest_twisted.ensureDeferred
async def test_any_range_of_an_empty_object_is_invalid_range(server, bucket_name, spec):
    await ten_byte_object(server, bucket_name, key="empty", body=b"")
    response, content = await get(server, bucket_name, key="empty", Range=spec)
    assert response.code == 416
    assert error_code(content) == "InvalidRange"


@pytest_twisted.ensureDeferred
async def test_head_with_range_answers_the_partial_length(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, method="HEAD", Range="bytes=2-5")
    assert response.code == 206
    assert header(response, "Content-Range") == "bytes 2-5/10"
    assert header(response, "Content-Length") == "4"
    assert content == b""


@pytest_twisted.ensureDeferred
async def test_boto3_ranged_get(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    s3 = server.boto3()

    def ranged():
        got = s3.get_object(Bucket=bucket_name, Key="ten", Range="bytes=3-6")
        return got["ContentRange"], got["ContentLength"], got["Body"].read()

    assert await server.blocking(ranged) == ("bytes 3-6/10", 4, b"3456")


@pytest_twisted.ensureDeferred
async def test_boto3_sees_invalid_range_as_a_416_client_error(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    s3 = server.boto3()

    def out_of_range():
        with pytest.raises(ClientError) as raised:
            s3.get_object(Bucket=bucket_name, Key="ten", Range="bytes=10-20")
        return raised.value.response

    response = await server.blocking(out_of_range)
    assert response["Error"]["Code"] == "InvalidRange"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 416


# -- conditionals --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_if_match_with_the_etag_or_a_star_is_served(server, bucket_name):
    etag = await ten_byte_object(server, bucket_name)
    for value in (etag, "*", f'"other", {etag}', etag.strip('"')):
        response, content = await get(server, bucket_name, **{"If-Match": value})
        assert (response.code, content) == (200, BODY), value


@pytest_twisted.ensureDeferred
async def test_if_match_with_another_etag_is_precondition_failed(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, **{"If-Match": '"0123456789abcdef0123456789abcdef"'})
    assert response.code == 412
    assert error_code(content) == "PreconditionFailed"


@pytest_twisted.ensureDeferred
async def test_if_none_match_with_the_etag_is_not_modified(server, bucket_name):
    etag = await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, **{"If-None-Match": etag})
    assert response.code == 304
    assert content == b""
    assert header(response, "ETag") == etag
    assert header(response, "Last-Modified") is not None


@pytest_twisted.ensureDeferred
async def test_not_modified_answer_leaves_no_object_file_open(server, bucket_name):
    etag = await ten_byte_object(server, bucket_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for method in ("GET", "HEAD"):
            response, _ = await get(server, bucket_name, method=method, **{"If-None-Match": etag})
            assert response.code == 304
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest_twisted.ensureDeferred
async def test_if_none_match_with_another_etag_is_served(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, **{"If-None-Match": '"abc"'})
    assert (response.code, content) == (200, BODY)


@pytest_twisted.ensureDeferred
async def test_if_modified_since_the_last_change_is_not_modified(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, _ = await get(server, bucket_name)
    since = header(response, "Last-Modified")
    response, content = await get(server, bucket_name, **{"If-Modified-Since": since})
    assert (response.code, content) == (304, b"")


@pytest_twisted.ensureDeferred
async def test_if_modified_since_before_the_change_is_served(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, **{"If-Modified-Since": http_date(LONG_AGO)})
    assert (response.code, content) == (200, BODY)


@pytest_twisted.ensureDeferred
async def test_if_unmodified_since_before_the_change_is_precondition_failed(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, **{"If-Unmodified-Since": http_date(LONG_AGO)})
    assert response.code == 412
    assert error_code(content) == "PreconditionFailed"


@pytest_twisted.ensureDeferred
async def test_if_unmodified_since_after_the_change_is_served(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, _ = await get(server, bucket_name)
    last_modified = header(response, "Last-Modified")
    for since in (http_date(FAR_AHEAD), last_modified):
        response, content = await get(server, bucket_name, **{"If-Unmodified-Since": since})
        assert (response.code, content) == (200, BODY), since


@pytest_twisted.ensureDeferred
async def test_unparsable_dates_are_ignored(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    for name in ("If-Modified-Since", "If-Unmodified-Since"):
        response, content = await get(server, bucket_name, **{name: "not a date"})
        assert (response.code, content) == (200, BODY), name


@pytest_twisted.ensureDeferred
async def test_true_if_match_overrides_false_if_unmodified_since(server, bucket_name):
    etag = await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, **{"If-Match": etag, "If-Unmodified-Since": http_date(LONG_AGO)})
    assert (response.code, content) == (200, BODY)


@pytest_twisted.ensureDeferred
async def test_false_if_none_match_with_true_if_modified_since_is_not_modified(server, bucket_name):
    etag = await ten_byte_object(server, bucket_name)
    response, _ = await get(server, bucket_name, **{"If-None-Match": etag, "If-Modified-Since": http_date(LONG_AGO)})
    assert response.code == 304


@pytest_twisted.ensureDeferred
async def test_if_match_is_checked_before_if_none_match(server, bucket_name):
    await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, **{"If-Match": '"other"', "If-None-Match": '"other"'})
    assert response.code == 412
    assert error_code(content) == "PreconditionFailed"


@pytest_twisted.ensureDeferred
async def test_conditions_apply_to_head(server, bucket_name):
    etag = await ten_byte_object(server, bucket_name)
    response, content = await get(server, bucket_name, method="HEAD", **{"If-None-Match": etag})
    assert (response.code, content) == (304, b"")
    response, content = await get(server, bucket_name, method="HEAD", **{"If-Match": '"other"'})
    assert (response.code, content) == (412, b"")


@pytest_twisted.ensureDeferred
async def test_conditions_are_checked_before_the_range(server, bucket_name):
    etag = await ten_byte_object(server, bucket_name)
    response, _ = await get(server, bucket_name, Range="bytes=50-60", **{"If-None-Match": etag})
    assert response.code == 304
    response, content = await get(server, bucket_name, Range="bytes=1-2", **{"If-Match": etag})
    assert (response.code, content) == (206, b"12")


@pytest_twisted.ensureDeferred
async def test_boto3_conditional_get(server, bucket_name):
    etag = await ten_byte_object(server, bucket_name)
    s3 = server.boto3()

    def conditional():
        served = s3.get_object(Bucket=bucket_name, Key="ten", IfMatch=etag, IfModifiedSince=LONG_AGO)
        served["Body"].read()
        failures = []
        for condition in (
            {"IfNoneMatch": etag},
            {"IfModifiedSince": served["LastModified"]},
            {"IfMatch": '"nope"'},
            {"IfUnmodifiedSince": LONG_AGO},
        ):
            with pytest.raises(ClientError) as raised:
                s3.get_object(Bucket=bucket_name, Key="ten", **condition)
            failures.append(raised.value.response["ResponseMetadata"]["HTTPStatusCode"])
        return served["ETag"], failures

    served_etag, failures = await server.blocking(conditional)
    assert served_etag == etag
    assert failures == [304, 304, 412, 412]


@pytest.mark.parametrize(
    "headers",
    [{"If-Match": '"other"'}, {"If-Unmodified-Since": http_date(LONG_AGO)}, {"Range": "bytes=50-60"}],
    ids=["if-match", "if-unmodified-since", "range"],
)
@pytest_twisted.ensureDeferred
async def test_error_answers_carry_none_of_the_objects_headers(server, bucket_name, headers):
    response, _ = await call(server, "PUT", f"/{bucket_name}")
    stored = {"Content-Encoding": "gzip", "Cache-Control": "no-cache", "x-amz-meta-a": "b"}
    response, _ = await call(server, "PUT", f"/{bucket_name}/ten", headers=stored, body=BODY)
    assert response.code == 200
    response, content = await get(server, bucket_name, **headers)
    assert response.code in (412, 416)
    assert header(response, "Content-Type") == "application/xml"
    assert error_code(content) in ("PreconditionFailed", "InvalidRange")
    for name in stored:
        # (treq's client reports an absent Content-Encoding as "".)
        assert not header(response, name), name
