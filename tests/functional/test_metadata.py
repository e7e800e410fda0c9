"""User metadata not printable US-ASCII: RFC 2047 encoded-words out, decoded in, as AWS does."""

from email.header import decode_header

import pytest
import pytest_twisted

from tests.helpers import make_bucket
from tests.s3http import call, header


def put_with_raw_meta(s3, bucket, key, value):
    """A PutObject whose x-amz-meta-meta1 botocore sends as given (as s3-tests sets it, UTF-8 on the wire)."""
    s3.meta.events.register(
        "before-call.s3.PutObject", lambda params, **_: params["headers"].update({"x-amz-meta-meta1": value})
    )
    s3.put_object(Bucket=bucket, Key=key, Body=b"bar")


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "value, answered",
    [
        ("\x04mymeta", "=?UTF-8?Q?=04mymeta?="),  # s3-tests test_object_set_get_non_utf8_metadata
        ("\x04w", "=?UTF-8?Q?=04w?="),
        ("mymeta", "mymeta"),
        ("a=?b and tabs\tstay", "a=?b and tabs\tstay"),
    ],
    ids=["control-prefix", "control-short", "ascii", "ascii-odd"],
)
async def test_a_value_that_is_not_printable_ascii_is_answered_as_an_encoded_word(server, bucket_name, value, answered):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"bar", Metadata={"meta1": value})
    got = await server.blocking(s3.get_object, Bucket=bucket_name, Key="k")
    head = await server.blocking(s3.head_object, Bucket=bucket_name, Key="k")
    assert got["Metadata"]["meta1"] == head["Metadata"]["meta1"] == answered
    ((decoded, charset),) = decode_header(answered)
    assert (decoded if charset is None else decoded.decode(charset)) == value


@pytest_twisted.ensureDeferred
async def test_unicode_sent_raw_comes_back_as_an_encoded_word_of_its_utf8(server, bucket_name):
    # s3-tests test_object_set_get_unicode_metadata: botocore sends the value's UTF-8 bytes.
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(put_with_raw_meta, s3, bucket_name, "k", "Hello World\xe9")
    got = await server.blocking(s3.get_object, Bucket=bucket_name, Key="k")
    assert got["Metadata"]["meta1"] == "=?UTF-8?Q?Hello_World=C3=A9?="
    assert decode_header(got["Metadata"]["meta1"]) == [("Hello World\xe9".encode(), "utf-8")]


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "sent, answered",
    [
        ("=?UTF-8?B?w6k=?=", "=?UTF-8?Q?=C3=A9?="),
        ("=?UTF-8?Q?caf=C3=A9?=", "=?UTF-8?Q?caf=C3=A9?="),
        ("=?UTF-8?B?aGVsbG8=?=", "hello"),  # decoded to US-ASCII: answered plain
        ("=?nonsense?B?aGVsbG8=?=", "=?nonsense?B?aGVsbG8=?="),  # not decodable: kept as sent
    ],
)
async def test_encoded_words_sent_are_decoded_before_they_are_stored(server, bucket_name, sent, answered):
    await make_bucket(server, bucket_name)
    await call(server, "PUT", f"/{bucket_name}/k", headers={"x-amz-meta-meta1": sent}, body=b"bar")
    response, _ = await call(server, "HEAD", f"/{bucket_name}/k")
    assert header(response, "x-amz-meta-meta1") == answered


@pytest_twisted.ensureDeferred
async def test_bytes_that_are_not_utf8_are_read_as_latin1(server, bucket_name):
    await make_bucket(server, bucket_name, headers={"x-amz-acl": "public-read-write"})
    # Anonymous, so that the byte goes out as it is (a signer would encode it).
    response, content = await call(server, "PUT", f"/{bucket_name}/k", None, {b"x-amz-meta-meta1": b"caf\xe9"})
    assert response.code == 200, content
    response, _ = await call(server, "HEAD", f"/{bucket_name}/k")
    assert header(response, "x-amz-meta-meta1") == "=?UTF-8?Q?caf=C3=A9?="
