"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket and the sub-resources clients probe."""

import re
from datetime import datetime, timezone
from urllib.parse import quote

import pytest
import pytest_twisted
from lxml import etree

from objectstore.web.bucket import BucketResource
from tests.conftest import live_server
from tests.helpers import client_error, refused, unchanged
from tests.s3http import call, error_code, header, raw, signed_headers

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


async def create(server, name, keys=None):
    response, content = await call(server, "PUT", f"/{name}", **({"keys": keys} if keys else {}))
    assert response.code == 200, content
    return response


# -- ListBuckets -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_list_buckets_document_has_owner_then_buckets_in_s3_namespace(server, bucket_name):
    await create(server, bucket_name)
    response, content = await call(server, "GET", "/")
    assert response.code == 200
    root = etree.fromstring(content)
    assert root.tag == f"{{{S3_NS}}}ListAllMyBucketsResult"
    assert [etree.QName(c).localname for c in root] == ["Owner", "Buckets"]
    owner = root.find(f"{{{S3_NS}}}Owner")
    assert [etree.QName(c).localname for c in owner] == ["ID", "DisplayName"]
    assert owner.findtext(f"{{{S3_NS}}}ID") == server.user_id("admin")
    (bucket,) = root.find(f"{{{S3_NS}}}Buckets")
    assert [etree.QName(c).localname for c in bucket] == ["Name", "CreationDate"]
    assert bucket.findtext(f"{{{S3_NS}}}Name") == bucket_name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", bucket.findtext(f"{{{S3_NS}}}CreationDate"))


@pytest_twisted.ensureDeferred
async def test_list_buckets_through_boto3_sorted_with_creation_dates(server):
    s3 = server.boto3()
    before = datetime.now(timezone.utc).replace(microsecond=0)

    def make_and_list():
        for name in ("zeta-bucket", "alpha-bucket", "mid-bucket"):
            s3.create_bucket(Bucket=name)
        return s3.list_buckets()

    listed = await server.blocking(make_and_list)
    assert [b["Name"] for b in listed["Buckets"]] == ["alpha-bucket", "mid-bucket", "zeta-bucket"]
    for bucket in listed["Buckets"]:
        assert before <= bucket["CreationDate"] <= datetime.now(timezone.utc)
    assert listed["Owner"] == {"ID": server.user_id("admin"), "DisplayName": "admin"}


@pytest_twisted.ensureDeferred
async def test_list_buckets_shows_a_user_only_their_own(server, bucket_name):
    keys = server.create_user("alice")
    await create(server, bucket_name)
    await create(server, "alice-bucket", keys=keys)
    listed = await server.blocking(server.boto3(keys).list_buckets)
    assert [b["Name"] for b in listed["Buckets"]] == ["alice-bucket"]
    assert listed["Owner"]["ID"] == server.user_id("alice")


@pytest_twisted.ensureDeferred
async def test_list_buckets_of_a_user_without_any_is_empty(server):
    keys = server.create_user("newcomer")
    listed = await server.blocking(server.boto3(keys).list_buckets)
    assert listed["Buckets"] == []
    assert listed["Owner"] == {"ID": server.user_id("newcomer"), "DisplayName": "newcomer"}


@pytest_twisted.ensureDeferred
async def test_list_buckets_refuses_anonymous(server):
    response, content = await call(server, "GET", "/", keys=None)
    assert response.code == 403
    assert error_code(content) == "AccessDenied"


# -- CreateBucket ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_create_bucket_answers_location_header(server, bucket_name):
    response = await create(server, bucket_name)
    assert header(response, "Location") == f"/{bucket_name}"
    assert server.store.get_bucket(bucket_name).owner == server.user_id("admin")


@pytest_twisted.ensureDeferred
async def test_create_bucket_accepts_configuration_for_this_region(server, bucket_name):
    body = (
        f'<CreateBucketConfiguration xmlns="{S3_NS}"><LocationConstraint>us-east-1</LocationConstraint>'
        "</CreateBucketConfiguration>"
    ).encode()
    response, content = await call(server, "PUT", f"/{bucket_name}", body=body)
    assert response.code == 200, content
    assert server.store.get_bucket(bucket_name).region == "us-east-1"


@pytest_twisted.ensureDeferred
async def test_create_bucket_accepts_configuration_without_constraint(server, bucket_name):
    body = b"<CreateBucketConfiguration/>"
    response, content = await call(server, "PUT", f"/{bucket_name}", body=body)
    assert response.code == 200, content


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("region", ["eu-west-1", "EU", "ap-southeast-2"])
async def test_a_bucket_is_created_in_the_region_its_configuration_asks_for(server, bucket_name, region):
    s3 = server.boto3()
    configuration = {"LocationConstraint": region}
    await server.blocking(s3.create_bucket, Bucket=bucket_name, CreateBucketConfiguration=configuration)
    assert server.store.get_bucket(bucket_name).region == region
    located = await server.blocking(s3.get_bucket_location, Bucket=bucket_name)
    assert located["LocationConstraint"] == region
    head = await server.blocking(s3.head_bucket, Bucket=bucket_name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == region


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("constraint", ["eu west 1", "-eu", "x" * 64, "eu_west_1"])
async def test_a_location_constraint_that_is_no_region_name_is_refused(server, bucket_name, constraint):
    body = (
        f'<CreateBucketConfiguration xmlns="{S3_NS}"><LocationConstraint>{constraint}</LocationConstraint>'
        "</CreateBucketConfiguration>"
    ).encode()
    await refused(server, "InvalidLocationConstraint", call(server, "PUT", f"/{bucket_name}", body=body), 400)


@pytest_twisted.ensureDeferred
async def test_with_strict_region_create_bucket_refuses_another_region(strict_server, bucket_name):
    server = strict_server
    s3 = server.boto3()
    await refused(
        server,
        "InvalidLocationConstraint",
        lambda: s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}),
        400,
    )


@pytest_twisted.ensureDeferred
async def test_create_bucket_refuses_malformed_configuration(server, bucket_name):
    request = call(server, "PUT", f"/{bucket_name}", body=b"<CreateBucketConfiguration>")
    await refused(server, "MalformedXML", request, 400)


@pytest_twisted.ensureDeferred
async def test_create_bucket_refuses_a_configuration_of_another_kind(server, bucket_name):
    await refused(server, "MalformedXML", call(server, "PUT", f"/{bucket_name}", body=b"<Tagging/>"), 400)


@pytest_twisted.ensureDeferred
async def test_create_bucket_twice_in_us_east_1_is_200_and_resets_the_acl_only(server, bucket_name):
    # S3's legacy answer in us-east-1 (s3-tests' test_bucket_create_exists, test_bucket_recreate_not_overriding).
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name, ACL="public-read")
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="mykey1", Body=b"kept")
    answer = await server.blocking(s3.create_bucket, Bucket=bucket_name)
    assert (answer["ResponseMetadata"]["HTTPStatusCode"], answer["Location"]) == (200, f"/{bucket_name}")
    grants = (await server.blocking(s3.get_bucket_acl, Bucket=bucket_name))["Grants"]
    assert [(g["Grantee"]["Type"], g["Permission"]) for g in grants] == [("CanonicalUser", "FULL_CONTROL")]
    listed = await server.blocking(s3.list_objects_v2, Bucket=bucket_name)
    assert [o["Key"] for o in listed["Contents"]] == ["mykey1"]
    assert (await server.blocking(s3.get_object, Bucket=bucket_name, Key="mykey1"))["Body"].read() == b"kept"
    assert [b["Name"] for b in (await server.blocking(s3.list_buckets))["Buckets"]] == [bucket_name]


EU_WEST_1 = b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"


@pytest_twisted.ensureDeferred
async def test_create_bucket_twice_elsewhere_is_bucket_already_owned_by_you(server, bucket_name):
    await create(server, bucket_name)
    again = call(server, "PUT", f"/{bucket_name}", body=EU_WEST_1, headers={"x-amz-acl": "public-read"})
    await refused(server, "BucketAlreadyOwnedByYou", again, 409)
    other = bucket_name + "-eu"
    response, _ = await call(server, "PUT", f"/{other}", body=EU_WEST_1)
    assert response.code == 200
    for body in (EU_WEST_1, b""):
        again = call(server, "PUT", f"/{other}", body=body, headers={"x-amz-acl": "public-read"})
        await refused(server, "BucketAlreadyOwnedByYou", again, 409)


@pytest_twisted.ensureDeferred
async def test_create_bucket_twice_on_a_server_in_another_region_is_bucket_already_owned_by_you(tmp_path, bucket_name):
    async with live_server(tmp_path, region="eu-west-1") as eu:
        await create(eu, bucket_name)
        await refused(eu, "BucketAlreadyOwnedByYou", lambda: eu.boto3().create_bucket(Bucket=bucket_name), 409)


@pytest_twisted.ensureDeferred
async def test_create_bucket_owned_by_another_user_is_bucket_already_exists(server, bucket_name):
    await create(server, bucket_name)
    keys = server.create_user("mallory")
    await refused(server, "BucketAlreadyExists", lambda: server.boto3(keys).create_bucket(Bucket=bucket_name), 409)


@pytest_twisted.ensureDeferred
async def test_create_bucket_refuses_anonymous(server, bucket_name):
    await refused(server, "AccessDenied", call(server, "PUT", f"/{bucket_name}", keys=None), 403)


INVALID_NAMES = ["..", "_images", "tmp", "A", "ab", "a" * 64, "192.168.5.4", "a..b", "xn--a", "-ab"]
INVALID_NAMES += ["ab-", "a.-b", "a-.b", "Abc", "a_b", "bucket-s3alias", "sthree-x", "a b", "abc\n", "abc%"]


def raw_put(port, path):
    """A signed PUT with the path sent byte for byte (clients would normalise ``..``)."""
    url = f"http://127.0.0.1:{port}{path}"
    headers = signed_headers("PUT", url)
    lines = [f"PUT {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Length: 0", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_and_code(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), error_code(body)


@pytest.mark.parametrize("name", INVALID_NAMES)
@pytest_twisted.ensureDeferred
async def test_create_bucket_with_invalid_name_is_invalid_bucket_name(server, name):
    path = "/" + quote(name, safe="")
    async with unchanged(server):
        answer = await raw(server.port, raw_put(server.port, path))
        assert status_and_code(answer) == (400, "InvalidBucketName")


@pytest_twisted.ensureDeferred
async def test_boto3_is_told_why_a_bucket_name_is_invalid(server):
    s3 = server.boto3()
    error = (await refused(server, "InvalidBucketName", lambda: s3.create_bucket(Bucket="My_Bucket")))["Error"]
    assert error["BucketName"] == "My_Bucket"
    assert error["Message"] == (
        "The specified bucket is not valid: a bucket name may contain only lowercase letters, "
        "digits, dots (.) and hyphens (-)."
    )


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket.name", "a-b.c-d", "192.168.5.4x", "0-9"])
@pytest_twisted.ensureDeferred
async def test_create_bucket_accepts_valid_edge_names(server, name):
    await create(server, name)
    assert server.store.get_bucket(name).name == name


# -- HeadBucket --------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_head_bucket_answers_region_and_no_body(server, bucket_name):
    await create(server, bucket_name)
    response, content = await call(server, "HEAD", f"/{bucket_name}")
    assert response.code == 200
    assert header(response, "x-amz-bucket-region") == "us-east-1"
    assert content == b""


@pytest_twisted.ensureDeferred
async def test_head_missing_bucket_is_404_for_boto3(server, bucket_name):
    code, status = await server.blocking(client_error, server.boto3().head_bucket, Bucket=bucket_name)
    assert (code, status) == ("404", 404)


@pytest_twisted.ensureDeferred
async def test_head_bucket_of_another_user_is_403(server, bucket_name):
    await create(server, bucket_name)
    keys = server.create_user("eve")
    code, status = await server.blocking(client_error, server.boto3(keys).head_bucket, Bucket=bucket_name)
    assert (code, status) == ("403", 403)


# -- DeleteBucket ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_delete_empty_bucket_answers_204(server, bucket_name):
    await create(server, bucket_name)
    response, content = await call(server, "DELETE", f"/{bucket_name}")
    assert response.code == 204
    assert content == b""
    assert server.store.list_buckets() == []


@pytest_twisted.ensureDeferred
async def test_delete_bucket_with_objects_is_bucket_not_empty(server, bucket_name):
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"x")
    await refused(server, "BucketNotEmpty", lambda: s3.delete_bucket(Bucket=bucket_name), 409)


@pytest_twisted.ensureDeferred
async def test_delete_missing_bucket_is_no_such_bucket(server, bucket_name):
    _, content = await refused(server, "NoSuchBucket", call(server, "DELETE", f"/{bucket_name}"), 404)
    assert etree.fromstring(content).findtext("BucketName") == bucket_name


@pytest_twisted.ensureDeferred
async def test_delete_bucket_of_another_user_is_access_denied(server, bucket_name):
    await create(server, bucket_name)
    keys = server.create_user("eve")
    await refused(server, "AccessDenied", call(server, "DELETE", f"/{bucket_name}", keys=keys), 403)


# -- libcloud's expectations -------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_libcloud_create_existing_container_is_its_owners_and_refused_to_another(server, bucket_name):
    from libcloud.storage.types import InvalidContainerNameError

    driver = server.libcloud()
    await server.blocking(driver.create_container, bucket_name)
    # Your own bucket again is S3's us-east-1 200; another user's is BucketAlreadyExists (libcloud
    # keeps ContainerAlreadyExistsError for BucketAlreadyOwnedByYou).
    again = await server.blocking(driver.create_container, bucket_name)
    assert again.name == bucket_name
    other = server.libcloud(server.create_user("other"))
    async with unchanged(server):
        with pytest.raises(InvalidContainerNameError):
            await server.blocking(other.create_container, bucket_name)


@pytest_twisted.ensureDeferred
async def test_libcloud_delete_container_returns_true(server, bucket_name):
    driver = server.libcloud()
    container = await server.blocking(driver.create_container, bucket_name)
    assert await server.blocking(driver.delete_container, container) is True
    assert server.store.list_buckets() == []


@pytest_twisted.ensureDeferred
async def test_libcloud_delete_non_empty_container_raises_not_empty(server, bucket_name, tmp_path):
    from libcloud.storage.types import ContainerIsNotEmptyError

    driver = server.libcloud()
    source = tmp_path / "f"
    source.write_bytes(b"x")
    container = await server.blocking(driver.create_container, bucket_name)
    await server.blocking(driver.upload_object, str(source), container, "f")
    async with unchanged(server):
        with pytest.raises(ContainerIsNotEmptyError):
            await server.blocking(driver.delete_container, container)


# -- GetBucketLocation and the sub-resources clients probe --------------------


@pytest_twisted.ensureDeferred
async def test_get_bucket_location_is_empty_constraint_in_us_east_1(server, bucket_name):
    await create(server, bucket_name)
    response, content = await call(server, "GET", f"/{bucket_name}?location")
    assert response.code == 200
    root = etree.fromstring(content)
    assert root.tag == f"{{{S3_NS}}}LocationConstraint"
    assert root.text is None
    located = await server.blocking(server.boto3().get_bucket_location, Bucket=bucket_name)
    assert located["LocationConstraint"] is None


def answered(key, expected):
    """A check that the boto3 response has *key* equal to *expected*."""
    return lambda response: response.get(key) == expected


# boto3 call -> what a bucket with nothing configured answers: an error code,
# or a check on the parsed response.
PROBES = {
    "get_bucket_acl": lambda r: [g["Permission"] for g in r["Grants"]] == ["FULL_CONTROL"],
    "get_bucket_versioning": lambda r: "Status" not in r and "MFADelete" not in r,
    "get_bucket_policy": "NoSuchBucketPolicy",
    "get_bucket_policy_status": "NoSuchBucketPolicy",
    "get_bucket_cors": "NoSuchCORSConfiguration",
    "get_bucket_lifecycle_configuration": "NoSuchLifecycleConfiguration",
    "get_bucket_lifecycle": "NoSuchLifecycleConfiguration",
    "get_bucket_request_payment": answered("Payer", "BucketOwner"),
    "get_public_access_block": "NoSuchPublicAccessBlockConfiguration",
    "get_bucket_ownership_controls": "OwnershipControlsNotFoundError",
    "get_bucket_tagging": "NoSuchTagSet",
    "get_bucket_website": "NoSuchWebsiteConfiguration",
    "get_bucket_logging": lambda r: "LoggingEnabled" not in r,
    "get_bucket_encryption": "ServerSideEncryptionConfigurationNotFoundError",
    "get_bucket_notification_configuration": lambda r: (
        not {
            "TopicConfigurations",
            "QueueConfigurations",
            "LambdaFunctionConfigurations",
        }
        & set(r)
    ),
    "get_bucket_notification": lambda r: not {"TopicConfiguration", "QueueConfiguration"} & set(r),
    "get_bucket_accelerate_configuration": lambda r: "Status" not in r,
    "get_object_lock_configuration": "ObjectLockConfigurationNotFoundError",
    "get_bucket_replication": "ReplicationConfigurationNotFoundError",
    "list_multipart_uploads": lambda r: r["IsTruncated"] is False and "Uploads" not in r,
}

NOT_FOUND_STATUS = 404


@pytest.mark.parametrize("method", sorted(PROBES))
@pytest_twisted.ensureDeferred
async def test_unconfigured_bucket_sub_resource_answers_like_aws(server, bucket_name, method):
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name)
    expected = PROBES[method]
    if isinstance(expected, str):
        await refused(server, expected, lambda: getattr(s3, method)(Bucket=bucket_name), NOT_FOUND_STATUS)
    else:
        async with unchanged(server):
            response = await server.blocking(getattr(s3, method), Bucket=bucket_name)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert expected(response)


@pytest.mark.parametrize("method", sorted(PROBES))
@pytest_twisted.ensureDeferred
async def test_sub_resource_of_missing_bucket_is_no_such_bucket(server, bucket_name, method):
    await refused(server, "NoSuchBucket", lambda: getattr(server.boto3(), method)(Bucket=bucket_name), 404)


# The bucket sub-resources this server answers a GET of (what s3cmd's `info`
# and other clients probe), taken from the resource's declared operations.
SUBRESOURCES = sorted(sub for (method, sub) in BucketResource.operations if method == b"GET" and sub)


@pytest.mark.parametrize("subresource", SUBRESOURCES)
@pytest_twisted.ensureDeferred
async def test_sub_resource_of_another_users_bucket_is_access_denied(server, bucket_name, subresource):
    await create(server, bucket_name)
    keys = server.create_user("eve")
    response, content = await call(server, "GET", f"/{bucket_name}?{subresource}", keys=keys)
    assert response.code == 403
    assert error_code(content) == "AccessDenied"


@pytest_twisted.ensureDeferred
async def test_every_probed_sub_resource_answers_without_a_5xx(server, bucket_name):
    # s3cmd's `info` asks for all of these in a row on one bucket.
    await create(server, bucket_name)
    statuses = {}
    for subresource in SUBRESOURCES:
        response, content = await call(server, "GET", f"/{bucket_name}?{subresource}")
        statuses[subresource] = response.code
        etree.fromstring(content)  # always an XML document
    assert all(status in (200, 404) for status in statuses.values()), statuses


@pytest_twisted.ensureDeferred
async def test_list_buckets_in_pages_follows_its_continuation_token(server):
    s3 = server.boto3()
    assert "ContinuationToken" not in await server.blocking(s3.list_buckets, MaxBuckets=1)
    for name in ("page-b", "page-a", "page-c", "other-x"):
        await server.blocking(s3.create_bucket, Bucket=name)
    first = await server.blocking(s3.list_buckets, MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == ["other-x", "page-a"]
    assert first["Buckets"][0]["BucketRegion"] == "us-east-1"
    second = await server.blocking(s3.list_buckets, MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in second["Buckets"]] == ["page-b", "page-c"] and "ContinuationToken" not in second
    prefixed = await server.blocking(s3.list_buckets, Prefix="page-", MaxBuckets=10)
    assert [b["Name"] for b in prefixed["Buckets"]] == ["page-a", "page-b", "page-c"]
    assert prefixed["Prefix"] == "page-"
    whole = await server.blocking(s3.list_buckets)
    assert len(whole["Buckets"]) == 4 and "ContinuationToken" not in whole


@pytest.mark.parametrize("query", ["max-buckets=0", "max-buckets=10001", "max-buckets=x", "continuation-token=%21%21"])
@pytest_twisted.ensureDeferred
async def test_a_bad_list_buckets_page_is_an_invalid_argument(server, query):
    response, content = await call(server, "GET", f"/?{query}")
    assert (response.code, error_code(content)) == (400, "InvalidArgument")
