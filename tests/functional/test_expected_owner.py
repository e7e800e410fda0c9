"""x-amz-expected-bucket-owner: a request naming another account as the bucket's owner is refused, as on AWS."""

import pytest
import pytest_twisted
from botocore import UNSIGNED

from tests.helpers import make_bucket, refused

OTHER_ACCOUNT = "111122223333"


async def admin_id(server):
    """The canonical user id ListBuckets reports as the Owner: the id the header must name."""
    return (await server.blocking(server.boto3().list_buckets))["Owner"]["ID"]


@pytest_twisted.ensureDeferred
async def test_the_owner_listbuckets_reports_passes_every_operation(server, bucket_name):
    await make_bucket(server, bucket_name)
    owner = await admin_id(server)
    s3 = server.boto3()

    def operations():
        s3.head_bucket(Bucket=bucket_name, ExpectedBucketOwner=owner)
        s3.put_object(Bucket=bucket_name, Key="k", Body=b"bar", ExpectedBucketOwner=owner)
        body = s3.get_object(Bucket=bucket_name, Key="k", ExpectedBucketOwner=owner)["Body"].read()
        listed = s3.list_objects_v2(Bucket=bucket_name, ExpectedBucketOwner=owner)["KeyCount"]
        s3.copy_object(
            Bucket=bucket_name,
            Key="copy",
            CopySource={"Bucket": bucket_name, "Key": "k"},
            ExpectedBucketOwner=owner,
            ExpectedSourceBucketOwner=owner,
        )
        s3.delete_object(Bucket=bucket_name, Key="k", ExpectedBucketOwner=owner)
        return body, listed

    assert await server.blocking(operations) == (b"bar", 1)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("who", ["account-id", "another-user"])
async def test_another_owner_named_is_access_denied_and_changes_nothing(server, bucket_name, who):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"bar")
    if who == "account-id":
        other = OTHER_ACCOUNT
    else:
        server.create_user("bob")
        other = server.user_id("bob")
    expected = {"Bucket": bucket_name, "ExpectedBucketOwner": other}
    await refused(server, "AccessDenied", lambda: s3.put_object(Key="k", Body=b"new", **expected), 403)
    await refused(server, "AccessDenied", lambda: s3.delete_object(Key="k", **expected), 403)
    await refused(server, "AccessDenied", lambda: s3.get_object(Key="k", **expected), 403)
    await refused(server, "AccessDenied", lambda: s3.list_objects_v2(**expected), 403)
    await refused(server, "AccessDenied", lambda: s3.get_bucket_acl(**expected), 403)
    await refused(server, "403", lambda: s3.head_bucket(**expected), 403)  # a HEAD answer has no body
    await refused(server, "AccessDenied", lambda: s3.delete_bucket(**expected), 403)


@pytest_twisted.ensureDeferred
async def test_a_copy_whose_source_names_another_owner_is_access_denied(server, bucket_name):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"bar")
    source = {"Bucket": bucket_name, "Key": "k"}
    copy = lambda: s3.copy_object(  # noqa: E731
        Bucket=bucket_name, Key="copy", CopySource=source, ExpectedSourceBucketOwner=OTHER_ACCOUNT
    )
    await refused(server, "AccessDenied", copy, 403)


@pytest_twisted.ensureDeferred
async def test_a_missing_bucket_is_still_no_such_bucket(server, bucket_name):
    s3 = server.boto3()
    get = lambda: s3.list_objects_v2(Bucket=bucket_name, ExpectedBucketOwner=OTHER_ACCOUNT)  # noqa: E731
    await refused(server, "NoSuchBucket", get, 404)


@pytest_twisted.ensureDeferred
async def test_anonymous_on_a_public_bucket_naming_the_wrong_owner_is_access_denied(server, bucket_name):
    # s3-tests test_expected_bucket_owner: the bucket's ACL would let the anonymous caller in.
    await make_bucket(server, bucket_name, headers={"x-amz-acl": "public-read-write"})
    wrong = await admin_id(server) + "foo"
    anonymous = server.boto3(signature_version=UNSIGNED)
    listing = lambda: anonymous.list_objects(Bucket=bucket_name, ExpectedBucketOwner=wrong)  # noqa: E731
    await refused(server, "AccessDenied", listing, 403)
    put = lambda: anonymous.put_object(Bucket=bucket_name, Key="bar", Body=b"coffee", ExpectedBucketOwner=wrong)  # noqa: E731
    await refused(server, "AccessDenied", put, 403)
    await server.blocking(anonymous.put_object, Bucket=bucket_name, Key="bar", Body=b"coffee")  # without: allowed
