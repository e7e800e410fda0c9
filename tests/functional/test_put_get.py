"""PutObject, GetObject and HeadObject: bytes, digests, content headers, streaming.

Ranges and conditional requests live in test_ranges_conditionals.py.
"""

import base64
import hashlib
import os
import socket

import pytest
import pytest_twisted
from botocore.exceptions import ClientError
from twisted.internet import reactor
from twisted.internet.task import deferLater

from objectstore.storage.writer import INLINE_LIMIT
from objectstore.web import streaming
from tests.helpers import eventually, make_bucket, refused, unchanged
from tests.s3http import UNSIGNED, call, error_code, header, signed_headers

MiB = 1024 * 1024
# Headers every answer carries that differ from one request to the next, and
# Content-Length, which Twisted's client keeps to itself when a body follows.
NOT_COMPARED = {"date", "x-amz-request-id", "x-amz-id-2", "content-length"}


# -- helpers ---------------------------------------------------------------------


async def put(server, bucket, key, body, headers=None):
    response, content = await call(server, "PUT", f"/{bucket}/{key}", headers=headers, body=body)
    assert response.code == 200, content
    return response


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def tmp_sizes(server):
    """Sizes of the files in the store's tmp/ (where uploads land while they arrive)."""
    tmp = os.path.join(server.data_dir, "tmp")
    sizes = []
    for name in server.tmp_files():
        try:
            sizes.append(os.path.getsize(os.path.join(tmp, name)))
        except FileNotFoundError:
            pass  # renamed home or unlinked since the listing
    return sizes


def request_head(server, method, path, headers):
    """The request line and signed headers of a request whose body we send by hand."""
    signed = signed_headers(method, server.url + path, headers=headers, payload_hash=UNSIGNED)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in signed.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(server, data=b""):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(data)
    return sock


def read_until_closed(sock, limit=None):
    """(bytes received, whether the server closed the connection) -- blocking."""
    chunks = []
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            chunks.append(chunk)
            if limit is not None and sum(map(len, chunks)) >= limit:
                break
    except socket.timeout:
        pass
    return b"".join(chunks), closed


def send_and_finish(sock, data):
    try:
        sock.sendall(data)
        return read_until_closed(sock)[0]
    finally:
        sock.close()


def status_of(answer):
    return int(answer.split(b" ", 2)[1])


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


# -- PutObject -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_put_answers_the_md5_etag_and_get_returns_the_bytes(server, bucket_name):
    s3 = server.boto3()
    body = os.urandom(1000)

    def round_trip():
        s3.create_bucket(Bucket=bucket_name)
        put = s3.put_object(Bucket=bucket_name, Key="k", Body=body)
        got = s3.get_object(Bucket=bucket_name, Key="k")
        return put["ETag"], got["ETag"], got["ContentLength"], got["Body"].read()

    put_etag, get_etag, length, data = await server.blocking(round_trip)
    assert put_etag == get_etag == f'"{hashlib.md5(body).hexdigest()}"'
    assert length == 1000
    assert data == body


@pytest_twisted.ensureDeferred
async def test_put_streams_the_body_to_disk_as_it_arrives(server, bucket_name):
    await make_bucket(server, bucket_name)
    body = os.urandom(4 * MiB)
    head = request_head(server, "PUT", f"/{bucket_name}/big", {"Content-Length": str(len(body)), "Connection": "close"})
    sock = await server.blocking(connect, server, head + body[: 2 * MiB])
    try:
        # Half the body is on disk while the other half has not been sent yet.
        await eventually(lambda: any(size >= 2 * MiB for size in tmp_sizes(server)))
    except BaseException:
        sock.close()
        raise
    answer = await server.blocking(send_and_finish, sock, body[2 * MiB :])
    assert status_of(answer) == 200
    response, content = await call(server, "GET", f"/{bucket_name}/big")
    assert content == body


@pytest_twisted.ensureDeferred
async def test_put_with_chunked_transfer_encoding_streams_and_stores(server, bucket_name):
    await make_bucket(server, bucket_name)
    pieces = [os.urandom(512 * 1024) for _ in range(6)]
    head = request_head(
        server, "PUT", f"/{bucket_name}/chunked", {"Transfer-Encoding": "chunked", "Connection": "close"}
    )
    sock = await server.blocking(connect, server, head + b"".join(chunk(p) for p in pieces[:3]))
    try:
        await eventually(lambda: any(size >= 3 * 512 * 1024 for size in tmp_sizes(server)))
    except BaseException:
        sock.close()
        raise
    answer = await server.blocking(send_and_finish, sock, b"".join(chunk(p) for p in pieces[3:]) + b"0\r\n\r\n")
    body = b"".join(pieces)
    assert status_of(answer) == 200
    assert f'ETag: "{hashlib.md5(body).hexdigest()}"'.encode() in answer
    response, content = await call(server, "GET", f"/{bucket_name}/chunked")
    assert content == body


@pytest_twisted.ensureDeferred
async def test_put_without_length_or_chunking_is_missing_content_length(server, bucket_name):
    await make_bucket(server, bucket_name)
    head = request_head(server, "PUT", f"/{bucket_name}/k", {"Connection": "close"})
    async with unchanged(server):
        sock = await server.blocking(connect, server, head)
        answer = await server.blocking(send_and_finish, sock, b"")
        assert status_of(answer) == 411
        assert b"<Code>MissingContentLength</Code>" in answer


@pytest_twisted.ensureDeferred
async def test_put_over_5_gib_is_refused_at_once_without_100_continue(server, bucket_name):
    await make_bucket(server, bucket_name)
    head = request_head(
        server, "PUT", f"/{bucket_name}/huge", {"Content-Length": str(5 * 1024**3 + 1), "Expect": "100-continue"}
    )

    def exchange():
        with connect(server, head) as sock:
            return read_until_closed(sock)

    async with unchanged(server):
        answer, closed = await server.blocking(exchange)
        assert closed, "the server must close the connection instead of waiting for the body"
        assert status_of(answer) == 400
        assert b"100 Continue" not in answer
        assert b"<Code>EntityTooLarge</Code>" in answer
        assert tmp_sizes(server) == []


@pytest_twisted.ensureDeferred
async def test_upload_cut_short_stores_nothing(server, bucket_name):
    await make_bucket(server, bucket_name)
    head = request_head(server, "PUT", f"/{bucket_name}/short", {"Content-Length": "1000"})

    def send_half_then_hang_up():
        with connect(server, head + b"x" * 500) as sock:
            sock.shutdown(socket.SHUT_WR)
            read_until_closed(sock)

    async with unchanged(server):
        await server.blocking(send_half_then_hang_up)
        await eventually(lambda: tmp_sizes(server) == [])


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "first, second",
    [(10, 20), (10, 100_000), (100_000, 10), (100_000, 200_000)],
    ids=["inline-inline", "inline-blob", "blob-inline", "blob-blob"],
)
async def test_overwrite_replaces_the_bytes_and_drops_the_old_ones(server, bucket_name, first, second):
    await make_bucket(server, bucket_name)
    await put(server, bucket_name, "k", os.urandom(first))
    body = os.urandom(second)
    await put(server, bucket_name, "k", body)
    _, content = await call(server, "GET", f"/{bucket_name}/k")
    assert content == body
    await server.settled()
    files, rows = server.snapshot()
    in_blob = second > INLINE_LIMIT
    assert len([f for f in files if f.startswith("blob:")]) == in_blob
    assert (len(rows["objects"]), len(rows["segments"]), len(rows["inline_data"])) == (1, in_blob, not in_blob)


@pytest_twisted.ensureDeferred
async def test_empty_put_stores_an_empty_object(server, bucket_name):
    await make_bucket(server, bucket_name)
    response = await put(server, bucket_name, "empty", b"")
    assert header(response, "ETag") == f'"{hashlib.md5(b"").hexdigest()}"'
    response, content = await call(server, "GET", f"/{bucket_name}/empty")
    assert (response.code, response.length, content) == (200, 0, b"")


@pytest_twisted.ensureDeferred
async def test_put_with_expect_100_continue_gets_the_go_ahead_then_stores(server, bucket_name):
    await make_bucket(server, bucket_name)
    head = request_head(
        server, "PUT", f"/{bucket_name}/k", {"Content-Length": "5", "Expect": "100-continue", "Connection": "close"}
    )

    def exchange():
        with connect(server, head) as sock:
            interim = sock.recv(1024)
            sock.sendall(b"hello")
            return interim, read_until_closed(sock)[0]

    interim, answer = await server.blocking(exchange)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert status_of(answer) == 200
    _, content = await call(server, "GET", f"/{bucket_name}/k")
    assert content == b"hello"


@pytest_twisted.ensureDeferred
async def test_metadata_over_2_kib_is_metadata_too_large(server, bucket_name):
    await make_bucket(server, bucket_name)
    headers = {f"x-amz-meta-m{i}": "v" * 100 for i in range(21)}
    await refused(
        server, "MetadataTooLarge", call(server, "PUT", f"/{bucket_name}/k", headers=headers, body=b"data"), 400
    )


# -- Content-MD5 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_md5",
    ["abc", "", base64.b64encode(b"12345678").decode(), "!!!!not-base64!!!!"],
    ids=["abc", "empty", "wrong-length", "not-base64"],
)
@pytest_twisted.ensureDeferred
async def test_malformed_content_md5_is_invalid_digest(server, bucket_name, content_md5):
    await make_bucket(server, bucket_name)
    request = call(server, "PUT", f"/{bucket_name}/k", headers={"Content-MD5": content_md5}, body=b"data")
    await refused(server, "InvalidDigest", request, 400)


@pytest_twisted.ensureDeferred
async def test_content_md5_mismatch_is_bad_digest_and_keeps_the_old_version(server, bucket_name):
    await make_bucket(server, bucket_name)
    await put(server, bucket_name, "k", b"version one")
    headers = {"Content-MD5": md5_b64(b"version one")}
    await refused(
        server, "BadDigest", call(server, "PUT", f"/{bucket_name}/k", headers=headers, body=b"version two"), 400
    )
    _, content = await call(server, "GET", f"/{bucket_name}/k")
    assert content == b"version one"


@pytest_twisted.ensureDeferred
async def test_chunked_body_not_matching_its_content_md5_is_bad_digest(server, bucket_name):
    await make_bucket(server, bucket_name)
    head = request_head(
        server,
        "PUT",
        f"/{bucket_name}/k",
        {"Transfer-Encoding": "chunked", "Content-MD5": md5_b64(b"other"), "Connection": "close"},
    )
    async with unchanged(server):
        sock = await server.blocking(connect, server, head)
        answer = await server.blocking(send_and_finish, sock, chunk(b"abc") + chunk(b"def") + b"0\r\n\r\n")
        assert status_of(answer) == 400
        assert b"<Code>BadDigest</Code>" in answer


@pytest_twisted.ensureDeferred
async def test_matching_content_md5_is_accepted(server, bucket_name):
    s3 = server.boto3()

    def put_with_md5():
        s3.create_bucket(Bucket=bucket_name)
        s3.put_object(Bucket=bucket_name, Key="k", Body=b"payload", ContentMD5=md5_b64(b"payload"))
        return s3.get_object(Bucket=bucket_name, Key="k")["Body"].read()

    assert await server.blocking(put_with_md5) == b"payload"


# -- content headers, metadata, HEAD -------------------------------------------------------


CONTENT_HEADERS = {
    "ContentType": "text/x-test; charset=utf-8",
    "ContentEncoding": "x-custom",
    "ContentDisposition": 'attachment; filename="report.txt"',
    "ContentLanguage": "fr-CA",
    "CacheControl": "max-age=60, private",
}
EXPIRES = "Wed, 21 Oct 2037 07:28:00 GMT"


@pytest_twisted.ensureDeferred
async def test_content_headers_and_metadata_are_returned_by_get_and_head(server, bucket_name):
    s3 = server.boto3()

    def put_then_read():
        s3.create_bucket(Bucket=bucket_name)
        s3.put_object(
            Bucket=bucket_name,
            Key="doc",
            Body=b"content",
            Metadata={"Color": "blue", "owner-name": "ana"},
            Expires=EXPIRES,
            **CONTENT_HEADERS,
        )
        got = s3.get_object(Bucket=bucket_name, Key="doc")
        got["Body"].read()
        return got, s3.head_object(Bucket=bucket_name, Key="doc")

    got, head = await server.blocking(put_then_read)
    for answer in (got, head):
        for name, value in CONTENT_HEADERS.items():
            assert answer[name] == value, name
        assert answer["ResponseMetadata"]["HTTPHeaders"]["expires"] == EXPIRES
        assert answer["Metadata"] == {"color": "blue", "owner-name": "ana"}
        assert answer["ContentLength"] == len(b"content")


@pytest_twisted.ensureDeferred
async def test_content_type_defaults_to_binary_octet_stream(server, bucket_name):
    await make_bucket(server, bucket_name)
    await put(server, bucket_name, "k", b"x")
    response, _ = await call(server, "GET", f"/{bucket_name}/k")
    assert header(response, "Content-Type") == "binary/octet-stream"


@pytest_twisted.ensureDeferred
async def test_head_answers_the_headers_of_get_without_a_body(server, bucket_name):
    await make_bucket(server, bucket_name)
    await put(server, bucket_name, "k", b"0123456789", headers={"Content-Type": "text/plain", "x-amz-meta-a": "b"})
    got, got_body = await call(server, "GET", f"/{bucket_name}/k")
    head, head_body = await call(server, "HEAD", f"/{bucket_name}/k")

    def interesting(response):
        return {
            name.decode().lower(): values
            for name, values in response.headers.getAllRawHeaders()
            if name.decode().lower() not in NOT_COMPARED
        }

    assert (got.code, head.code) == (200, 200)
    assert interesting(head) == interesting(got)
    assert (got.length, header(head, "Content-Length")) == (10, "10")
    assert (got_body, head_body) == (b"0123456789", b"")


@pytest_twisted.ensureDeferred
async def test_missing_key_is_no_such_key_on_get_and_404_on_head(server, bucket_name):
    await make_bucket(server, bucket_name)
    response, content = await call(server, "GET", f"/{bucket_name}/nothing-here")
    assert response.code == 404
    assert error_code(content) == "NoSuchKey"
    response, content = await call(server, "HEAD", f"/{bucket_name}/nothing-here")
    assert (response.code, content) == (404, b"")


@pytest_twisted.ensureDeferred
async def test_get_in_a_missing_bucket_is_no_such_bucket(server, bucket_name):
    response, content = await call(server, "GET", f"/{bucket_name}/k")
    assert response.code == 404
    assert error_code(content) == "NoSuchBucket"


@pytest_twisted.ensureDeferred
async def test_put_in_a_missing_bucket_is_no_such_bucket_and_stores_nothing(server, bucket_name):
    await refused(server, "NoSuchBucket", call(server, "PUT", f"/{bucket_name}/k", body=b"data"), 404)


# -- GET options -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_response_parameters_override_the_stored_headers(server, bucket_name):
    s3 = server.boto3()

    def get_with_overrides():
        s3.create_bucket(Bucket=bucket_name)
        s3.put_object(Bucket=bucket_name, Key="k", Body=b"x", ContentType="text/plain", CacheControl="no-cache")
        got = s3.get_object(
            Bucket=bucket_name,
            Key="k",
            ResponseContentType="application/json",
            ResponseContentDisposition='inline; filename="x.json"',
            ResponseCacheControl="max-age=5",
            ResponseExpires="Thu, 01 Jan 2037 00:00:00 GMT",
            ResponseContentLanguage="de",
            ResponseContentEncoding="identity",
        )
        got["Body"].read()
        return got["ResponseMetadata"]["HTTPHeaders"]

    headers = await server.blocking(get_with_overrides)
    assert headers["content-type"] == "application/json"
    assert headers["content-disposition"] == 'inline; filename="x.json"'
    assert headers["cache-control"] == "max-age=5"
    assert headers["expires"] == "Thu, 01 Jan 2037 00:00:00 GMT"
    assert headers["content-language"] == "de"
    assert headers["content-encoding"] == "identity"


@pytest_twisted.ensureDeferred
async def test_get_with_checksum_mode_enabled_returns_the_object(server, bucket_name):
    s3 = server.boto3()

    def get_with_checksum_mode():
        s3.create_bucket(Bucket=bucket_name)
        s3.put_object(Bucket=bucket_name, Key="k", Body=b"checked")
        return s3.get_object(Bucket=bucket_name, Key="k", ChecksumMode="ENABLED")["Body"].read()

    assert await server.blocking(get_with_checksum_mode) == b"checked"


@pytest_twisted.ensureDeferred
async def test_twenty_mib_round_trip_through_boto3(server, bucket_name):
    s3 = server.boto3()
    body = os.urandom(20 * MiB)

    def round_trip():
        s3.create_bucket(Bucket=bucket_name)
        s3.put_object(Bucket=bucket_name, Key="big", Body=body)
        return hashlib.sha256(s3.get_object(Bucket=bucket_name, Key="big")["Body"].read()).hexdigest()

    assert await server.blocking(round_trip) == hashlib.sha256(body).hexdigest()


@pytest_twisted.ensureDeferred
async def test_slow_reader_does_not_make_the_server_read_ahead(server, bucket_name, monkeypatch):
    size = 24 * MiB
    body = os.urandom(size)
    await make_bucket(server, bucket_name)
    await put(server, bucket_name, "big", body)
    produced = [0]
    resume = streaming.BodyProducer.resumeProducing

    def counting_resume(producer):
        resume(producer)
        produced[0] = max(produced[0], producer.offset)

    monkeypatch.setattr(streaming.BodyProducer, "resumeProducing", counting_resume)
    headers = signed_headers("GET", f"{server.url}/{bucket_name}/big")
    head = f"GET /{bucket_name}/big HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"

    def start_reading():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(head.encode())
        return sock, read_until_closed(sock, limit=256 * 1024)[0]

    sock, first = await server.blocking(start_reading)
    try:
        # The client has stopped reading: wait until the server stops producing.
        stable = 0
        last = -1
        for _ in range(200):
            await deferLater(reactor, 0.02, lambda: None)
            stable = stable + 1 if produced[0] == last else 0
            last = produced[0]
            if stable >= 10:
                break
        assert 0 < produced[0] < 12 * MiB, "the server read far ahead of a client that does not read"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MiB)
        rest, _ = await server.blocking(read_until_closed, sock)
    finally:
        sock.close()
    received = (first + rest).split(b"\r\n\r\n", 1)[1]
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()


# -- libcloud --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_libcloud_hash_is_the_md5_and_stream_download_returns_the_bytes(server, bucket_name, tmp_path):
    driver = server.libcloud()
    body = os.urandom(300 * 1024)
    source = tmp_path / "upload.bin"
    source.write_bytes(body)

    def round_trip():
        container = driver.create_container(bucket_name)
        uploaded = driver.upload_object(str(source), container, "dir/file.bin")
        fetched = driver.get_object(bucket_name, "dir/file.bin")
        return uploaded.hash, fetched.hash, fetched.size, b"".join(driver.download_object_as_stream(fetched))

    uploaded_hash, fetched_hash, size, data = await server.blocking(round_trip)
    assert uploaded_hash == fetched_hash == hashlib.md5(body).hexdigest()
    assert size == len(body)
    assert data == body


@pytest_twisted.ensureDeferred
async def test_boto3_missing_key_raises_no_such_key(server, bucket_name):
    s3 = server.boto3()

    def get_missing():
        s3.create_bucket(Bucket=bucket_name)
        with pytest.raises(ClientError) as raised:
            s3.get_object(Bucket=bucket_name, Key="missing")
        return raised.value.response

    response = await server.blocking(get_missing)
    assert response["Error"]["Code"] == "NoSuchKey"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
