"""CopyObject: the source header, the metadata directive and the copy-source conditions."""

import datetime
import hashlib
import os
from email.utils import formatdate
from urllib.parse import quote

import pytest
import pytest_twisted
from botocore.exceptions import ClientError
from lxml import etree

from objectstore.xmlio import S3_NS
from tests.helpers import refused
from tests.s3http import call, header

SOURCE_HEADERS = {
    "Content-Type": "text/x-source",
    "Content-Disposition": "attachment",
    "Cache-Control": "no-store",
    "Content-Language": "it",
    "x-amz-meta-origin": "source",
}
LONG_AGO = formatdate(datetime.datetime(2000, 1, 1).timestamp(), usegmt=True)
FAR_AHEAD = formatdate(datetime.datetime(2100, 1, 1).timestamp(), usegmt=True)


async def bucket_with_source(server, bucket, key="src", body=b"source bytes"):
    response, _ = await call(server, "PUT", f"/{bucket}")
    assert response.code == 200
    response, _ = await call(server, "PUT", f"/{bucket}/{quote(key)}", headers=SOURCE_HEADERS, body=body)
    assert response.code == 200
    return header(response, "ETag")


async def copy(server, bucket, key, source, **headers):
    return await call(server, "PUT", f"/{bucket}/{quote(key)}", headers={"x-amz-copy-source": source, **headers})


async def refused_copy(server, bucket, source, status, code, key="dst", **headers):
    """Assert the copy is refused with *status*/*code* and changes nothing."""
    _, content = await refused(server, code, copy(server, bucket, key, source, **headers), status)
    return content


# -- the copy itself ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["with space", "a+b", "ünïcødé/☃", "what?now", "100%", "a&b=c"])
@pytest_twisted.ensureDeferred
async def test_boto3_copies_keys_that_need_url_encoding(server, bucket_name, key):
    s3 = server.boto3()
    body = key.encode() * 3

    def copy_and_read():
        s3.create_bucket(Bucket=bucket_name)
        s3.put_object(Bucket=bucket_name, Key=key, Body=body)
        result = s3.copy_object(Bucket=bucket_name, Key=key + "-copy", CopySource={"Bucket": bucket_name, "Key": key})
        return result["CopyObjectResult"]["ETag"], s3.get_object(Bucket=bucket_name, Key=key + "-copy")["Body"].read()

    etag, data = await server.blocking(copy_and_read)
    assert data == body
    assert etag == f'"{hashlib.md5(body).hexdigest()}"'


@pytest.mark.parametrize(
    "source",
    ["/{bucket}/a%20b%2Bc", "{bucket}/a%20b%2Bc", "/{bucket}/a%20b%2Bc?versionId=null"],
    ids=["leading-slash", "no-slash", "version-id"],
)
@pytest_twisted.ensureDeferred
async def test_copy_source_header_forms(server, bucket_name, source):
    await bucket_with_source(server, bucket_name, key="a b+c")
    response, content = await copy(server, bucket_name, "dst", source.format(bucket=bucket_name))
    assert response.code == 200, content
    _, data = await call(server, "GET", f"/{bucket_name}/dst")
    assert data == b"source bytes"


@pytest_twisted.ensureDeferred
async def test_copy_answers_a_copy_object_result_with_etag_and_date(server, bucket_name):
    etag = await bucket_with_source(server, bucket_name)
    response, content = await copy(server, bucket_name, "dst", f"/{bucket_name}/src")
    assert response.code == 200
    result = etree.fromstring(content)
    assert result.tag == f"{{{S3_NS}}}CopyObjectResult"
    assert result.findtext(f"{{{S3_NS}}}ETag") == etag
    modified = result.findtext(f"{{{S3_NS}}}LastModified")
    assert datetime.datetime.strptime(modified, "%Y-%m-%dT%H:%M:%S.%fZ").year >= 2024


@pytest_twisted.ensureDeferred
async def test_copy_into_another_bucket(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    other = bucket_name + "-other"
    response, _ = await call(server, "PUT", f"/{other}")
    assert response.code == 200
    response, _ = await copy(server, other, "dst", f"/{bucket_name}/src")
    assert response.code == 200
    _, data = await call(server, "GET", f"/{other}/dst")
    assert data == b"source bytes"


@pytest_twisted.ensureDeferred
async def test_copy_is_independent_of_its_source(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    await copy(server, bucket_name, "dst", f"/{bucket_name}/src")
    response, _ = await call(server, "DELETE", f"/{bucket_name}/src")
    assert response.code == 204
    _, data = await call(server, "GET", f"/{bucket_name}/dst")
    assert data == b"source bytes"


# -- metadata directive --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_directive_copy_takes_metadata_and_content_headers_from_the_source(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    response, _ = await copy(
        server, bucket_name, "dst", f"/{bucket_name}/src", **{"Content-Type": "text/ignored", "x-amz-meta-new": "no"}
    )
    assert response.code == 200
    response, _ = await call(server, "HEAD", f"/{bucket_name}/dst")
    for name, value in SOURCE_HEADERS.items():
        assert header(response, name) == value, name
    assert header(response, "x-amz-meta-new") is None


@pytest_twisted.ensureDeferred
async def test_directive_replace_takes_metadata_and_content_headers_from_the_request(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    response, _ = await copy(
        server,
        bucket_name,
        "dst",
        f"/{bucket_name}/src",
        **{"x-amz-metadata-directive": "REPLACE", "Content-Type": "text/replaced", "x-amz-meta-new": "yes"},
    )
    assert response.code == 200
    response, _ = await call(server, "HEAD", f"/{bucket_name}/dst")
    assert header(response, "Content-Type") == "text/replaced"
    assert header(response, "x-amz-meta-new") == "yes"
    assert header(response, "x-amz-meta-origin") is None
    assert header(response, "Cache-Control") is None


@pytest_twisted.ensureDeferred
async def test_boto3_copy_with_replace_sets_new_metadata(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    s3 = server.boto3()

    def replace():
        s3.copy_object(
            Bucket=bucket_name,
            Key="dst",
            CopySource={"Bucket": bucket_name, "Key": "src"},
            MetadataDirective="REPLACE",
            Metadata={"Fresh": "1"},
            ContentType="application/x-new",
        )
        return s3.head_object(Bucket=bucket_name, Key="dst")

    head = await server.blocking(replace)
    assert head["Metadata"] == {"fresh": "1"}
    assert head["ContentType"] == "application/x-new"


@pytest_twisted.ensureDeferred
async def test_unknown_directive_is_invalid_argument(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    await refused_copy(
        server, bucket_name, f"/{bucket_name}/src", 400, "InvalidArgument", **{"x-amz-metadata-directive": "MERGE"}
    )


@pytest_twisted.ensureDeferred
async def test_copy_onto_itself_without_replace_is_invalid_request(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    await refused_copy(server, bucket_name, f"/{bucket_name}/src", 400, "InvalidRequest", key="src")
    await refused_copy(
        server,
        bucket_name,
        f"/{bucket_name}/src",
        400,
        "InvalidRequest",
        key="src",
        **{"x-amz-metadata-directive": "COPY"},
    )


@pytest_twisted.ensureDeferred
async def test_copy_onto_itself_with_replace_changes_metadata_and_keeps_the_bytes(server, bucket_name):
    etag = await bucket_with_source(server, bucket_name)
    response, _ = await copy(
        server,
        bucket_name,
        "src",
        f"/{bucket_name}/src",
        **{"x-amz-metadata-directive": "REPLACE", "x-amz-meta-origin": "rewritten", "Content-Type": "text/new"},
    )
    assert response.code == 200
    response, data = await call(server, "GET", f"/{bucket_name}/src")
    assert data == b"source bytes"
    assert header(response, "ETag") == etag
    assert header(response, "x-amz-meta-origin") == "rewritten"
    assert header(response, "Content-Type") == "text/new"


# -- copy-source conditions --------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {"x-amz-copy-source-if-match": '"0123456789abcdef0123456789abcdef"'},
        {"x-amz-copy-source-if-none-match": "ETAG"},
        {"x-amz-copy-source-if-modified-since": "LAST_MODIFIED"},
        {"x-amz-copy-source-if-unmodified-since": LONG_AGO},
    ],
    ids=["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"],
)
@pytest_twisted.ensureDeferred
async def test_failed_copy_source_condition_is_precondition_failed(server, bucket_name, condition):
    etag = await bucket_with_source(server, bucket_name)
    response, _ = await call(server, "HEAD", f"/{bucket_name}/src")
    known = {"ETAG": etag, "LAST_MODIFIED": header(response, "Last-Modified")}
    condition = {name: known.get(value, value) for name, value in condition.items()}
    await refused_copy(server, bucket_name, f"/{bucket_name}/src", 412, "PreconditionFailed", **condition)


@pytest_twisted.ensureDeferred
async def test_satisfied_copy_source_conditions_copy(server, bucket_name):
    etag = await bucket_with_source(server, bucket_name)
    response, _ = await copy(
        server,
        bucket_name,
        "dst",
        f"/{bucket_name}/src",
        **{
            "x-amz-copy-source-if-match": etag,
            "x-amz-copy-source-if-none-match": '"other"',
            "x-amz-copy-source-if-modified-since": LONG_AGO,
            "x-amz-copy-source-if-unmodified-since": FAR_AHEAD,
        },
    )
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_boto3_copy_source_if_match_failure(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    s3 = server.boto3()

    def copy_if_match():
        with pytest.raises(ClientError) as raised:
            s3.copy_object(
                Bucket=bucket_name,
                Key="dst",
                CopySource={"Bucket": bucket_name, "Key": "src"},
                CopySourceIfMatch='"nope"',
            )
        return raised.value.response

    response = await server.blocking(copy_if_match)
    assert response["Error"]["Code"] == "PreconditionFailed"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 412


# -- missing or malformed sources ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_copy_from_a_missing_key_is_no_such_key(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    await refused_copy(server, bucket_name, f"/{bucket_name}/missing", 404, "NoSuchKey")


@pytest_twisted.ensureDeferred
async def test_copy_from_a_missing_bucket_is_no_such_bucket(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    await refused_copy(server, bucket_name, "/no-such-bucket-here/src", 404, "NoSuchBucket")


@pytest_twisted.ensureDeferred
async def test_copy_into_a_missing_bucket_is_no_such_bucket(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    await refused(server, "NoSuchBucket", copy(server, "no-such-bucket-here", "dst", f"/{bucket_name}/src"), 404)


@pytest.mark.parametrize("source", ["", "/", "/{bucket}", "/{bucket}/", "nobucketnokey"])
@pytest_twisted.ensureDeferred
async def test_copy_source_without_bucket_and_key_is_invalid_argument(server, bucket_name, source):
    await bucket_with_source(server, bucket_name)
    await refused_copy(server, bucket_name, source.format(bucket=bucket_name), 400, "InvalidArgument")


@pytest_twisted.ensureDeferred
async def test_copy_source_key_over_1024_bytes_is_key_too_long(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    await refused_copy(server, bucket_name, f"/{bucket_name}/{'k' * 1025}", 400, "KeyTooLongError")


@pytest.mark.parametrize("raw_key", ["a%00b", "%FF", "%C0%AE%C0%AE"], ids=["nul", "invalid-byte", "overlong"])
@pytest_twisted.ensureDeferred
async def test_copy_source_key_that_is_not_utf8_text_is_invalid_argument(server, bucket_name, raw_key):
    await bucket_with_source(server, bucket_name)
    await refused_copy(server, bucket_name, f"/{bucket_name}/{raw_key}", 400, "InvalidArgument")


@pytest_twisted.ensureDeferred
async def test_copy_with_a_body_is_refused(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    headers = {"x-amz-copy-source": f"/{bucket_name}/src"}
    await refused(
        server, "InvalidRequest", call(server, "PUT", f"/{bucket_name}/dst", headers=headers, body=b"body"), 400
    )


@pytest_twisted.ensureDeferred
async def test_copy_of_an_empty_object(server, bucket_name):
    await bucket_with_source(server, bucket_name, key="empty", body=b"")
    response, _ = await copy(server, bucket_name, "dst", f"/{bucket_name}/empty")
    assert response.code == 200
    response, data = await call(server, "GET", f"/{bucket_name}/dst")
    assert (response.code, data) == (200, b"")
    assert header(response, "ETag") == f'"{hashlib.md5(b"").hexdigest()}"'


@pytest_twisted.ensureDeferred
async def test_copy_from_an_object_the_caller_cannot_read_is_access_denied(server, bucket_name):
    await bucket_with_source(server, bucket_name)
    keys = server.create_user("mallory")
    own_bucket = bucket_name + "-mallory"
    response, _ = await call(server, "PUT", f"/{own_bucket}", keys=keys)
    assert response.code == 200
    headers = {"x-amz-copy-source": f"/{bucket_name}/src"}
    await refused(server, "AccessDenied", call(server, "PUT", f"/{own_bucket}/stolen", keys=keys, headers=headers), 403)


@pytest.mark.parametrize("size", [10, 300_000], ids=["inline", "blob"])
@pytest_twisted.ensureDeferred
async def test_copy_of_an_object_in_either_form_is_whole_and_independent(server, bucket_name, size):
    body = os.urandom(size)
    await call(server, "PUT", f"/{bucket_name}")
    await call(server, "PUT", f"/{bucket_name}/src", body=body)
    response, content = await copy(server, bucket_name, "dst", f"/{bucket_name}/src")
    assert response.code == 200, content
    await call(server, "DELETE", f"/{bucket_name}/src")
    _, data = await call(server, "GET", f"/{bucket_name}/dst")
    assert data == body
