"""GET answers small enough to be written at once, without a producer (ObjectResource._read).

They must be the same bytes a streamed answer would be, ranges and
empty-object edge included, and a blob found shorter than its record must
cut the connection before any header, as the streamed path does.
"""

import hashlib
import os

import pytest
import pytest_twisted

from tests.s3http import call, header, raw, signed_headers

SMALL = os.urandom(5000)
# Over the inline limit (so in a blob file) and over the at-once limit.
LARGE = os.urandom(70 * 1024)


async def upload(server, bucket, key, body):
    response, _ = await call(server, "PUT", f"/{bucket}")
    assert response.code in (200, 409)
    response, _ = await call(server, "PUT", f"/{bucket}/{key}", body=body)
    assert response.code == 200


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    ("body", "range_header", "expected"),
    [
        (SMALL, None, SMALL),
        (SMALL, "bytes=100-199", SMALL[100:200]),
        (SMALL, "bytes=-1", SMALL[-1:]),
        (LARGE, None, LARGE),
        (LARGE, "bytes=1000-9999", LARGE[1000:10000]),
        (LARGE, "bytes=65536-", LARGE[65536:]),
    ],
    ids=["small", "small-range", "small-suffix", "large", "large-small-range", "large-tail"],
)
async def test_a_get_answers_exactly_the_bytes_asked_for(server, bucket_name, body, range_header, expected):
    await upload(server, bucket_name, "k", body)
    headers = {"Range": range_header} if range_header else {}

    response, content = await call(server, "GET", f"/{bucket_name}/k", headers=headers)

    assert response.code == (206 if range_header else 200)
    assert content == expected
    assert response.length == len(expected)  # the declared Content-Length
    assert header(response, "ETag") == f'"{hashlib.md5(body).hexdigest()}"'


async def truncated_blob_object(server, bucket, key):
    await upload(server, bucket, key, LARGE)
    await server.settled()
    (path,) = server.blob_files()
    with open(path, "r+b") as f:
        f.truncate(10)


def signed_get(server, path, range_header):
    headers = signed_headers("GET", server.url + path, headers={"Range": range_header})
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("range_header", ["bytes=100-199", "bytes=0-"])
async def test_a_blob_shorter_than_its_record_cuts_the_connection_before_any_header(server, bucket_name, range_header):
    # A small range (answered at once) and the whole object (streamed) alike.
    await truncated_blob_object(server, bucket_name, "k")

    answer = await raw(server.port, signed_get(server, f"/{bucket_name}/k", range_header))

    assert answer == b""
