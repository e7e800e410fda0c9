"""x-amz-checksum-*: verified on PUT (header or aws-chunked trailer), stored, returned under checksum mode."""

import base64
import zlib

import pytest
import pytest_twisted
import treq
from botocore import httpchecksum
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from twisted.internet.threads import deferToThread

from tests.conftest import ADMIN_KEYS, REGION
from tests.functional.test_tls import tls_boto3
from tests.helpers import make_bucket, refused
from tests.s3http import aws_chunked, call, error_code, header

BODY = b"123456789" * 1000
# botocore's implementation of each algorithm: the reference the server must agree with.
BOTOCORE = {
    "CRC32": httpchecksum.Crc32Checksum,
    "CRC32C": httpchecksum.CrtCrc32cChecksum,
    "CRC64NVME": httpchecksum.CrtCrc64NvmeChecksum,
    "SHA1": httpchecksum.Sha1Checksum,
    "SHA256": httpchecksum.Sha256Checksum,
}
ALGORITHMS = sorted(BOTOCORE)


def botocore_checksum(algorithm, data):
    checksum = BOTOCORE[algorithm]()
    checksum.update(data)
    return checksum.b64digest()


def crc32(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


async def assert_refused(server, bucket, key, headers, body, status, code, message=None):
    """The PUT is refused with *code* and leaves the store as it was."""
    request = call(server, "PUT", f"/{bucket}/{key}", headers=headers, body=body)
    _, content = await refused(server, code, request, status, settle=True)
    if message is not None:
        assert f"<Message>{message}</Message>".encode() in content


# -- boto3 with its default configuration ---------------------------------------------------


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_boto3_put_stores_the_checksum_and_get_and_head_return_it(server, bucket_name, algorithm):
    s3 = server.boto3()
    expected = botocore_checksum(algorithm, BODY)

    def round_trip():
        s3.create_bucket(Bucket=bucket_name)
        put = s3.put_object(Bucket=bucket_name, Key="k", Body=BODY, ChecksumAlgorithm=algorithm)
        head = s3.head_object(Bucket=bucket_name, Key="k", ChecksumMode="ENABLED")
        # boto3 checks the body against the checksum header itself while reading it.
        got = s3.get_object(Bucket=bucket_name, Key="k", ChecksumMode="ENABLED")
        return put, head, got, got["Body"].read()

    put, head, got, data = await server.blocking(round_trip)
    assert data == BODY
    assert got["ResponseMetadata"]["ChecksumAlgorithm"] == algorithm.lower()
    for answer in (put, head, got):
        assert answer[f"Checksum{algorithm}"] == expected
        assert answer["ChecksumType"] == "FULL_OBJECT"


@pytest_twisted.ensureDeferred
async def test_boto3_put_with_its_value_and_a_wrong_one(server, bucket_name):
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name)
    good = botocore_checksum("SHA256", BODY)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="good", Body=BODY, ChecksumSHA256=good)
    wrong = botocore_checksum("SHA256", b"x")
    error = await refused(
        server,
        "BadDigest",
        lambda: s3.put_object(Bucket=bucket_name, Key="bad", Body=BODY, ChecksumSHA256=wrong),
        settle=True,
    )
    assert error["Error"]["Message"] == "The SHA256 you specified did not match the calculated checksum."


@pytest_twisted.ensureDeferred
async def test_boto3_over_tls_sends_the_checksum_in_the_trailer_and_it_is_stored(tmp_path):
    # Over HTTPS boto3 frames the body as aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    async with tls_boto3(tmp_path) as s3:
        sent = []
        s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers)))

        def round_trip():
            s3.create_bucket(Bucket="tls-checksums")
            answers = {}
            for algorithm in ("CRC32", "CRC64NVME"):
                s3.put_object(Bucket="tls-checksums", Key=algorithm, Body=BODY, ChecksumAlgorithm=algorithm)
                answers[algorithm] = s3.head_object(Bucket="tls-checksums", Key=algorithm, ChecksumMode="ENABLED")
            return answers

        answers = await deferToThread(round_trip)
        assert [headers["X-Amz-Trailer"] for headers in sent] == [b"x-amz-checksum-crc32", b"x-amz-checksum-crc64nvme"]
        for algorithm, answer in answers.items():
            assert answer[f"Checksum{algorithm}"] == botocore_checksum(algorithm, BODY)


# -- checksum mode ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_checksums_are_returned_only_when_asked_for(server, bucket_name):
    await make_bucket(server, bucket_name)
    await call(server, "PUT", f"/{bucket_name}/k", headers={"x-amz-checksum-crc32": crc32(BODY)}, body=BODY)
    for method in ("GET", "HEAD"):
        response, _ = await call(server, method, f"/{bucket_name}/k")
        assert header(response, "x-amz-checksum-crc32") is None
        assert header(response, "x-amz-checksum-type") is None
        response, _ = await call(server, method, f"/{bucket_name}/k", headers={"x-amz-checksum-mode": "ENABLED"})
        assert header(response, "x-amz-checksum-crc32") == crc32(BODY)
        assert header(response, "x-amz-checksum-type") == "FULL_OBJECT"


@pytest_twisted.ensureDeferred
async def test_a_range_gets_the_checksum_only_when_it_covers_the_whole_object(server, bucket_name):
    await make_bucket(server, bucket_name)
    await call(server, "PUT", f"/{bucket_name}/k", headers={"x-amz-checksum-crc32": crc32(BODY)}, body=BODY)
    mode = {"x-amz-checksum-mode": "ENABLED"}
    partial, data = await call(server, "GET", f"/{bucket_name}/k", headers={**mode, "Range": "bytes=1-"})
    assert (partial.code, data) == (206, BODY[1:])
    assert header(partial, "x-amz-checksum-crc32") is None
    whole, data = await call(server, "GET", f"/{bucket_name}/k", headers={**mode, "Range": f"bytes=0-{len(BODY) - 1}"})
    assert (whole.code, data) == (206, BODY)
    assert header(whole, "x-amz-checksum-crc32") == crc32(BODY)


@pytest_twisted.ensureDeferred
async def test_not_modified_carries_no_checksum(server, bucket_name):
    await make_bucket(server, bucket_name)
    put, _ = await call(server, "PUT", f"/{bucket_name}/k", headers={"x-amz-checksum-crc32": crc32(BODY)}, body=BODY)
    headers = {"x-amz-checksum-mode": "ENABLED", "If-None-Match": header(put, "ETag")}
    response, _ = await call(server, "GET", f"/{bucket_name}/k", headers=headers)
    assert response.code == 304
    assert header(response, "x-amz-checksum-crc32") is None


@pytest_twisted.ensureDeferred
async def test_unknown_checksum_mode_is_invalid_request(server, bucket_name):
    await make_bucket(server, bucket_name)
    await call(server, "PUT", f"/{bucket_name}/k", body=BODY)
    response, content = await call(server, "GET", f"/{bucket_name}/k", headers={"x-amz-checksum-mode": "INVALID"})
    assert (response.code, error_code(content)) == (400, "InvalidRequest")
    assert b"<Message>Value for x-amz-checksum-mode header is invalid.</Message>" in content


@pytest_twisted.ensureDeferred
async def test_copy_keeps_the_source_checksum(server, bucket_name):
    await make_bucket(server, bucket_name)
    await call(server, "PUT", f"/{bucket_name}/src", headers={"x-amz-checksum-crc32": crc32(BODY)}, body=BODY)
    response, _ = await call(server, "PUT", f"/{bucket_name}/dst", headers={"x-amz-copy-source": f"/{bucket_name}/src"})
    assert response.code == 200
    response, _ = await call(server, "HEAD", f"/{bucket_name}/dst", headers={"x-amz-checksum-mode": "ENABLED"})
    assert header(response, "x-amz-checksum-crc32") == crc32(BODY)


# -- checksum headers that are refused ------------------------------------------------------------


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_wrong_checksum_header_is_bad_digest_and_stores_nothing(server, bucket_name, algorithm):
    await make_bucket(server, bucket_name)
    wrong = botocore_checksum(algorithm, BODY + b"!")
    await assert_refused(
        server,
        bucket_name,
        "k",
        {f"x-amz-checksum-{algorithm.lower()}": wrong},
        BODY,
        400,
        "BadDigest",
        f"The {algorithm} you specified did not match the calculated checksum.",
    )


@pytest_twisted.ensureDeferred
async def test_wrong_checksum_does_not_replace_the_object_there(server, bucket_name):
    await make_bucket(server, bucket_name)
    await call(server, "PUT", f"/{bucket_name}/k", body=b"old")
    await assert_refused(server, bucket_name, "k", {"x-amz-checksum-crc32": crc32(b"new!")}, b"new", 400, "BadDigest")
    _, data = await call(server, "GET", f"/{bucket_name}/k")
    assert data == b"old"


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "headers, message",
    [
        ({"x-amz-checksum-crc32": "short==="}, "Value for x-amz-checksum-crc32 header is invalid."),
        (
            {"x-amz-checksum-crc32": "y/Q5Jg==", "x-amz-checksum-crc32c": "4waSgw=="},
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ),
        (
            {"x-amz-sdk-checksum-algorithm": "CRC32C", "x-amz-checksum-crc32": "y/Q5Jg=="},
            "Value for x-amz-sdk-checksum-algorithm header is invalid.",
        ),
        (
            {"x-amz-sdk-checksum-algorithm": "CRC32"},
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* "
            "or x-amz-trailer headers were found.",
        ),
        ({"x-amz-trailer": "x-amz-content-sha256"}, "The value specified in the x-amz-trailer header is not supported"),
    ],
)
async def test_malformed_checksum_declarations_are_invalid_request(server, bucket_name, headers, message):
    await make_bucket(server, bucket_name)
    await assert_refused(server, bucket_name, "k", headers, BODY, 400, "InvalidRequest", message)


@pytest_twisted.ensureDeferred
async def test_trailer_announced_for_a_body_that_is_not_aws_chunked_is_malformed_trailer(server, bucket_name):
    await make_bucket(server, bucket_name)
    await assert_refused(
        server, bucket_name, "k", {"x-amz-trailer": "x-amz-checksum-crc32"}, BODY, 400, "MalformedTrailerError"
    )


# -- hand-built aws-chunked bodies with the checksum in the trailer ------------------------------------


def unsigned_trailer_headers(url, payload, trailer):
    """Headers of an aws-chunked PUT with an unsigned payload and a trailer, signed as boto3 signs them.

    botocore's signer writes x-amz-content-sha256 itself; a checksum in the
    trailer is what makes it write STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    """
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(payload)),
    }
    if trailer is not None:
        headers["x-amz-trailer"] = trailer
    request = AWSRequest(method="PUT", url=url, headers=headers)
    request.context["checksum"] = {"request_algorithm": {"in": "trailer"}}
    S3SigV4Auth(Credentials(*ADMIN_KEYS), "s3", REGION).add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    return dict(request.headers.items())


async def put_with_trailer(server, path, payload, announced, trailers):
    url = server.url + path
    headers = unsigned_trailer_headers(url, payload, announced)
    body = aws_chunked(payload, trailers)
    response = await treq.request("PUT", url, headers={k: [v] for k, v in headers.items()}, data=body, persistent=False)
    return response, await treq.content(response)


@pytest_twisted.ensureDeferred
async def test_trailer_checksum_is_verified_and_stored(server, bucket_name):
    await make_bucket(server, bucket_name)
    value = botocore_checksum("CRC32C", BODY)
    response, content = await put_with_trailer(
        server, f"/{bucket_name}/k", BODY, "x-amz-checksum-crc32c", {"x-amz-checksum-crc32c": value}
    )
    assert response.code == 200, content
    assert header(response, "x-amz-checksum-crc32c") == value
    got, data = await call(server, "GET", f"/{bucket_name}/k", headers={"x-amz-checksum-mode": "ENABLED"})
    assert data == BODY
    assert header(got, "x-amz-checksum-crc32c") == value


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "announced, trailers, code",
    [
        # The checksum of other bytes.
        ("x-amz-checksum-crc32", {"x-amz-checksum-crc32": crc32(BODY + b"!")}, "BadDigest"),
        # Announced, never sent.
        ("x-amz-checksum-crc32", {}, "MalformedTrailerError"),
        # Another checksum than the one announced.
        ("x-amz-checksum-crc32c", {"x-amz-checksum-crc32": crc32(BODY)}, "MalformedTrailerError"),
        # Sent without being announced.
        (None, {"x-amz-checksum-crc32": crc32(BODY)}, "MalformedTrailerError"),
        # Not a checksum.
        ("x-amz-checksum-crc32", {"x-amz-checksum-crc32": "not=base-64"}, "InvalidRequest"),
    ],
)
async def test_bad_trailer_refuses_the_upload_and_stores_nothing(server, bucket_name, announced, trailers, code):
    await make_bucket(server, bucket_name)
    await refused(
        server, code, put_with_trailer(server, f"/{bucket_name}/k", BODY, announced, trailers), 400, settle=True
    )
