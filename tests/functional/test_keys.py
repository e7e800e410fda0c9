"""Object keys: any UTF-8 up to 1024 bytes, never a path on disk.

Every key below is either refused with a clear error or stored and given back
byte-identical under the same key, and nothing appears on disk but blobs
named by random ids inside the data folder (docs/threat-model.md row 11).
"""

import os
import re
import socket

import pytest
import pytest_twisted
from lxml import etree

from objectstore.xmlio import S3_NS
from tests.helpers import make_bucket, refused, unchanged
from tests.s3http import UNSIGNED, call, error_code, signed_headers

HOSTILE_KEYS = [
    "a/../b",
    "../x",
    "../../../../../../../../tmp/objectstore-escape",
    "..",
    ".",
    "./x",
    "//",
    "dir/",
    "/abs",
    "a b",
    "a+b",
    "100%",
    "%",
    "%2e%2e/evil",
    "..%2fevil",
    "a\\..\\evil",
    "C:\\evil",
    "ünïcødé/☃/😀",
    "a?b=c&d#e",
    "<&'\">]]>",
    "~user/.ssh/authorized_keys",
    " leading and trailing ",
    "tab\tand\nnewline",
]
# Everything the store may create inside its data folder.
STORE_PATHS = re.compile(
    r"^(blobs(/[0-9a-f]{2}(/[0-9a-f]{32})?)?|tmp(/[0-9a-f]{32})?|meta\.sqlite(-wal|-shm|-journal)?|lock)$"
)


def every_path(root):
    found = set()
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def unexpected_files(server, tmp_path, before):
    """Paths created outside the data folder, or inside it but not by the store's naming."""
    data = os.path.relpath(server.data_dir, tmp_path)
    strays = []
    for path in every_path(tmp_path) - before:
        if not (path == data or path.startswith(data + os.sep)):
            strays.append(path)
            continue
        inside = os.path.relpath(os.path.join(tmp_path, path), server.data_dir)
        if inside != "." and not STORE_PATHS.match(inside):
            strays.append(path)
    return strays


def raw_request(server, method, raw_path, body=b""):
    """Send a signed request with *raw_path* exactly as given (blocking); the answer's bytes."""
    signed = signed_headers(
        method, server.url + raw_path, headers={"Content-Length": str(len(body))}, payload_hash=UNSIGNED
    )
    lines = [f"{method} {raw_path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in signed.items()]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_and_body(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# -- hostile keys -------------------------------------------------------------------------


@pytest.mark.parametrize("key", HOSTILE_KEYS)
@pytest_twisted.ensureDeferred
async def test_hostile_key_round_trips_and_stays_inside_the_store(server, bucket_name, tmp_path, key):
    await make_bucket(server, bucket_name)
    before = every_path(tmp_path)
    escape_target = "/tmp/objectstore-escape"
    s3 = server.boto3()
    body = b"body of " + key.encode()

    def round_trip():
        s3.put_object(Bucket=bucket_name, Key=key, Body=body)
        got = s3.get_object(Bucket=bucket_name, Key=key)["Body"].read()
        head = s3.head_object(Bucket=bucket_name, Key=key)["ContentLength"]
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket_name)["Contents"]]
        return got, head, listed

    got, length, listed = await server.blocking(round_trip)
    assert got == body
    assert length == len(body)
    assert listed == [key]
    assert unexpected_files(server, tmp_path, before) == []
    assert not os.path.lexists(escape_target)
    assert not os.path.lexists("/abs")


@pytest_twisted.ensureDeferred
async def test_plain_listing_returns_keys_byte_identical(server, bucket_name):
    # Keys XML 1.0 can carry; the rest need encoding-type=url, which boto3 always asks for.
    keys = [k for k in HOSTILE_KEYS if "\t" not in k]
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(lambda: [s3.put_object(Bucket=bucket_name, Key=k, Body=b"") for k in keys])
    response, content = await call(server, "GET", f"/{bucket_name}")
    assert response.code == 200
    listed = [e.text for e in etree.fromstring(content).iterfind(f"{{{S3_NS}}}Contents/{{{S3_NS}}}Key")]
    assert sorted(listed) == sorted(keys)


@pytest_twisted.ensureDeferred
async def test_keys_are_neither_case_folded_nor_unicode_normalized(server, bucket_name):
    keys = ["Key", "key", "KEY", "\u00e9", "e\u0301", "\ufb01", "fi"]
    await make_bucket(server, bucket_name)
    s3 = server.boto3()

    def put_then_read_all():
        for key in keys:
            s3.put_object(Bucket=bucket_name, Key=key, Body=key.encode("utf-8"))
        return {k: s3.get_object(Bucket=bucket_name, Key=k)["Body"].read() for k in keys}

    assert await server.blocking(put_then_read_all) == {k: k.encode("utf-8") for k in keys}


# -- key length ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k" * 1024, "é" * 512, "😀" * 256], ids=["ascii", "two-byte", "four-byte"])
@pytest_twisted.ensureDeferred
async def test_key_of_1024_bytes_is_stored(server, bucket_name, key):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()

    def round_trip():
        s3.put_object(Bucket=bucket_name, Key=key, Body=b"long")
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket_name)["Contents"]]
        return s3.get_object(Bucket=bucket_name, Key=key)["Body"].read(), listed

    assert await server.blocking(round_trip) == (b"long", [key])


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 512 + "k", "😀" * 257], ids=["ascii", "two-byte", "four-byte"])
@pytest_twisted.ensureDeferred
async def test_key_over_1024_bytes_is_key_too_long(server, bucket_name, key):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await refused(server, "KeyTooLongError", lambda: s3.put_object(Bucket=bucket_name, Key=key, Body=b"x" * 1000), 400)


@pytest_twisted.ensureDeferred
async def test_get_of_a_key_over_1024_bytes_is_key_too_long(server, bucket_name):
    await make_bucket(server, bucket_name)
    response, content = await call(server, "GET", f"/{bucket_name}/{'k' * 1025}")
    assert response.code == 400
    assert error_code(content) == "KeyTooLongError"


# -- keys that are not UTF-8 text -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_key",
    ["a%00b", "%00", "%FF", "a%C3", "%C0%AE%C0%AE/evil", "%ED%A0%80"],
    ids=["nul", "only-nul", "invalid-byte", "truncated", "overlong-dots", "surrogate"],
)
@pytest_twisted.ensureDeferred
async def test_key_that_is_not_utf8_text_is_invalid_argument(server, bucket_name, tmp_path, raw_key):
    await make_bucket(server, bucket_name)
    paths = every_path(tmp_path)
    async with unchanged(server):
        for method, body in (("PUT", b"data"), ("GET", b""), ("HEAD", b""), ("DELETE", b"")):
            answer = await server.blocking(raw_request, server, method, f"/{bucket_name}/{raw_key}", body)
            status, document = status_and_body(answer)
            assert status == 400, method
            if method != "HEAD":
                assert error_code(document) == "InvalidArgument", method
    assert unexpected_files(server, tmp_path, paths) == []
