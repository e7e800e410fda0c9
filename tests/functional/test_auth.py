"""Authentication with real clients: boto3 (V4 header and presigned), botocore's V2 signer,
libcloud's S3 (V4) and AuroraObjects (V2 query) drivers, and hand-built signed aws-chunked bodies.

Every refusal asserts AWS's error code and that nothing changed on disk.
"""

import hashlib
import hmac
import os
import socket
import time
from email.utils import formatdate

import pytest
import pytest_twisted
import treq
from lxml import etree

from tests.conftest import ADMIN_KEYS, REGION
from tests.helpers import make_bucket, refused, unchanged
from tests.s3http import call, error_code, signed_headers

# -- boto3, Signature V4 -----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_boto3_with_a_wrong_secret_is_refused_and_changes_nothing(server, bucket_name):
    await make_bucket(server, bucket_name)
    s3 = server.boto3(keys=(ADMIN_KEYS[0], "not-the-secret"))
    await refused(server, "SignatureDoesNotMatch", lambda: s3.put_object(Bucket=bucket_name, Key="k", Body=b"x"), 403)


@pytest_twisted.ensureDeferred
async def test_boto3_with_an_unknown_key_is_refused(server, bucket_name):
    await make_bucket(server, bucket_name)
    s3 = server.boto3(keys=("AKIDNOBODYHASTHIS000", "whatever"))
    await refused(server, "InvalidAccessKeyId", lambda: s3.put_object(Bucket=bucket_name, Key="k", Body=b"x"))


def signed_for_region(method, url, region, data=b"", keys=ADMIN_KEYS):
    """treq's headers for a request botocore signs (SigV4, header form) for *region*."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=data)
    S3SigV4Auth(Credentials(*keys), "s3", region).add_auth(request)
    return {name: [value] for name, value in request.headers.items()}


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2", "us-east-1"])
async def test_a_request_signed_for_any_region_is_served_at_once(server, bucket_name, region):
    await make_bucket(server, bucket_name)
    url = f"{server.url}/{bucket_name}/k"
    response = await treq.put(url, data=b"x", headers=signed_for_region("PUT", url, region, b"x"))
    assert response.code == 200, await treq.content(response)
    response = await treq.get(url, headers=signed_for_region("GET", url, region))
    assert (response.code, await treq.content(response)) == (200, b"x")


@pytest_twisted.ensureDeferred
async def test_the_signature_is_checked_with_the_region_the_client_named(server, bucket_name):
    # Signed for us-east-1, then the Credential edited to claim eu-west-1:
    # the server derives eu-west-1's key, so the signature cannot match.
    await make_bucket(server, bucket_name)
    url = f"{server.url}/{bucket_name}/k"
    headers = signed_for_region("PUT", url, "us-east-1", b"x")
    headers["Authorization"] = [headers["Authorization"][0].replace("/us-east-1/", "/eu-west-1/")]
    async with unchanged(server):
        response = await treq.put(url, data=b"x", headers=headers)
        assert (response.code, error_code(await treq.content(response))) == (403, "SignatureDoesNotMatch")


@pytest_twisted.ensureDeferred
async def test_boto3_configured_for_another_region_needs_no_redirect(server, bucket_name):
    import boto3
    from botocore.config import Config

    await make_bucket(server, bucket_name)
    s3 = boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name="eu-west-1",
        aws_access_key_id=ADMIN_KEYS[0],
        aws_secret_access_key=ADMIN_KEYS[1],
        config=Config(retries={"max_attempts": 0}),
    )
    statuses = []
    s3.meta.events.register("needs-retry.s3", lambda response, **_: statuses.append(response[0].status_code))
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"x")
    assert (await server.blocking(s3.get_object, Bucket=bucket_name, Key="k"))["Body"].read() == b"x"
    assert (await server.blocking(s3.list_objects_v2, Bucket=bucket_name))["KeyCount"] == 1
    # Each call one request, answered 200: nothing refused and re-signed.
    assert statuses == [200, 200, 200]


@pytest_twisted.ensureDeferred
async def test_strict_region_tells_a_request_scoped_to_another_region_the_right_one(strict_server, bucket_name):
    server = strict_server
    await make_bucket(server, bucket_name)
    url = f"{server.url}/{bucket_name}/k"
    async with unchanged(server):
        response = await treq.put(url, data=b"x", headers=signed_for_region("PUT", url, "eu-west-1", b"x"))
        root = etree.fromstring(await treq.content(response))
    assert (response.code, root.findtext("Code"), root.findtext("Region")) == (
        400,
        "AuthorizationHeaderMalformed",
        REGION,
    )


@pytest_twisted.ensureDeferred
async def test_with_strict_region_boto3_for_another_region_follows_the_hint_and_succeeds(strict_server, bucket_name):
    import boto3
    from botocore.config import Config

    server = strict_server
    await make_bucket(server, bucket_name)
    s3 = boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name="eu-west-1",
        aws_access_key_id=ADMIN_KEYS[0],
        aws_secret_access_key=ADMIN_KEYS[1],
        config=Config(retries={"max_attempts": 0}),
    )
    # botocore re-signs for the region the AuthorizationHeaderMalformed names.
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"x")
    _, content = await call(server, "GET", f"/{bucket_name}/k")
    assert content == b"x"


@pytest_twisted.ensureDeferred
async def test_a_clock_sixteen_minutes_off_is_too_skewed(server, bucket_name, monkeypatch):
    await make_bucket(server, bucket_name)
    monkeypatch.setattr(server.site.resource.authenticator, "clock", lambda: time.time() + 16 * 60)
    s3 = server.boto3()
    await refused(server, "RequestTimeTooSkewed", lambda: s3.put_object(Bucket=bucket_name, Key="k", Body=b"x"))


@pytest_twisted.ensureDeferred
async def test_a_body_that_is_not_the_signed_one_is_refused(server, bucket_name):
    await make_bucket(server, bucket_name)
    url = f"{server.url}/{bucket_name}/k"
    headers = signed_headers("PUT", url, body=b"what was signed")
    async with unchanged(server):
        response = await treq.put(url, data=b"what was sent!!", headers={k: [v] for k, v in headers.items()})
        content = await treq.content(response)
        assert (response.code, error_code(content)) == (400, "XAmzContentSHA256Mismatch")


# -- presigned URLs, fetched by a plain HTTP client -------------------------------------------


@pytest_twisted.ensureDeferred
async def test_presigned_get_and_put_work_from_a_plain_http_client(server, bucket_name):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    put_url = await server.blocking(
        s3.generate_presigned_url, "put_object", Params={"Bucket": bucket_name, "Key": "via url"}, ExpiresIn=300
    )
    response = await treq.put(put_url, data=b"uploaded with a URL")
    assert response.code == 200, await treq.content(response)
    get_url = await server.blocking(
        s3.generate_presigned_url, "get_object", Params={"Bucket": bucket_name, "Key": "via url"}, ExpiresIn=300
    )
    response = await treq.get(get_url)
    assert (response.code, await treq.content(response)) == (200, b"uploaded with a URL")


@pytest_twisted.ensureDeferred
async def test_an_expired_presigned_url_is_access_denied(server, bucket_name, monkeypatch):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    url = await server.blocking(
        s3.generate_presigned_url, "get_object", Params={"Bucket": bucket_name, "Key": "k"}, ExpiresIn=60
    )
    monkeypatch.setattr(server.site.resource.authenticator, "clock", lambda: time.time() + 61)
    response = await treq.get(url)
    content = await treq.content(response)
    assert (response.code, error_code(content)) == (403, "AccessDenied")
    assert etree.fromstring(content).findtext("Message") == "Request has expired"


def presigned(server, path, signature_version, expires_in):
    """A presigned GET by botocore's own signers (the CRT signer refuses an expiry of 0 or less)."""
    from botocore.auth import HmacV1QueryAuth, S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    credentials = Credentials(*ADMIN_KEYS)
    if signature_version == "s3v4":
        signer = S3SigV4QueryAuth(credentials, "s3", REGION, expires=expires_in)
    else:
        signer = HmacV1QueryAuth(credentials, expires=expires_in)
    request = AWSRequest("GET", server.url + path)
    signer.add_auth(request)
    return request.url


A_WEEK = (
    "X-Amz-Expires must be less than a week (in seconds); that is, "
    "the given X-Amz-Expires must be less than 604800 seconds"
)


@pytest.mark.parametrize(
    "signature_version, expires_in, status, code, message",
    [
        ("s3v4", 0, 403, "AccessDenied", "Request has expired"),
        ("s3v4", 604801, 400, "AuthorizationQueryParametersError", A_WEEK),
        ("s3v4", 609901, 400, "AuthorizationQueryParametersError", A_WEEK),
        ("s3v4", -7, 400, "AuthorizationQueryParametersError", "X-Amz-Expires must be non-negative"),
        # V2 query auth names a moment, not a duration: one past is expired, and S3 sets it no bound.
        ("s3", 0, 403, "AccessDenied", "Request has expired"),
        ("s3", -7, 403, "AccessDenied", "Request has expired"),
        ("s3", 609901, 200, None, None),
    ],
)
@pytest_twisted.ensureDeferred
async def test_presigned_urls_with_expiry_out_of_range_are_answered_as_aws_answers(
    server, bucket_name, signature_version, expires_in, status, code, message
):
    # s3-tests' test_object_raw_get_x_amz_expires_out_* (V2 URLs) accept a 403 for all three.
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="foo", Body=b"x")
    url = presigned(server, f"/{bucket_name}/foo", signature_version, expires_in)
    response = await treq.get(url)
    content = await treq.content(response)
    if code is None:
        assert (response.code, content) == (200, b"x")
    else:
        assert (response.code, error_code(content)) == (status, code)
        assert etree.fromstring(content).findtext("Message") == message


@pytest_twisted.ensureDeferred
async def test_a_presigned_url_with_a_changed_key_is_refused(server, bucket_name):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    url = await server.blocking(
        s3.generate_presigned_url, "put_object", Params={"Bucket": bucket_name, "Key": "allowed"}, ExpiresIn=300
    )
    async with unchanged(server):
        response = await treq.put(url.replace("/allowed?", "/other?"), data=b"x")
        assert (response.code, error_code(await treq.content(response))) == (403, "SignatureDoesNotMatch")


# -- Signature V2: botocore's signer, header and query ---------------------------------------


@pytest_twisted.ensureDeferred
async def test_botocore_signature_v2_round_trip(server, bucket_name):
    s3 = server.boto3(signature_version="s3")
    key = "v2/a key+with%odd chars"

    def round_trip():
        s3.create_bucket(Bucket=bucket_name)
        s3.put_object(Bucket=bucket_name, Key=key, Body=b"signed the old way", ACL="public-read")
        acl = s3.get_object_acl(Bucket=bucket_name, Key=key)
        listed = [o["Key"] for o in s3.list_objects(Bucket=bucket_name)["Contents"]]
        body = s3.get_object(Bucket=bucket_name, Key=key)["Body"].read()
        return acl, listed, body

    acl, listed, body = await server.blocking(round_trip)
    assert (listed, body) == ([key], b"signed the old way")
    assert any(g["Permission"] == "READ" for g in acl["Grants"])


@pytest_twisted.ensureDeferred
async def test_botocore_signature_v2_with_a_wrong_secret_is_refused(server, bucket_name):
    await make_bucket(server, bucket_name)
    s3 = server.boto3(keys=(ADMIN_KEYS[0], "wrong"), signature_version="s3")
    await refused(server, "SignatureDoesNotMatch", lambda: s3.put_object(Bucket=bucket_name, Key="k", Body=b"x"))


@pytest_twisted.ensureDeferred
async def test_botocore_v2_presigned_url_from_a_plain_http_client(server, bucket_name):
    await make_bucket(server, bucket_name)
    await call(server, "PUT", f"/{bucket_name}/k", body=b"v2 query")
    s3 = server.boto3(signature_version="s3")
    url = await server.blocking(
        s3.generate_presigned_url, "get_object", Params={"Bucket": bucket_name, "Key": "k"}, ExpiresIn=300
    )
    assert "AWSAccessKeyId=" in url
    response = await treq.get(url)
    assert (response.code, await treq.content(response)) == (200, b"v2 query")


# -- libcloud ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_libcloud_s3_driver_signs_v4_and_round_trips(server, bucket_name, tmp_path):
    driver = server.libcloud()
    source = tmp_path / "upload.txt"
    source.write_bytes(b"libcloud")

    def round_trip():
        container = driver.create_container(bucket_name)
        # A single PUT (upload_object_via_stream would go multipart).
        driver.upload_object(str(source), container, "obj", extra={"content_type": "text/plain"})
        names = [o.name for o in driver.list_container_objects(container)]
        data = b"".join(driver.download_object_as_stream(driver.get_object(bucket_name, "obj")))
        return names, data

    names, data = await server.blocking(round_trip)
    assert (names, data) == (["obj"], b"libcloud")


@pytest_twisted.ensureDeferred
async def test_libcloud_presigned_urls_work_although_signed_without_the_port(server, bucket_name):
    # get_object_cdn_url signs "host:127.0.0.1" but puts the port in the URL.
    driver = server.libcloud()

    def presign():
        container = driver.create_container(bucket_name)
        obj = driver.upload_object_via_stream(iter([b"presigned by libcloud"]), container, "dir/obj")
        return driver.get_object_cdn_url(obj), driver.get_object_cdn_url(obj, ex_method="PUT")

    get_url, put_url = await server.blocking(presign)
    assert f":{server.port}/" in get_url
    response = await treq.get(get_url)
    assert (response.code, await treq.content(response)) == (200, b"presigned by libcloud")
    response = await treq.put(put_url, data=b"replaced")
    assert response.code == 200, await treq.content(response)
    response = await treq.get(get_url)
    assert await treq.content(response) == b"replaced"


@pytest_twisted.ensureDeferred
async def test_a_presigned_url_for_another_host_name_is_still_refused(server, bucket_name):
    driver = server.libcloud()

    def presign():
        container = driver.create_container(bucket_name)
        return driver.get_object_cdn_url(driver.upload_object_via_stream(iter([b"x"]), container, "obj"))

    url = await server.blocking(presign)
    response = await treq.get(url, headers={"Host": f"localhost:{server.port}"})
    assert (response.code, error_code(await treq.content(response))) == (403, "SignatureDoesNotMatch")


@pytest_twisted.ensureDeferred
async def test_a_header_signature_over_the_host_without_its_port_is_refused(server, bucket_name):
    # The portless variant is for presigned URLs only: nothing else is relaxed.
    await make_bucket(server, bucket_name)
    headers = signed_for_region("PUT", f"http://127.0.0.1/{bucket_name}/k", REGION, b"x")
    async with unchanged(server):
        response = await treq.put(f"{server.url}/{bucket_name}/k", data=b"x", headers=headers)
        assert (response.code, error_code(await treq.content(response))) == (403, "SignatureDoesNotMatch")


def aurora_driver(server, keys=ADMIN_KEYS):
    from libcloud.storage.drivers.auroraobjects import AuroraObjectsStorageDriver

    return AuroraObjectsStorageDriver(keys[0], keys[1], secure=False, host="127.0.0.1", port=server.port, timeout=10)


@pytest_twisted.ensureDeferred
async def test_libcloud_auroraobjects_driver_authenticates_with_v2_query_parameters(server, bucket_name, tmp_path):
    driver = aurora_driver(server)
    source = tmp_path / "upload.bin"
    source.write_bytes(os.urandom(100_000))

    def round_trip():
        container = driver.create_container(bucket_name)
        driver.upload_object(str(source), container, "dir/file.bin")
        names = [o.name for o in driver.list_container_objects(container)]
        data = b"".join(driver.download_object_as_stream(driver.get_object(bucket_name, "dir/file.bin")))
        # ?uploads is signed over the path alone by this driver.
        uploads = list(driver.ex_iterate_multipart_uploads(container))
        driver.delete_object(driver.get_object(bucket_name, "dir/file.bin"))
        return names, data, uploads

    names, data, uploads = await server.blocking(round_trip)
    assert (names, data, uploads) == (["dir/file.bin"], source.read_bytes(), [])


@pytest_twisted.ensureDeferred
async def test_libcloud_auroraobjects_driver_with_a_wrong_secret_is_refused(server, bucket_name):
    from libcloud.common.types import InvalidCredsError

    await make_bucket(server, bucket_name)
    driver = aurora_driver(server, keys=(ADMIN_KEYS[0], "wrong"))
    async with unchanged(server):
        container = await server.blocking(driver.get_container, bucket_name)
        with pytest.raises(InvalidCredsError):
            await server.blocking(driver.upload_object_via_stream, iter([b"x"]), container, "k")
        with pytest.raises(InvalidCredsError):
            await server.blocking(driver.list_container_objects, container)


# -- hand-built signed aws-chunked bodies ------------------------------------------------------


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256)


def signed_chunked_request(server, path, payload, chunk_sizes, trailer=None, tamper=None):
    """A raw PUT with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] body, signed chunk by chunk.

    Written from AWS's description of the scheme, independently of the server's code.
    *trailer*: (name, value) to send, signed; *tamper*: index of a chunk whose data is altered after signing.
    """
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(payload))}
    if trailer:
        headers["x-amz-trailer"] = trailer[0]
    pieces, offset = [], 0
    for size in chunk_sizes:
        pieces.append(payload[offset : offset + size])
        offset += size
    assert offset == len(payload)
    pieces.append(b"")
    empty = hashlib.sha256(b"").hexdigest()
    # The body's length goes into the signed headers, so frame it with placeholder signatures first.
    frame_length = sum(len(f"{len(p):x};chunk-signature={'0' * 64}\r\n") + len(p) + 2 for p in pieces)
    if trailer:
        frame_length += len(f"{trailer[0]}:{trailer[1]}\r\n") + len(f"x-amz-trailer-signature:{'0' * 64}\r\n") + 2
        frame_length -= 2  # the final chunk's data CRLF is replaced by the trailer section
    headers["Content-Length"] = str(frame_length)
    signed = signed_headers("PUT", server.url + path, headers=headers, payload_hash=mode)
    timestamp = signed["X-Amz-Date"]
    scope = f"{timestamp[:8]}/{REGION}/s3/aws4_request"
    previous = signed["Authorization"].rsplit("Signature=", 1)[1]
    key = _hmac(("AWS4" + ADMIN_KEYS[1]).encode(), timestamp[:8]).digest()
    for part in (REGION, "s3", "aws4_request"):
        key = _hmac(key, part).digest()
    body = b""
    for index, piece in enumerate(pieces):
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", timestamp, scope, previous, empty, hashlib.sha256(piece).hexdigest()]
        )
        previous = _hmac(key, to_sign).hexdigest()
        if index == tamper:
            piece = bytes([piece[0] ^ 1]) + piece[1:]
        body += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece
        if piece or not trailer:
            body += b"\r\n"
    if trailer:
        line = f"{trailer[0]}:{trailer[1]}\n"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-TRAILER", timestamp, scope, previous, hashlib.sha256(line.encode()).hexdigest()]
        )
        body += (
            f"{trailer[0]}:{trailer[1]}\r\nx-amz-trailer-signature:{_hmac(key, to_sign).hexdigest()}\r\n\r\n".encode()
        )
    assert len(body) == frame_length
    lines = [f"PUT {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in signed.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


def send_in_pieces(port, head, body, step):
    """Send the request *step* bytes at a time (so frames split anywhere); the answer's status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(head)
        try:
            for start in range(0, len(body), step):
                sock.sendall(body[start : start + step])
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    head, _, content = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), content


@pytest.mark.parametrize(
    "chunk_sizes, step",
    [([1, 1, 1, 5], 1), ([3000, 1, 4999], 7), ([65536, 65536, 1000], 65536)],
    ids=["one-byte-chunks", "odd-splits", "big-chunks"],
)
@pytest_twisted.ensureDeferred
async def test_signed_aws_chunked_body_is_stored_without_its_framing(server, bucket_name, chunk_sizes, step):
    await make_bucket(server, bucket_name)
    payload = os.urandom(sum(chunk_sizes))
    head, body = signed_chunked_request(server, f"/{bucket_name}/k", payload, chunk_sizes)
    status, content = await server.blocking(send_in_pieces, server.port, head, body, step)
    assert status == 200, content
    _, stored = await call(server, "GET", f"/{bucket_name}/k")
    assert stored == payload


@pytest_twisted.ensureDeferred
async def test_signed_aws_chunked_body_with_a_signed_trailer_is_stored(server, bucket_name):
    import base64
    import zlib

    await make_bucket(server, bucket_name)
    payload = os.urandom(10_000)
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    head, body = signed_chunked_request(
        server, f"/{bucket_name}/k", payload, [4096, 4096, 1808], trailer=("x-amz-checksum-crc32", crc)
    )
    status, content = await server.blocking(send_in_pieces, server.port, head, body, 1000)
    assert status == 200, content
    _, stored = await call(server, "GET", f"/{bucket_name}/k")
    assert stored == payload


@pytest.mark.parametrize("tamper", [0, 1, 2], ids=["first-chunk", "middle-chunk", "last-chunk"])
@pytest_twisted.ensureDeferred
async def test_a_tampered_signed_chunk_is_refused_and_stores_nothing(server, bucket_name, tamper):
    await make_bucket(server, bucket_name)
    await call(server, "PUT", f"/{bucket_name}/k", body=b"the old version")
    head, body = signed_chunked_request(
        server, f"/{bucket_name}/k", os.urandom(9000), [4000, 4000, 1000], tamper=tamper
    )
    async with unchanged(server, settle=True):
        status, content = await server.blocking(send_in_pieces, server.port, head, body, 1500)
        assert (status, error_code(content)) == (403, "SignatureDoesNotMatch")


@pytest_twisted.ensureDeferred
async def test_a_wrong_trailer_signature_is_refused_and_stores_nothing(server, bucket_name):
    import base64
    import re
    import zlib

    await make_bucket(server, bucket_name)
    payload = os.urandom(5000)
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    head, body = signed_chunked_request(
        server, f"/{bucket_name}/k", payload, [5000], trailer=("x-amz-checksum-crc32", crc)
    )
    # The checksum is right; only the trailer's signature is not.
    body = re.sub(rb"x-amz-trailer-signature:[0-9a-f]{64}", b"x-amz-trailer-signature:" + b"0" * 64, body)
    async with unchanged(server, settle=True):
        status, content = await server.blocking(send_in_pieces, server.port, head, body, 4096)
        assert (status, error_code(content)) == (403, "SignatureDoesNotMatch")


# -- no signature: an Authorization header missing or empty ---------------------------------


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("authorization", [None, "", "  "], ids=["missing", "empty", "blank"])
async def test_a_put_object_without_a_signature_is_access_denied(server, bucket_name, authorization):
    await make_bucket(server, bucket_name)
    headers = {} if authorization is None else {"Authorization": authorization}
    await refused(server, "AccessDenied", call(server, "PUT", f"/{bucket_name}/k", None, headers, b"bar"), 403)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("authorization", [None, ""], ids=["missing", "empty"])
async def test_a_create_bucket_without_a_signature_is_access_denied(server, bucket_name, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    await refused(server, "AccessDenied", call(server, "PUT", f"/{bucket_name}", None, headers), 403)


# -- Date and x-amz-date: which one dates a signature ---------------------------------------


def with_headers(s3, operation, headers):
    """*s3* (a boto3 client) adding *headers* to *operation* before it signs, as s3-tests does."""
    s3.meta.events.register(f"before-call.s3.{operation}", lambda params, **_: params["headers"].update(headers))
    return s3


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("date", [formatdate(usegmt=True), ""], ids=["date", "empty-date"])
async def test_v4_with_a_date_header_signs_over_date_and_succeeds(server, bucket_name, date):
    # botocore, told of a Date, sends an HTTP-date Date alone and signs its ISO form
    # (s3-tests test_object_create_date_and_amz_date, test_object_create_amz_date_and_no_date).
    await make_bucket(server, bucket_name)
    s3 = with_headers(server.boto3(), "PutObject", {"Date": date, "X-Amz-Date": formatdate(usegmt=True)})
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"bar")
    response, content = await call(server, "GET", f"/{bucket_name}/k")
    assert (response.code, content) == (200, b"bar")


@pytest_twisted.ensureDeferred
async def test_v4_signed_over_an_http_date_date_header_alone_succeeds(server, bucket_name):
    # botocore's signer, given a Date, sends it (an HTTP date) without x-amz-date.
    await make_bucket(server, bucket_name)
    headers = signed_headers("PUT", f"{server.url}/{bucket_name}/k", headers={"Date": formatdate()}, body=b"bar")
    assert "X-Amz-Date" not in headers and "date" in headers["Authorization"]
    response, content = await call(server, "PUT", f"/{bucket_name}/k", None, headers, b"bar")
    assert response.code == 200, content
    response, content = await call(server, "GET", f"/{bucket_name}/k")
    assert (response.code, content) == (200, b"bar")


@pytest_twisted.ensureDeferred
async def test_v4_x_amz_date_takes_precedence_over_an_invalid_date(server, bucket_name):
    await make_bucket(server, bucket_name)
    url = f"{server.url}/{bucket_name}/k"
    headers = {k: [v] for k, v in signed_headers("PUT", url, body=b"bar").items()}
    headers["Date"] = ["not a date"]  # unsigned, and ignored: x-amz-date dates the request
    response = await treq.put(url, data=b"bar", headers=headers)
    assert response.code == 200, await treq.content(response)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("amz_date", ["Bad Date", ""], ids=["invalid", "empty"])
async def test_v4_an_invalid_x_amz_date_is_access_denied_despite_a_valid_date(server, bucket_name, amz_date):
    await make_bucket(server, bucket_name)
    url = f"{server.url}/{bucket_name}/k"
    headers = signed_headers("PUT", url, body=b"bar")
    headers.update({"X-Amz-Date": amz_date, "Date": formatdate(usegmt=True)})
    request = call(server, "PUT", f"/{bucket_name}/k", None, headers, b"bar")
    await refused(server, "AccessDenied", request, 403)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "amz_date, code",
    [
        ("Bad Date", "AccessDenied"),
        ("", "AccessDenied"),
        ("Tue, 07 Jul 2010 21:53:04 GMT", "RequestTimeTooSkewed"),
        ("Tue, 07 Jul 1950 21:53:04 GMT", "AccessDenied"),
        ("Tue, 07 Jul 9999 21:53:04 GMT", "RequestTimeTooSkewed"),
    ],
    ids=["invalid", "empty", "before-today", "before-epoch", "after-end"],
)
async def test_v2_x_amz_date_takes_precedence_over_date(server, bucket_name, amz_date, code):
    # s3-tests test_object_create_bad_date_*_aws2: botocore's V2 signer sets a valid Date as well.
    await make_bucket(server, bucket_name)
    s3 = with_headers(server.boto3(signature_version="s3"), "PutObject", {"x-amz-date": amz_date})
    await refused(server, code, lambda: s3.put_object(Bucket=bucket_name, Key="k", Body=b"bar"), 403)
