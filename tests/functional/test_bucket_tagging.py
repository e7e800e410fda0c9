"""Bucket tag sets through boto3: Put, Get and DeleteBucketTagging, and S3's refusals, which change nothing."""

import pytest
import pytest_twisted

from tests.helpers import client_error, make_bucket, unchanged
from tests.s3http import call, error_code


def tag_set(*pairs):
    return {"TagSet": [{"Key": key, "Value": value} for key, value in pairs]}


@pytest_twisted.ensureDeferred
async def test_a_tag_set_is_put_read_back_in_order_and_deleted(server):
    await make_bucket(server, "tags")
    s3 = server.boto3()
    assert await server.blocking(client_error, s3.get_bucket_tagging, Bucket="tags") == ("NoSuchTagSet", 404)
    put = await server.blocking(s3.put_bucket_tagging, Bucket="tags", Tagging=tag_set(("Hello", "World"), ("a", "")))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = await server.blocking(s3.get_bucket_tagging, Bucket="tags")
    assert got["TagSet"] == [{"Key": "Hello", "Value": "World"}, {"Key": "a", "Value": ""}]
    await server.blocking(s3.put_bucket_tagging, Bucket="tags", Tagging=tag_set(("replaced", "1")))
    assert (await server.blocking(s3.get_bucket_tagging, Bucket="tags"))["TagSet"] == [
        {"Key": "replaced", "Value": "1"}
    ]
    deleted = await server.blocking(s3.delete_bucket_tagging, Bucket="tags")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert await server.blocking(client_error, s3.get_bucket_tagging, Bucket="tags") == ("NoSuchTagSet", 404)


@pytest.mark.parametrize(
    "pairs",
    [
        [(f"k{n}", "v") for n in range(51)],  # more than 50
        [("k" * 129, "v")],
        [("k", "v" * 257)],
        [("dup", "1"), ("dup", "2")],
        [("aws:reserved", "v")],
    ],
    ids=["51-tags", "long-key", "long-value", "duplicate-key", "aws-prefix"],
)
@pytest_twisted.ensureDeferred
async def test_a_tag_set_s3_refuses_is_invalid_tag_and_changes_nothing(server, pairs):
    await make_bucket(server, "tags")
    s3 = server.boto3()
    await server.blocking(s3.put_bucket_tagging, Bucket="tags", Tagging=tag_set(("kept", "yes")))
    async with unchanged(server):
        assert await server.blocking(client_error, s3.put_bucket_tagging, Bucket="tags", Tagging=tag_set(*pairs)) == (
            "InvalidTag",
            400,
        )
    assert (await server.blocking(s3.get_bucket_tagging, Bucket="tags"))["TagSet"] == [{"Key": "kept", "Value": "yes"}]


@pytest_twisted.ensureDeferred
async def test_only_the_owner_tags_a_bucket_and_a_malformed_document_is_refused(server):
    await make_bucket(server, "tags")
    other = server.create_user("other")
    async with unchanged(server):
        stranger = server.boto3(other)
        assert await server.blocking(
            client_error, stranger.put_bucket_tagging, Bucket="tags", Tagging=tag_set(("a", "b"))
        ) == ("AccessDenied", 403)
        assert await server.blocking(client_error, stranger.get_bucket_tagging, Bucket="tags") == ("AccessDenied", 403)
        assert await server.blocking(client_error, stranger.delete_bucket_tagging, Bucket="tags") == (
            "AccessDenied",
            403,
        )
        response, content = await call(server, "PUT", "/tags?tagging", body=b"<Tagging><Nope/></Tagging>")
        assert (response.code, error_code(content)) == (400, "MalformedXML")
        # An empty key (boto3 refuses to send one itself).
        empty_key = b"<Tagging><TagSet><Tag><Key></Key><Value>v</Value></Tag></TagSet></Tagging>"
        response, content = await call(server, "PUT", "/tags?tagging", body=empty_key)
        assert (response.code, error_code(content)) == (400, "InvalidTag")


@pytest_twisted.ensureDeferred
async def test_a_deleted_bucket_takes_its_tags_with_it(server):
    await make_bucket(server, "tags")
    s3 = server.boto3()
    await server.blocking(s3.put_bucket_tagging, Bucket="tags", Tagging=tag_set(("a", "b")))
    await server.blocking(s3.delete_bucket, Bucket="tags")
    await make_bucket(server, "tags")
    assert await server.blocking(client_error, s3.get_bucket_tagging, Bucket="tags") == ("NoSuchTagSet", 404)
