"""S3 error documents in memory: their shape, their status, their headers.

AWS's REST error response: an ``application/xml`` document whose root is
an un-namespaced ``Error`` with ``Code`` and ``Message``, then what the code
adds (BucketName, Key, Method and ResourceType, ...), ``Resource`` and
``RequestId`` -- the same id as the ``x-amz-request-id`` header. A HEAD
answer has the status and headers of the GET's but no body.
"""

import re

import pytest
import pytest_twisted
from lxml import etree

from tests.memory import key_path

REQUEST_ID = re.compile(r"[0-9A-F]{16}")


def assert_error_shape(answer, code, resource, status):
    assert answer.status == status, answer.body
    assert answer.header("Content-Type") == "application/xml"
    assert answer.body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = answer.xml()
    assert root.tag == "Error"  # no namespace, unlike the success documents
    names = [child.tag for child in root]
    assert names[:2] == ["Code", "Message"]
    assert names[-3:] == ["Resource", "RequestId", "HostId"]
    assert root.findtext("Code") == code
    assert root.findtext("Message")
    assert root.findtext("Resource") == resource
    request_id = root.findtext("RequestId")
    assert REQUEST_ID.fullmatch(request_id)
    assert answer.header("x-amz-request-id") == request_id
    assert answer.header("x-amz-id-2")
    assert answer.header("Date")
    return root


@pytest_twisted.ensureDeferred
async def test_no_such_bucket(s3):
    answer = await s3.request("GET", "/mem-no-such-bucket/key")
    root = assert_error_shape(answer, "NoSuchBucket", "/mem-no-such-bucket/key", 404)
    assert root.findtext("Message") == "The specified bucket does not exist"
    assert root.findtext("BucketName") == "mem-no-such-bucket"


@pytest_twisted.ensureDeferred
async def test_no_such_bucket_when_listing_it(s3):
    answer = await s3.request("GET", "/mem-no-such-bucket?list-type=2")
    root = assert_error_shape(answer, "NoSuchBucket", "/mem-no-such-bucket", 404)
    assert root.findtext("BucketName") == "mem-no-such-bucket"


@pytest_twisted.ensureDeferred
async def test_no_such_key(s3, bucket):
    answer = await s3.request("GET", f"/{bucket}/no/such/key")
    root = assert_error_shape(answer, "NoSuchKey", f"/{bucket}/no/such/key", 404)
    assert root.findtext("Message") == "The specified key does not exist."
    assert root.findtext("Key") == "no/such/key"


@pytest_twisted.ensureDeferred
async def test_no_such_key_names_the_decoded_key_escaped_as_xml(s3, bucket):
    key = 'a <b> & "c" é'
    answer = await s3.request("GET", key_path(bucket, key))
    root = assert_error_shape(answer, "NoSuchKey", key_path(bucket, key), 404)
    assert root.findtext("Key") == key


@pytest_twisted.ensureDeferred
async def test_an_error_naming_a_key_xml_cannot_carry_is_still_well_formed(s3, bucket):
    answer = await s3.request("GET", f"/{bucket}/ctrl%01char%7F")
    root = assert_error_shape(answer, "NoSuchKey", f"/{bucket}/ctrl%01char%7F", 404)
    assert root.findtext("Key") == "ctrl\ufffdchar\x7f"


@pytest_twisted.ensureDeferred
async def test_missing_bucket_wins_over_missing_key(s3):
    answer = await s3.request("HEAD", "/mem-no-such-bucket/no-such-key")
    assert answer.status == 404
    answer = await s3.request("GET", "/mem-no-such-bucket/no-such-key")
    assert answer.code == "NoSuchBucket"


@pytest.mark.parametrize(
    "method, path, resource_type",
    [("POST", "/{bucket}/key", "OBJECT"), ("PATCH", "/{bucket}/key", "OBJECT"), ("PATCH", "/{bucket}", "BUCKET")],
)
@pytest_twisted.ensureDeferred
async def test_method_not_allowed(s3, bucket, method, path, resource_type):
    path = path.format(bucket=bucket)
    answer = await s3.request(method, path)
    root = assert_error_shape(answer, "MethodNotAllowed", path, 405)
    assert root.findtext("Message") == "The specified method is not allowed against this resource."
    assert root.findtext("Method") == method
    assert root.findtext("ResourceType") == resource_type


@pytest_twisted.ensureDeferred
async def test_anonymous_get_of_a_private_object_is_access_denied(s3, bucket):
    await s3.put_object(bucket, "private", b"secret")
    answer = await s3.request("GET", f"/{bucket}/private", keys=None)
    root = assert_error_shape(answer, "AccessDenied", f"/{bucket}/private", 403)
    assert root.findtext("Message") == "Access Denied"
    assert b"secret" not in answer.body


@pytest_twisted.ensureDeferred
async def test_anonymous_listing_of_a_private_bucket_is_access_denied(s3, bucket):
    answer = await s3.request("GET", f"/{bucket}", keys=None)
    assert_error_shape(answer, "AccessDenied", f"/{bucket}", 403)


@pytest_twisted.ensureDeferred
async def test_anonymous_get_of_a_public_read_object_is_served(s3, bucket):
    await s3.put_object(bucket, "public", b"hello", headers={"x-amz-acl": "public-read"})
    await s3.put_object(bucket, "private", b"secret")
    answer = await s3.request("GET", f"/{bucket}/public", keys=None)
    assert (answer.status, answer.body) == (200, b"hello")
    # The object's ACL, not the bucket's, decides: its neighbour stays private.
    answer = await s3.request("GET", f"/{bucket}/private", keys=None)
    assert answer.status == 403


@pytest_twisted.ensureDeferred
async def test_a_missing_key_is_access_denied_to_a_caller_who_may_not_list_the_bucket(s3, bucket):
    """As AWS (GetObject, "Permissions"): without list rights, NoSuchKey would tell outsiders which keys exist."""
    answer = await s3.request("GET", f"/{bucket}/nothing-here", keys=None)
    assert_error_shape(answer, "AccessDenied", f"/{bucket}/nothing-here", 403)
    head = await s3.request("HEAD", f"/{bucket}/nothing-here", keys=None)
    assert (head.status, head.body) == (403, b"")
    # The bucket's owner, who may list it, is told the key is missing.
    assert (await s3.request("GET", f"/{bucket}/nothing-here")).code == "NoSuchKey"


@pytest_twisted.ensureDeferred
async def test_another_users_private_object_is_access_denied(s3, bucket):
    await s3.put_object(bucket, "private", b"secret")
    keys = s3.create_user("mem-errors-someone")
    answer = await s3.request("GET", f"/{bucket}/private", keys=keys)
    assert_error_shape(answer, "AccessDenied", f"/{bucket}/private", 403)


@pytest_twisted.ensureDeferred
async def test_unknown_access_key_is_invalid_access_key_id(s3, bucket):
    answer = await s3.request("GET", f"/{bucket}/key", keys=("AKIDNOSUCHKEY0000000", "whatever"))
    root = assert_error_shape(answer, "InvalidAccessKeyId", f"/{bucket}/key", 403)
    assert root.findtext("AWSAccessKeyId") == "AKIDNOSUCHKEY0000000"


@pytest_twisted.ensureDeferred
async def test_wrong_secret_is_signature_does_not_match_with_what_was_signed(s3, bucket):
    access_key = s3.config.admin_keys[0]
    answer = await s3.request("GET", f"/{bucket}/key", keys=(access_key, "not-the-secret"))
    root = assert_error_shape(answer, "SignatureDoesNotMatch", f"/{bucket}/key", 403)
    assert root.findtext("AWSAccessKeyId") == access_key
    assert root.findtext("StringToSign").startswith("AWS4-HMAC-SHA256\n")
    assert root.findtext("CanonicalRequest").startswith(f"GET\n/{bucket}/key\n")


@pytest_twisted.ensureDeferred
async def test_invalid_bucket_name(s3):
    answer = await s3.request("PUT", "/Not_A_Bucket")
    root = assert_error_shape(answer, "InvalidBucketName", "/Not_A_Bucket", 400)
    assert root.findtext("BucketName") == "Not_A_Bucket"


@pytest_twisted.ensureDeferred
async def test_key_too_long(s3, bucket):
    key = "k" * 1025
    answer = await s3.request("PUT", f"/{bucket}/{key}", body=b"x")
    root = assert_error_shape(answer, "KeyTooLongError", f"/{bucket}/{key}", 400)
    assert (root.findtext("Size"), root.findtext("MaxSizeAllowed")) == ("1025", "1024")


@pytest_twisted.ensureDeferred
async def test_a_1024_byte_key_is_not_too_long(s3, bucket):
    key = "é" * 512  # 1024 bytes of UTF-8: S3's limit counts bytes
    await s3.put_object(bucket, key, b"x")
    answer = await s3.request("PUT", key_path(bucket, key + "e"), body=b"x")
    assert (answer.status, answer.code) == (400, "KeyTooLongError")


@pytest_twisted.ensureDeferred
async def test_every_answer_has_its_own_request_id(s3, bucket):
    ids = set()
    for _ in range(3):
        for path in (f"/{bucket}/absent", f"/{bucket}"):
            answer = await s3.request("GET", path)
            ids.add(answer.header("x-amz-request-id"))
    assert len(ids) == 6


# -- HEAD: the GET's status and headers, no body --------------------------------------------


@pytest.mark.parametrize(
    "path, keys, status",
    [
        ("/{bucket}/absent", "admin", 404),
        ("/mem-no-such-bucket/key", "admin", 404),
        ("/mem-no-such-bucket", "admin", 404),
        ("/{bucket}/private", None, 403),
        ("/{bucket}", None, 403),
        ("/{bucket}/key", ("AKIDNOSUCHKEY0000000", "whatever"), 403),
    ],
    ids=["no-such-key", "no-such-bucket", "head-bucket", "anonymous-object", "anonymous-bucket", "unknown-key"],
)
@pytest_twisted.ensureDeferred
async def test_head_errors_have_the_status_and_headers_but_no_body(s3, bucket, path, keys, status):
    await s3.put_object(bucket, "private", b"secret")
    path = path.format(bucket=bucket)
    signing = {} if keys == "admin" else {"keys": keys}
    answer = await s3.raw("HEAD", path, **signing)
    assert answer.status == status
    assert answer.body == b""
    assert REQUEST_ID.fullmatch(answer.header("x-amz-request-id"))
    assert answer.header("content-type") == "application/xml"
    get = await s3.raw("GET", path, **signing)
    assert get.status == status
    # HEAD's Content-Length is the one the GET's document has (RFC 9110 §9.3.2).
    assert answer.header("content-length") == get.header("content-length") == str(len(get.body))


@pytest_twisted.ensureDeferred
async def test_refused_upload_is_answered_before_its_body_and_the_connection_closed(s3):
    answer = await s3.raw("PUT", "/mem-no-such-bucket/key", headers={"Expect": "100-continue"}, body=b"x" * 1000)
    assert answer.status == 404  # no "100 Continue" before it
    assert answer.header("connection") == "close"
    assert etree.fromstring(answer.body).findtext("Code") == "NoSuchBucket"


@pytest_twisted.ensureDeferred
async def test_error_document_carries_the_host_id(s3, bucket):
    answer = await s3.request("GET", f"/{bucket}/absent")
    assert answer.xml().findtext("HostId") == answer.header("x-amz-id-2")
