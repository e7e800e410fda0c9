"""Content-Encoding as AWS stores it: aws-chunked is the request's framing, every other coding the object's."""

import pytest
import pytest_twisted

from objectstore.web.awschunked import strip_aws_chunked
from tests.helpers import make_bucket
from tests.s3http import aws_chunked, call, signed_headers

PAYLOAD = b"the object's own bytes"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


async def put_aws_chunked(server, path, encoding):
    headers = {"Content-Encoding": encoding, "x-amz-decoded-content-length": str(len(PAYLOAD))}
    headers = signed_headers(
        "PUT", server.url + path, headers=headers, payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    )
    return await call(server, "PUT", path, None, headers, aws_chunked(PAYLOAD, {}))


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "sent, stored",
    [
        ("aws-chunked", None),
        ("aws-chunked, gzip", "gzip"),
        ("gzip,aws-chunked", "gzip"),  # botocore appends aws-chunked to the caller's coding
        ("deflate, aws-chunked, gzip", "deflate, gzip"),
    ],
)
async def test_aws_chunked_is_taken_out_of_the_stored_encoding(server, bucket_name, sent, stored):
    await make_bucket(server, bucket_name)
    response, content = await put_aws_chunked(server, f"/{bucket_name}/k", sent)
    assert response.code == 200, content
    # boto3, not treq: treq's client would undo a gzip coding itself.
    got = await server.blocking(server.boto3().get_object, Bucket=bucket_name, Key="k")
    assert (got["Body"].read(), got.get("ContentEncoding")) == (PAYLOAD, stored)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("encoding", ["deflate, gzip", "gzip,  br", "identity"])
async def test_an_encoding_list_without_aws_chunked_is_kept_as_sent(server, bucket_name, encoding):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"x", ContentEncoding=encoding)
    head = await server.blocking(s3.head_object, Bucket=bucket_name, Key="k")
    assert head["ContentEncoding"] == encoding


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "sent, stored",
    [
        ("gzip, aws-chunked", "gzip"),
        ("aws-chunked, gzip", "gzip"),
        ("aws-chunked", None),
        ("aws-chunked, aws-chunked", None),
    ],
)
async def test_aws_chunked_as_a_label_on_a_plain_body_is_dropped_and_the_body_stored_as_sent(
    server, bucket_name, sent, stored
):
    # s3-tests' test_object_content_encoding_aws_chunked: boto3 puts a plain body labelled
    # aws-chunked. Framing needs a STREAMING- payload hash or x-amz-decoded-content-length.
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=PAYLOAD, ContentEncoding=sent)
    got = await server.blocking(s3.get_object, Bucket=bucket_name, Key="k")
    assert (got["Body"].read(), got.get("ContentEncoding")) == (PAYLOAD, stored)


def test_strip_aws_chunked():
    assert strip_aws_chunked("aws-chunked") == ""
    assert strip_aws_chunked("AWS-Chunked , gzip") == "gzip"
    assert strip_aws_chunked("deflate, gzip") == "deflate, gzip"
