"""Hostile HTTP over raw sockets: what a PUT is refused for before its body, and cut-off bodies.

Each exchange runs in a thread (the server shares the test's reactor) and
reports what the server sent and whether it closed the connection, so a
test can tell "answered and closed" from "still waiting for the body".
"""

import hashlib
import os
import socket
import time
from dataclasses import dataclass

import pytest
import pytest_twisted
from botocore.auth import UNSIGNED_PAYLOAD, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from twisted.internet import threads

from objectstore.web import object as object_resource
from objectstore.web.body import UploadBody
from tests.conftest import ADMIN_KEYS, REGION, live_server
from tests.helpers import eventually, unchanged
from tests.s3http import call, error_code, header

GiB = 1024**3
MiB = 1024**2


class _UnsignedPayloadAuth(S3SigV4Auth):
    """SigV4 with UNSIGNED-PAYLOAD: the request head is signed, the body we stream is not."""

    def payload(self, request):
        return UNSIGNED_PAYLOAD


def request_head(server, method, path, headers=None):
    """The request line and signed headers of a raw request, up to the blank line."""
    request = AWSRequest(method=method, url=server.url + path, headers=dict(headers or {}))
    _UnsignedPayloadAuth(Credentials(*ADMIN_KEYS), "s3", REGION).add_auth(request)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Answer:
    data: bytes
    closed: bool  # the server closed the connection (rather than our read timing out)

    @property
    def status(self):
        return int(self.data.split(b" ", 2)[1])

    @property
    def headers(self):
        head = self.data.partition(b"\r\n\r\n")[0].decode("latin-1")
        pairs = (line.partition(":") for line in head.split("\r\n")[1:])
        return {name.strip().lower(): value.strip() for name, _, value in pairs}

    @property
    def body(self):
        return self.data.partition(b"\r\n\r\n")[2]


def _read_until_closed(sock, timeout):
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except socket.timeout:
        return b"".join(chunks), False
    except ConnectionResetError:
        pass
    return b"".join(chunks), True


def exchange(port, head, body=b"", shut_write=False, timeout=5.0):
    """Send *head* and *body*, then read until the server closes (blocking)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early and closed: the answer may still be there to read
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        return Answer(*_read_until_closed(sock, timeout))


def tmp_files(server):
    return server.tmp_files()


async def object_exists(server, bucket, key):
    response, _ = await call(server, "HEAD", f"/{bucket}/{key}")
    return response.code == 200


# -- refused before the body ---------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_put_to_missing_bucket_is_refused_before_the_body(server):
    head = request_head(server, "PUT", "/no-such-bucket/key", {"Content-Length": "1048576", "Expect": "100-continue"})
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head)

        assert b"100 Continue" not in answer.data
        assert answer.status == 404
        assert error_code(answer.body) == "NoSuchBucket"
        assert answer.closed
        assert tmp_files(server) == []


@pytest_twisted.ensureDeferred
async def test_put_over_five_gib_is_refused_with_entity_too_large(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    head = request_head(
        server, "PUT", f"/{bucket_name}/huge", {"Content-Length": str(5 * GiB + 1), "Expect": "100-continue"}
    )
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head)

        assert b"100 Continue" not in answer.data
        assert answer.status == 400
        assert error_code(answer.body) == "EntityTooLarge"
        assert answer.closed
        assert tmp_files(server) == []


@pytest_twisted.ensureDeferred
async def test_put_without_length_or_chunking_is_refused_with_missing_content_length(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    head = request_head(server, "PUT", f"/{bucket_name}/unframed", {"Expect": "100-continue"})
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head)

        assert b"100 Continue" not in answer.data
        assert answer.status == 411
        assert error_code(answer.body) == "MissingContentLength"
        assert answer.closed
        assert tmp_files(server) == []


@pytest_twisted.ensureDeferred
async def test_upload_part_without_length_or_chunking_is_refused_with_missing_content_length(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    upload = await server.blocking(server.boto3().create_multipart_upload, Bucket=bucket_name, Key="m")
    path = f"/{bucket_name}/m?partNumber=1&uploadId={upload['UploadId']}"
    head = request_head(server, "PUT", path, {"Connection": "close"})
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head)
        assert (answer.status, error_code(answer.body)) == (411, "MissingContentLength")


@pytest_twisted.ensureDeferred
async def test_bodiless_puts_need_no_content_length(server, bucket_name):
    # As on AWS (s3-tests test_bucket_create_contentlength_none, test_object_acl_create_contentlength_none).
    answer = await threads.deferToThread(
        exchange, server.port, request_head(server, "PUT", f"/{bucket_name}", {"Connection": "close"})
    )
    assert answer.status == 200, answer.body
    response, _ = await call(server, "PUT", f"/{bucket_name}/k", body=b"x")
    assert response.code == 200
    head = request_head(server, "PUT", f"/{bucket_name}/k?acl", {"x-amz-acl": "public-read", "Connection": "close"})
    answer = await threads.deferToThread(exchange, server.port, head)
    assert answer.status == 200, answer.body
    response, content = await call(server, "GET", f"/{bucket_name}/k", keys=None)
    assert (response.code, content) == (200, b"x")


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("length", ["", "-1", "ten"], ids=["empty", "negative", "word"])
@pytest.mark.parametrize("target", ["object", "bucket"])
async def test_a_content_length_that_is_no_length_is_a_bad_request(server, bucket_name, length, target):
    # s3-tests test_{object,bucket}_create_bad_contentlength_{empty,negative}: 400.
    if target == "object":
        await call(server, "PUT", f"/{bucket_name}")
    path = f"/{bucket_name}/k" if target == "object" else f"/{bucket_name}"
    head = request_head(server, "PUT", path, {"Content-Length": length, "Connection": "close"})
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head + b"bar")
        assert (answer.status, error_code(answer.body)) == (400, "BadRequest"), answer.data


@pytest_twisted.ensureDeferred
async def test_refusal_before_the_body_carries_a_request_id(server):
    head = request_head(server, "PUT", "/no-such-bucket/key", {"Content-Length": "10", "Expect": "100-continue"})

    answer = await threads.deferToThread(exchange, server.port, head)

    request_id = answer.headers["x-amz-request-id"]
    assert request_id
    assert f"<RequestId>{request_id}</RequestId>".encode() in answer.body


@pytest_twisted.ensureDeferred
async def test_accepted_put_with_expect_gets_100_continue(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    head = request_head(server, "PUT", f"/{bucket_name}/k", {"Content-Length": "5", "Expect": "100-continue"})

    def put():
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(head)
            interim = sock.recv(1024)
            sock.sendall(b"hello")
            return interim, sock.recv(65536)

    interim, final = await threads.deferToThread(put)

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 200 ")


# -- bodies that stream ---------------------------------------------------------


def chunked(parts):
    """An HTTP/1.1 chunked body with one chunk per part (one with an extension)."""
    out = b""
    for i, part in enumerate(parts):
        extension = b";note=odd" if i == 1 else b""
        out += b"%x%s\r\n%s\r\n" % (len(part), extension, part)
    return out + b"0\r\n\r\n"


@pytest_twisted.ensureDeferred
async def test_chunked_put_with_odd_chunk_sizes_is_stored_exactly(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    payload = os.urandom(300_001)
    sizes = (1, 7, 4093, 65537, 3, 100_000, 130_360)
    assert sum(sizes) == len(payload)
    parts, offset = [], 0
    for size in sizes:
        parts.append(payload[offset : offset + size])
        offset += size
    head = request_head(
        server, "PUT", f"/{bucket_name}/chunked", {"Transfer-Encoding": "chunked", "Connection": "close"}
    )

    answer = await threads.deferToThread(exchange, server.port, head, chunked(parts))

    assert answer.status == 200
    response, content = await call(server, "GET", f"/{bucket_name}/chunked")
    assert content == payload
    assert header(response, "ETag") == f'"{hashlib.md5(payload).hexdigest()}"'
    assert tmp_files(server) == []


class _SmallUploadBody(UploadBody):
    """UploadBody with a 100 KB cap instead of 5 GiB, to stream past it in a test."""

    def __init__(self, writer, **kwargs):
        super().__init__(writer, **kwargs, max_size=100_000)


@pytest_twisted.ensureDeferred
async def test_chunked_put_streaming_past_the_size_limit_is_cut_off(server, bucket_name, monkeypatch):
    await call(server, "PUT", f"/{bucket_name}")
    monkeypatch.setattr(object_resource, "UploadBody", _SmallUploadBody)
    head = request_head(server, "PUT", f"/{bucket_name}/flood", {"Transfer-Encoding": "chunked"})
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head, chunked([b"x" * 30_000] * 10))

        assert answer.status == 400
        assert error_code(answer.body) == "EntityTooLarge"
        assert answer.closed
        await eventually(lambda: tmp_files(server) == [])


# -- bodies that never complete ----------------------------------------------------


def _upload_then_vanish(port, head, sent, tmp_dir, timeout=5.0):
    """Send the head and part of the body, wait until the server spooled some of it, then close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + sent)
        deadline = time.monotonic() + timeout
        while not any(os.path.getsize(os.path.join(tmp_dir, name)) > 0 for name in os.listdir(tmp_dir)):
            assert time.monotonic() < deadline, "the server never started writing the body"
            time.sleep(0.01)


@pytest_twisted.ensureDeferred
async def test_client_disconnect_mid_upload_leaves_no_object_and_no_temp_file(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    head = request_head(server, "PUT", f"/{bucket_name}/cut", {"Content-Length": str(10 * MiB)})
    tmp_dir = os.path.join(server.data_dir, "tmp")
    async with unchanged(server):
        await threads.deferToThread(_upload_then_vanish, server.port, head, os.urandom(MiB), tmp_dir)

        await eventually(lambda: tmp_files(server) == [])
        assert not await object_exists(server, bucket_name, "cut")


@pytest_twisted.ensureDeferred
async def test_short_body_then_half_close_stores_nothing(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    head = request_head(server, "PUT", f"/{bucket_name}/short", {"Content-Length": "100"})
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head, b"x" * 50, shut_write=True)

        assert answer.closed
        # Either no answer at all (the body never completed) or a 400: never a 200.
        assert answer.data == b"" or answer.status == 400
        await eventually(lambda: tmp_files(server) == [])
        assert not await object_exists(server, bucket_name, "short")


# -- queries ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_boto3_lists_with_a_non_ascii_prefix(server, bucket_name):
    s3 = server.boto3()

    def list_accented():
        s3.create_bucket(Bucket=bucket_name)
        s3.put_object(Bucket=bucket_name, Key="données/été.txt", Body=b"x")
        s3.put_object(Bucket=bucket_name, Key="other", Body=b"y")
        return s3.list_objects_v2(Bucket=bucket_name, Prefix="données/")

    listing = await server.blocking(list_accented)

    assert [entry["Key"] for entry in listing["Contents"]] == ["données/été.txt"]


@pytest_twisted.ensureDeferred
async def test_query_value_that_is_not_utf8_is_answered(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    await call(server, "PUT", f"/{bucket_name}/k", body=b"abc")
    path = f"/{bucket_name}/k?response-content-type=%ff"
    head = request_head(server, "GET", path, {"Connection": "close"})

    answer = await threads.deferToThread(exchange, server.port, head)

    assert answer.status == 200
    assert answer.body == b"abc"


# -- framing a proxy could read differently (request smuggling) -------------------------


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: -5\r\n",
        b"Content-Length: 5, 5\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
    ],
)
@pytest_twisted.ensureDeferred
async def test_ambiguous_body_framing_is_refused_and_closed(server, bucket_name, framing):
    await call(server, "PUT", f"/{bucket_name}")
    head = request_head(server, "PUT", f"/{bucket_name}/smuggled")[:-2] + framing + b"\r\n"
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head, b"hello")

        assert answer.status == 400
        assert b"<Code>BadRequest</Code>" in answer.body
        assert answer.closed
        assert tmp_files(server) == []


@pytest_twisted.ensureDeferred
async def test_malformed_chunk_size_is_refused_and_stores_nothing(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    head = request_head(server, "PUT", f"/{bucket_name}/bad-chunks", {"Transfer-Encoding": "chunked"})
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head, b"5\r\nhello\r\nzz\r\n")

        assert answer.status == 400
        assert answer.closed
        await eventually(lambda: tmp_files(server) == [])


# -- header abuse -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_header_flood_is_refused_with_400(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    # 10,000 headers, most of them still unread when the answer is sent: it must reach the client whole.
    flood = "".join(f"X-Flood-{i}: {i}\r\n" for i in range(10_000))
    head = f"GET /{bucket_name} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{flood}\r\n".encode()
    async with unchanged(server):
        answer = await threads.deferToThread(exchange, server.port, head)

        assert answer.status == 400
        assert b"<Code>RequestHeaderSectionTooLarge</Code>" in answer.body
        assert answer.closed


# -- connection caps, over real sockets -------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_connection_past_the_per_address_cap_is_answered_slow_down_until_one_closes(tmp_path):
    async with live_server(tmp_path, max_connections_per_address=2) as server:
        await call(server, "PUT", "/capped")
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        try:
            await eventually(lambda: server.site.connections.total == 2)
            head = request_head(server, "GET", "/capped")
            async with unchanged(server):
                answer = await threads.deferToThread(exchange, server.port, head)

                assert answer.status == 503
                assert b"<Code>SlowDown</Code>" in answer.body
                assert answer.closed

            held.pop().close()
            await eventually(lambda: server.site.connections.total == 1)
            response, _ = await call(server, "GET", "/capped")
            assert response.code == 200
        finally:
            for sock in held:
                sock.close()
