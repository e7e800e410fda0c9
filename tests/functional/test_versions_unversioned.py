"""Object versions on buckets that were never versioned: every object is its own ``null`` version.

This is how SDKs and harnesses (the ceph/s3-tests suite's own teardown
among them) empty a bucket whatever its versioning: list the versions,
delete them by id, delete the bucket.
"""

import botocore.exceptions
import pytest
import pytest_twisted

from tests.helpers import client_error, make_bucket, unchanged
from tests.s3http import call, error_code


async def fill(server, bucket, keys):
    s3 = server.boto3()
    await make_bucket(server, bucket)
    for key in keys:
        await server.blocking(s3.put_object, Bucket=bucket, Key=key, Body=key.encode() * 3)
    return s3


@pytest_twisted.ensureDeferred
async def test_every_object_is_listed_as_its_null_version_latest(server):
    s3 = await fill(server, "plain", ["a", "b/c", "b/d", "e f"])
    answer = await server.blocking(s3.list_object_versions, Bucket="plain")
    assert [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in answer["Versions"]] == [
        ("a", "null", True, 3),
        ("b/c", "null", True, 9),
        ("b/d", "null", True, 9),
        ("e f", "null", True, 9),
    ]
    head = await server.blocking(s3.head_object, Bucket="plain", Key="b/c")
    assert answer["Versions"][1]["ETag"] == head["ETag"]
    assert answer["Versions"][1]["Owner"]["ID"] == server.user_id("admin")
    assert answer["IsTruncated"] is False and "DeleteMarkers" not in answer
    grouped = await server.blocking(s3.list_object_versions, Bucket="plain", Prefix="b", Delimiter="/")
    assert grouped["CommonPrefixes"] == [{"Prefix": "b/"}] and "Versions" not in grouped
    encoded = await server.blocking(s3.list_object_versions, Bucket="plain", EncodingType="url", Prefix="e")
    # Asked for by the caller, the encoding is left to it (botocore decodes only what it asked for itself).
    assert [v["Key"] for v in encoded["Versions"]] == ["e%20f"] and encoded["EncodingType"] == "url"


@pytest_twisted.ensureDeferred
async def test_pages_of_versions_follow_the_key_and_version_markers_and_the_paginator(server):
    keys = [f"k{n:02d}" for n in range(7)]
    s3 = await fill(server, "pages", keys)
    seen, kwargs = [], {"Bucket": "pages", "MaxKeys": 3}
    while True:
        page = await server.blocking(s3.list_object_versions, **kwargs)
        seen += [v["Key"] for v in page.get("Versions", [])]
        if not page["IsTruncated"]:
            break
        assert page["NextVersionIdMarker"] == "null"
        kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    assert seen == keys

    def paginate():
        pages = s3.get_paginator("list_object_versions").paginate(Bucket="pages", PaginationConfig={"PageSize": 2})
        return [v["Key"] for page in pages for v in page.get("Versions", [])]

    assert await server.blocking(paginate) == keys


@pytest_twisted.ensureDeferred
async def test_a_bucket_is_emptied_by_deleting_its_listed_versions_as_a_harness_does(server):
    s3 = await fill(server, "nuke", ["x", "y/z", "w"])
    listing = await server.blocking(s3.list_object_versions, Bucket="nuke", MaxKeys=128)
    objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in listing["Versions"]]
    deleted = await server.blocking(
        s3.delete_objects, Bucket="nuke", Delete={"Objects": objects}, BypassGovernanceRetention=True
    )
    assert sorted((d["Key"], d["VersionId"]) for d in deleted["Deleted"]) == [
        ("w", "null"),
        ("x", "null"),
        ("y/z", "null"),
    ]
    assert "Errors" not in deleted
    await server.blocking(s3.delete_bucket, Bucket="nuke")
    assert "nuke" not in [b["Name"] for b in (await server.blocking(s3.list_buckets))["Buckets"]]


@pytest_twisted.ensureDeferred
async def test_the_null_version_is_the_object_and_other_ids_name_nothing(server):
    s3 = await fill(server, "ids", ["k"])
    got = await server.blocking(s3.get_object, Bucket="ids", Key="k", VersionId="null")
    assert got["Body"].read() == b"kkk"
    async with unchanged(server):
        for method in ("GET", "HEAD", "DELETE"):
            response, content = await call(server, method, "/ids/k?versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY")
            assert response.code == 400, method
            if method != "HEAD":
                assert error_code(content) == "InvalidArgument"
        answer = await server.blocking(
            s3.delete_objects, Bucket="ids", Delete={"Objects": [{"Key": "k", "VersionId": "someotherversion"}]}
        )
        assert answer["Errors"] == [
            {
                "Key": "k",
                "VersionId": "someotherversion",
                "Code": "NoSuchVersion",
                "Message": "The specified version does not exist.",
            }
        ]
    await server.blocking(s3.delete_object, Bucket="ids", Key="k", VersionId="null")
    with pytest.raises(botocore.exceptions.ClientError):
        await server.blocking(s3.head_object, Bucket="ids", Key="k")


@pytest.mark.parametrize(
    "query",
    [
        "versions&version-id-marker=null",  # a version marker needs a key marker
        "versions&key-marker=a&version-id-marker=notaversion",
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_version_markers_are_invalid_arguments(server, query):
    await fill(server, "marks", ["a"])
    response, content = await call(server, "GET", f"/marks?{query}")
    assert (response.code, error_code(content)) == (400, "InvalidArgument")


@pytest_twisted.ensureDeferred
async def test_listing_versions_needs_read_access(server):
    await fill(server, "private", ["a"])
    stranger = server.create_user("stranger")
    code, _ = await server.blocking(client_error, server.boto3(stranger).list_object_versions, Bucket="private")
    assert code == "AccessDenied"
