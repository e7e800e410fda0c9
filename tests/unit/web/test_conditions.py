"""Conditional GET and HEAD in memory: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since.

As AWS documents them (GetObject, HeadObject) and RFC 7232 §6 orders them:
If-Match, else If-Unmodified-Since (412 PreconditionFailed); then
If-None-Match, else If-Modified-Since (304 Not Modified). So a true
If-Match wins over a false If-Unmodified-Since (200), and a false
If-None-Match wins over a true If-Modified-Since (304). A 304 carries the
ETag (and Last-Modified) and no body.
"""

from email.utils import formatdate, parsedate_to_datetime

import pytest
import pytest_twisted

BODY = b"0123456789"
OTHER_ETAG = '"0123456789abcdef0123456789abcdef"'
LONG_AGO = "Sat, 01 Jan 2000 00:00:00 GMT"
PRECONDITION_MESSAGE = "At least one of the pre-conditions you specified did not hold"


@pytest_twisted.async_fixture
async def ten(s3, bucket):
    """(etag, Last-Modified) of bucket/ten, a ten-byte object."""
    await s3.put_object(bucket, "ten", BODY)
    answer = await s3.request("HEAD", f"/{bucket}/ten")
    return answer.header("ETag"), answer.header("Last-Modified")


def seconds_before(http_date, seconds):
    return formatdate(parsedate_to_datetime(http_date).timestamp() - seconds, usegmt=True)


async def conditional(s3, bucket, method="GET", **headers):
    return await s3.request(method, f"/{bucket}/ten", headers={k.replace("_", "-"): v for k, v in headers.items()})


def assert_served(answer, method):
    assert answer.status == 200, answer.body
    assert answer.body == (BODY if method == "GET" else b"")


# -- each condition alone, on GET and on HEAD -----------------------------------------------

METHODS = pytest.mark.parametrize("method", ["GET", "HEAD"])


@METHODS
@pytest_twisted.ensureDeferred
async def test_if_match_naming_the_etag_serves_the_object(s3, bucket, ten, method):
    etag, _ = ten
    for value in (etag, etag.strip('"'), "*", f"{OTHER_ETAG}, {etag}", f" {OTHER_ETAG} ,{etag} "):
        answer = await conditional(s3, bucket, method, If_Match=value)
        assert_served(answer, method)


@METHODS
@pytest_twisted.ensureDeferred
async def test_if_match_naming_another_etag_is_412(s3, bucket, ten, method):
    answer = await conditional(s3, bucket, method, If_Match=OTHER_ETAG)
    assert answer.status == 412
    assert answer.header("Content-Type") == "application/xml"
    assert answer.header("ETag") is None
    if method == "GET":
        code, message, resource, request_id = answer.error()
        assert (code, message, resource) == ("PreconditionFailed", PRECONDITION_MESSAGE, f"/{bucket}/ten")
        assert answer.xml().findtext("Condition") == "If-Match"
        assert request_id == answer.header("x-amz-request-id")


@METHODS
@pytest_twisted.ensureDeferred
async def test_if_none_match_naming_the_etag_is_304_with_the_validators_and_no_body(s3, bucket, ten, method):
    etag, last_modified = ten
    for value in (etag, "*", f"{OTHER_ETAG}, {etag}"):
        answer = await s3.raw(method, f"/{bucket}/ten", headers={"If-None-Match": value})
        assert answer.status == 304, value
        assert answer.header("ETag") == etag
        assert answer.header("Last-Modified") == last_modified
        assert answer.header("x-amz-request-id")
        assert answer.body == b""
        # No body, and nothing that frames one or describes one.
        for name in ("content-length", "content-range", "transfer-encoding", "content-type"):
            assert answer.header(name) in (None, "0"), name


@METHODS
@pytest_twisted.ensureDeferred
async def test_if_none_match_naming_another_etag_serves_the_object(s3, bucket, ten, method):
    answer = await conditional(s3, bucket, method, If_None_Match=OTHER_ETAG)
    assert_served(answer, method)


@METHODS
@pytest_twisted.ensureDeferred
async def test_if_modified_since_the_last_change_or_later_is_304(s3, bucket, ten, method):
    etag, last_modified = ten
    answer = await conditional(s3, bucket, method, If_Modified_Since=last_modified)
    assert (answer.status, answer.body, answer.header("ETag")) == (304, b"", etag)


@METHODS
@pytest_twisted.ensureDeferred
async def test_if_modified_since_before_the_last_change_serves_the_object(s3, bucket, ten, method):
    _, last_modified = ten
    for since in (LONG_AGO, seconds_before(last_modified, 1)):
        answer = await conditional(s3, bucket, method, If_Modified_Since=since)
        assert_served(answer, method)


@METHODS
@pytest_twisted.ensureDeferred
async def test_if_unmodified_since_the_last_change_serves_the_object(s3, bucket, ten, method):
    _, last_modified = ten
    answer = await conditional(s3, bucket, method, If_Unmodified_Since=last_modified)
    assert_served(answer, method)


@METHODS
@pytest_twisted.ensureDeferred
async def test_if_unmodified_since_before_the_last_change_is_412(s3, bucket, ten, method):
    _, last_modified = ten
    answer = await conditional(s3, bucket, method, If_Unmodified_Since=seconds_before(last_modified, 1))
    assert answer.status == 412
    if method == "GET":
        assert answer.code == "PreconditionFailed"
        assert answer.xml().findtext("Condition") == "If-Unmodified-Since"


@pytest.mark.parametrize(
    "date",
    ["Saturday, 01-Jan-00 00:00:00 GMT", "Sat Jan  1 00:00:00 2000"],
    ids=["rfc850", "asctime"],
)
@pytest_twisted.ensureDeferred
async def test_obsolete_http_date_forms_are_understood(s3, bucket, ten, date):
    # RFC 7231 §7.1.1.1: a recipient parsing a timestamp MUST accept all three formats.
    answer = await conditional(s3, bucket, If_Unmodified_Since=date)
    assert answer.status == 412
    answer = await conditional(s3, bucket, If_Modified_Since=date)
    assert answer.status == 200


@pytest.mark.parametrize("name", ["If-Modified-Since", "If-Unmodified-Since"])
@pytest_twisted.ensureDeferred
async def test_a_date_that_does_not_parse_is_ignored(s3, bucket, ten, name):
    for value in ("yesterday", "", "Sat, 99 Jan 2000 00:00:00 GMT"):
        answer = await conditional(s3, bucket, **{name.replace("-", "_"): value})
        assert (answer.status, answer.body) == (200, BODY), value


@pytest_twisted.ensureDeferred
async def test_if_modified_since_in_the_future_is_ignored(s3, bucket, ten):
    answer = await conditional(s3, bucket, If_Modified_Since="Fri, 01 Jan 2100 00:00:00 GMT")
    assert (answer.status, answer.body) == (200, BODY)


# -- several conditions: RFC 7232 §6's order, as S3 documents it --------------------------


@METHODS
@pytest_twisted.ensureDeferred
async def test_true_if_match_and_false_if_unmodified_since_is_200(s3, bucket, ten, method):
    etag, _ = ten
    answer = await conditional(s3, bucket, method, If_Match=etag, If_Unmodified_Since=LONG_AGO)
    assert_served(answer, method)


@METHODS
@pytest_twisted.ensureDeferred
async def test_false_if_none_match_and_true_if_modified_since_is_304(s3, bucket, ten, method):
    etag, _ = ten
    answer = await conditional(s3, bucket, method, If_None_Match=etag, If_Modified_Since=LONG_AGO)
    assert (answer.status, answer.body, answer.header("ETag")) == (304, b"", etag)


@pytest_twisted.ensureDeferred
async def test_true_if_none_match_overrides_a_false_if_modified_since(s3, bucket, ten):
    # RFC 7232 §3.3: If-Modified-Since is ignored when If-None-Match is present.
    _, last_modified = ten
    answer = await conditional(s3, bucket, If_None_Match=OTHER_ETAG, If_Modified_Since=last_modified)
    assert (answer.status, answer.body) == (200, BODY)


@pytest_twisted.ensureDeferred
async def test_a_failed_if_match_is_412_whatever_follows(s3, bucket, ten):
    etag, _ = ten
    for others in ({"If_None_Match": etag}, {"If_Modified_Since": LONG_AGO}, {"If_None_Match": OTHER_ETAG}):
        answer = await conditional(s3, bucket, If_Match=OTHER_ETAG, **others)
        assert answer.status == 412, others
        assert answer.xml().findtext("Condition") == "If-Match"


@pytest_twisted.ensureDeferred
async def test_a_failed_if_unmodified_since_is_checked_before_if_none_match(s3, bucket, ten):
    etag, _ = ten
    answer = await conditional(s3, bucket, If_Unmodified_Since=LONG_AGO, If_None_Match=etag)
    assert answer.status == 412
    assert answer.xml().findtext("Condition") == "If-Unmodified-Since"


@pytest_twisted.ensureDeferred
async def test_every_condition_true_serves_the_object(s3, bucket, ten):
    etag, last_modified = ten
    answer = await conditional(
        s3,
        bucket,
        If_Match=etag,
        If_Unmodified_Since=last_modified,
        If_None_Match=OTHER_ETAG,
        If_Modified_Since=LONG_AGO,
    )
    assert (answer.status, answer.body, answer.header("ETag")) == (200, BODY, etag)


# -- conditions and the rest of the request ------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_conditions_are_decided_before_the_range(s3, bucket, ten):
    etag, _ = ten
    answer = await conditional(s3, bucket, If_None_Match=etag, Range="bytes=100-200")
    assert answer.status == 304
    assert answer.header("Content-Range") is None
    answer = await conditional(s3, bucket, If_Match=OTHER_ETAG, Range="bytes=100-200")
    assert answer.status == 412
    answer = await conditional(s3, bucket, If_Match=etag, Range="bytes=1-2")
    assert (answer.status, answer.body, answer.header("Content-Range")) == (206, b"12", "bytes 1-2/10")


@pytest_twisted.ensureDeferred
async def test_a_condition_on_a_missing_key_is_no_such_key(s3, bucket):
    for headers in ({"If-Match": OTHER_ETAG}, {"If-None-Match": OTHER_ETAG}, {"If-Unmodified-Since": LONG_AGO}):
        answer = await s3.request("GET", f"/{bucket}/absent", headers=headers)
        assert (answer.status, answer.code) == (404, "NoSuchKey"), headers


@pytest_twisted.ensureDeferred
async def test_a_304_answer_carries_none_of_the_objects_content_headers(s3, bucket):
    stored = {"Content-Type": "text/plain", "Content-Encoding": "gzip", "x-amz-meta-colour": "blue"}
    etag = (await s3.put_object(bucket, "described", BODY, headers=stored)).header("ETag")
    answer = await s3.raw("GET", f"/{bucket}/described", headers={"If-None-Match": etag})
    assert answer.status == 304
    assert answer.header("ETag") == etag
    for name in ("content-type", "content-encoding", "x-amz-meta-colour", "accept-ranges"):
        assert answer.header(name) is None, name


@pytest_twisted.ensureDeferred
async def test_a_412_answer_carries_none_of_the_objects_headers(s3, bucket):
    stored = {"Content-Type": "text/plain", "Cache-Control": "no-cache", "x-amz-meta-colour": "blue"}
    await s3.put_object(bucket, "described", BODY, headers=stored)
    answer = await s3.raw("GET", f"/{bucket}/described", headers={"If-Match": OTHER_ETAG})
    assert answer.status == 412
    assert answer.header("content-type") == "application/xml"
    assert answer.header("content-length") == str(len(answer.body))
    for name in ("etag", "last-modified", "cache-control", "x-amz-meta-colour", "accept-ranges"):
        assert answer.header(name) is None, name


@pytest_twisted.ensureDeferred
async def test_a_412_to_head_has_no_body(s3, bucket, ten):
    answer = await s3.raw("HEAD", f"/{bucket}/ten", headers={"If-Match": OTHER_ETAG})
    assert answer.status == 412
    assert answer.body == b""
    assert answer.header("x-amz-request-id")
