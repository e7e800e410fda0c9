"""Bucket names and object keys: what S3's rules let through and what they refuse."""

import pytest

from objectstore.errors import InvalidArgument, InvalidBucketName, KeyTooLongError
from objectstore.storage.names import MAX_KEY_BYTES, bucket_name_problem, check_bucket_name, check_key, decode_key

VALID_BUCKETS = [
    "abc",
    "a" * 63,
    "my-bucket",
    "my.bucket",
    "a1.b2-c3",
    "0bucket",
    "bucket9",
    "192.168.5.4x",
    "1.2.3",
    "xn-a",
    "sthree",
    "s3alias",
    "images",
]

INVALID_BUCKETS = {
    "..": "traversal",
    "_images": "underscore, the image registry's mount",
    "tmp": "the store's spool folder",
    "A": "capital, too short",
    "ab": "too short",
    "a" * 64: "too long",
    "192.168.5.4": "an IP address",
    "a..b": "adjacent dots",
    "xn--a": "reserved prefix (punycode)",
    "-ab": "starts with a hyphen",
    "ab-": "ends with a hyphen",
    "ab.": "ends with a dot",
    ".ab": "starts with a dot",
    "a.-b": "dot next to hyphen",
    "a-.b": "hyphen next to dot",
    "Bucket": "capital",
    "a_b": "underscore",
    "a b": "space",
    "a/b": "slash",
    "": "empty",
    "sthree-x": "reserved prefix",
    "amzn-s3-demo-x": "reserved prefix",
    "x-s3alias": "reserved suffix",
    "x--ol-s3": "reserved suffix",
    "x.mrap": "reserved suffix",
    "x--x-s3": "reserved suffix",
    "x--table-s3": "reserved suffix",
    "bücket": "not ASCII",
    "abc\n": "trailing newline ($ in a regex would let it through)",
}


@pytest.mark.parametrize("name", VALID_BUCKETS)
def test_valid_bucket_names_pass(name):
    assert check_bucket_name(name) == name


@pytest.mark.parametrize("name", sorted(INVALID_BUCKETS))
def test_invalid_bucket_names_are_refused(name):
    with pytest.raises(InvalidBucketName) as caught:
        check_bucket_name(name)
    assert caught.value.details == {"BucketName": name}
    assert caught.value.status == 400
    assert caught.value.message.startswith("The specified bucket is not valid: ")


REASONS = {
    "ab": "3 to 63 characters long, and this one is 2",
    "a" * 64: "3 to 63 characters long, and this one is 64",
    "Bucket": "only lowercase letters, digits, dots (.) and hyphens (-)",
    "a_b": "only lowercase letters",
    "-ab": "begin and end with a lowercase letter or a digit",
    "ab.": "begin and end with a lowercase letter or a digit",
    "a..b": "must not contain '..'",
    "a.-b": "must not contain '.-'",
    "a-.b": "must not contain '-.'",
    "192.168.5.4": "formatted as an IP address",
    "xn--a": "beginning with 'xn--' are reserved",
    "x--ol-s3": "ending with '--ol-s3' are reserved",
    "tmp": "reserved for the server's own use",
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_invalid_bucket_name_says_which_rule_it_breaks(name):
    with pytest.raises(InvalidBucketName) as caught:
        check_bucket_name(name)
    assert REASONS[name] in caught.value.message


def test_every_invalid_name_gets_a_reason():
    assert all(bucket_name_problem(name) for name in INVALID_BUCKETS)
    assert not any(bucket_name_problem(name) for name in VALID_BUCKETS)


def test_key_of_exactly_1024_utf8_bytes_passes():
    key = "é" * (MAX_KEY_BYTES // 2)
    assert check_key(key) == key


def test_key_over_1024_utf8_bytes_is_too_long_even_under_1024_characters():
    key = "é" * 513  # 513 characters, 1026 bytes
    with pytest.raises(KeyTooLongError) as caught:
        check_key(key)
    assert caught.value.details == {"Size": 1026, "MaxSizeAllowed": MAX_KEY_BYTES}


def test_key_with_nul_is_refused():
    with pytest.raises(InvalidArgument):
        check_key("a\x00b")


@pytest.mark.parametrize("key", ["../../etc/passwd", "a//b", "/", "\x01", "a\rb", " ", "%2F"])
def test_odd_keys_are_accepted_as_they_are(key):
    # Keys never become paths, so none of these is dangerous.
    assert check_key(key) == key


def test_decode_key_takes_utf8():
    assert decode_key("ключ/é".encode()) == "ключ/é"


def test_decode_key_refuses_invalid_utf8():
    with pytest.raises(InvalidArgument):
        decode_key(b"\xff\xfe")
