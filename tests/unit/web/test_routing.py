"""Which bucket and key a request names, in memory: path style, virtual-host style, awkward keys, the mounts.

The key is taken from the raw path as S3 takes it: percent-decoded once,
never normalised -- ``//``, ``.`` and ``..`` segments and a trailing ``/``
are part of the key, and ``%2F`` is a ``/`` like any other. With a domain
(here ``localhost``), ``BUCKET.localhost`` names the bucket and the whole
path is the key; the bare domain and any other host are path style.
``/_images/`` is the image API and ``/services/Cloud`` the EC2 one.
"""

import json

import pytest
import pytest_twisted
import treq

from tests.memory import S3_NS, find_all_text, find_text, key_path, memory_s3

DOMAIN = "localhost"


@pytest_twisted.async_yield_fixture(scope="module")
async def s3(tmp_path_factory):
    """This module's server serves ``*.localhost`` virtual-host style as well as path style."""
    async with memory_s3(tmp_path_factory.mktemp("memory-vhost"), domain=DOMAIN) as server:
        yield server


async def stored_keys(s3, bucket):
    answer = await s3.request("GET", f"/{bucket}?list-type=2")
    assert answer.status == 200, answer.body
    return find_all_text(answer.xml(), "Contents/Key")


async def get(s3, path, **kwargs):
    return await s3.request("GET", path, **kwargs)


# -- path style ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_path_style_names_bucket_then_key(s3, bucket):
    await s3.put_object(bucket, "some/key", b"body")
    status, headers, body = await get(s3, f"/{bucket}/some/key")
    assert (status, body) == (200, b"body")
    assert headers.getRawHeaders(b"Content-Type") == [b"binary/octet-stream"]


@pytest.mark.parametrize("path", ["/{bucket}", "/{bucket}/", "/{bucket}?list-type=2", "/{bucket}/?list-type=2"])
@pytest_twisted.ensureDeferred
async def test_bucket_with_or_without_trailing_slash_is_the_bucket(s3, bucket, path):
    await s3.put_object(bucket, "k", b"")
    answer = await get(s3, path.format(bucket=bucket))
    assert answer.status == 200, answer.body
    root = answer.xml()
    assert root.tag == f"{{{S3_NS}}}ListBucketResult"
    assert find_text(root, "Name") == bucket
    assert find_all_text(root, "Contents/Key") == ["k"]


@pytest_twisted.ensureDeferred
async def test_root_is_the_service(s3, bucket):
    answer = await get(s3, "/")
    assert answer.status == 200
    assert answer.xml().tag == f"{{{S3_NS}}}ListAllMyBucketsResult"
    assert bucket in find_all_text(answer.xml(), "Buckets/Bucket/Name")


@pytest_twisted.ensureDeferred
async def test_dotted_bucket_name_path_style(s3):
    name = "mem.dotted.bucket-path"
    await s3.put_bucket(name)
    await s3.put_object(name, "k", b"dots")
    answer = await get(s3, f"/{name}/k")
    assert (answer.status, answer.body) == (200, b"dots")


# -- awkward keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, key",
    [
        ("//a", "/a"),
        ("///a//b//", "//a//b//"),
        ("/dir/", "dir/"),
        ("/a%2Fb", "a/b"),
        ("/a%2fb%2F%2F", "a/b//"),
        ("/with%20space", "with space"),
        ("/%C3%A9t%C3%A9/%E9%8D%B5/%F0%9F%98%80", "été/鍵/😀"),
        ("/a/./b", "a/./b"),
        ("/a/../b", "a/../b"),
        ("/..", ".."),
        ("/what%3F%23frag", "what?#frag"),
        ("/100%25", "100%"),
        ("/%2520", "%20"),
        ("/semi;colon,comma=eq", "semi;colon,comma=eq"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_key_is_the_raw_path_decoded_once_and_never_normalised(s3, bucket, path, key):
    answer = await s3.request("PUT", f"/{bucket}{path}", body=b"awkward")
    assert answer.status == 200, answer.body
    assert await stored_keys(s3, bucket) == [key]
    # And it is read back under the same key, however it is spelled on the way.
    answer = await get(s3, key_path(bucket, key))
    assert (answer.status, answer.body) == (200, b"awkward")


@pytest_twisted.ensureDeferred
async def test_encoded_and_plain_slashes_name_the_same_object(s3, bucket):
    await s3.put_object(bucket, "a/b/c", b"one")
    for path in ("/a/b/c", "/a%2Fb%2Fc", "/a/b%2Fc", "/%61/b/c"):
        answer = await get(s3, f"/{bucket}{path}")
        assert (answer.status, answer.body) == (200, b"one"), path
    await s3.request("PUT", f"/{bucket}/a%2Fb%2Fc", body=b"two")
    assert await stored_keys(s3, bucket) == ["a/b/c"]


@pytest_twisted.ensureDeferred
async def test_a_trailing_slash_names_another_key(s3, bucket):
    await s3.put_object(bucket, "dir", b"file")
    await s3.put_object(bucket, "dir/", b"folder")
    assert (await get(s3, f"/{bucket}/dir")).body == b"file"
    assert (await get(s3, f"/{bucket}/dir/")).body == b"folder"
    assert await stored_keys(s3, bucket) == ["dir", "dir/"]


@pytest_twisted.ensureDeferred
async def test_a_key_that_is_not_utf8_is_refused(s3, bucket):
    answer = await s3.request("PUT", f"/{bucket}/bad%FFkey", body=b"x")
    assert answer.status == 400
    assert await stored_keys(s3, bucket) == []


# -- virtual-host style --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bucket_host_names_the_bucket_and_the_path_is_the_key(s3, bucket):
    answer = await s3.request("PUT", "/some/key", host=f"{bucket}.{DOMAIN}", body=b"vhost")
    assert answer.status == 200, answer.body
    assert await stored_keys(s3, bucket) == ["some/key"]
    answer = await get(s3, "/some/key", host=f"{bucket}.{DOMAIN}")
    assert (answer.status, answer.body) == (200, b"vhost")


@pytest_twisted.ensureDeferred
async def test_root_of_a_bucket_host_is_the_bucket(s3, bucket):
    await s3.put_object(bucket, "k", b"")
    for path in ("/", "/?list-type=2", "/?prefix=k"):
        answer = await get(s3, path, host=f"{bucket}.{DOMAIN}")
        assert answer.status == 200, answer.body
        assert find_text(answer.xml(), "Name") == bucket
        assert find_all_text(answer.xml(), "Contents/Key") == ["k"]


@pytest_twisted.ensureDeferred
async def test_put_on_a_bucket_host_creates_the_bucket(s3):
    name = "mem-vhost-created"
    answer = await s3.request("PUT", "/", host=f"{name}.{DOMAIN}")
    assert answer.status == 200, answer.body
    assert s3.store.get_bucket(name).name == name


@pytest.mark.parametrize("form", ["{bucket}.LOCALHOST", "{bucket}.localhost:8080", "{bucket}.localhost."])
@pytest_twisted.ensureDeferred
async def test_bucket_host_in_capitals_with_a_port_or_a_final_dot(s3, bucket, form):
    await s3.put_object(bucket, "k", b"found")
    answer = await get(s3, "/k", host=form.format(bucket=bucket))
    assert (answer.status, answer.body) == (200, b"found")


@pytest_twisted.ensureDeferred
async def test_dotted_bucket_name_before_the_domain(s3):
    name = "mem.dotted.bucket-vhost"
    await s3.put_bucket(name)
    await s3.put_object(name, "k", b"dots")
    answer = await get(s3, "/k", host=f"{name}.{DOMAIN}")
    assert (answer.status, answer.body) == (200, b"dots")


@pytest.mark.parametrize("path, key", [("//a", "/a"), ("/dir/", "dir/"), ("/a%2Fb", "a/b"), ("/%E9%8D%B5", "鍵")])
@pytest_twisted.ensureDeferred
async def test_bucket_host_keys_are_the_raw_path_decoded_once(s3, bucket, path, key):
    answer = await s3.request("PUT", path, host=f"{bucket}.{DOMAIN}", body=b"x")
    assert answer.status == 200, answer.body
    assert await stored_keys(s3, bucket) == [key]


@pytest_twisted.ensureDeferred
async def test_on_a_bucket_host_the_first_path_segment_is_part_of_the_key(s3, bucket):
    # Not a path-style bucket: /other/k on bucket's host is key "other/k" of bucket.
    answer = await s3.request("PUT", f"/{bucket}/k", host=f"{bucket}.{DOMAIN}", body=b"x")
    assert answer.status == 200
    assert await stored_keys(s3, bucket) == [f"{bucket}/k"]


@pytest_twisted.ensureDeferred
async def test_missing_bucket_on_its_host_is_no_such_bucket(s3):
    answer = await get(s3, "/k", host=f"mem-no-such-vhost.{DOMAIN}")
    assert (answer.status, answer.code) == (404, "NoSuchBucket")
    assert answer.xml().findtext("BucketName") == "mem-no-such-vhost"


@pytest.mark.parametrize("host", [DOMAIN, f"{DOMAIN}:9000", "127.0.0.1", "127.0.0.1:9000", "s3.example.com"])
@pytest_twisted.ensureDeferred
async def test_the_bare_domain_and_other_hosts_are_path_style(s3, bucket, host):
    await s3.put_object(bucket, "k", b"path")
    answer = await get(s3, f"/{bucket}/k", host=host)
    assert (answer.status, answer.body) == (200, b"path")
    answer = await get(s3, "/", host=host)
    assert answer.xml().tag == f"{{{S3_NS}}}ListAllMyBucketsResult"


@pytest_twisted.ensureDeferred
async def test_images_path_on_a_bucket_host_is_a_key(s3, bucket):
    answer = await get(s3, "/_images/", host=f"{bucket}.{DOMAIN}")
    assert (answer.status, answer.code) == (404, "NoSuchKey")
    assert answer.xml().findtext("Key") == "_images/"


# -- sub-resources -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, root_name",
    [
        ("/{bucket}?acl", "AccessControlPolicy"),
        ("/{bucket}/k?acl", "AccessControlPolicy"),
        ("/{bucket}?location", "LocationConstraint"),
        ("/{bucket}?versioning", "VersioningConfiguration"),
        ("/{bucket}?uploads", "ListMultipartUploadsResult"),
        ("/{bucket}?list-type=2&acl", "AccessControlPolicy"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_sub_resource_in_the_query_picks_the_operation(s3, bucket, path, root_name):
    await s3.put_object(bucket, "k", b"")
    answer = await get(s3, path.format(bucket=bucket))
    assert answer.status == 200, answer.body
    assert answer.xml().tag == f"{{{S3_NS}}}{root_name}"


@pytest.mark.parametrize("query", ["inventory", "analytics", "metrics"])
@pytest_twisted.ensureDeferred
async def test_an_unimplemented_sub_resource_is_not_implemented(s3, bucket, query):
    answer = await get(s3, f"/{bucket}?{query}")
    assert (answer.status, answer.code) == (501, "NotImplemented")


# -- the mounts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/_images/", "/_images//"])
@pytest_twisted.ensureDeferred
async def test_images_path_is_the_image_list(s3, path):
    answer = await get(s3, path)
    assert answer.status == 200, answer.body
    assert answer.header("Content-Type") == "application/json"
    assert json.loads(answer.body) == []


@pytest_twisted.ensureDeferred
async def test_images_without_the_slash_is_a_bucket_that_cannot_exist(s3):
    answer = await get(s3, "/_images")
    assert (answer.status, answer.code) == (404, "NoSuchBucket")
    answer = await s3.request("PUT", "/_images")
    assert (answer.status, answer.code) == (400, "InvalidBucketName")


@pytest_twisted.ensureDeferred
async def test_an_unknown_path_under_images_is_invalid_uri(s3):
    answer = await get(s3, "/_images/some-image/elsewhere")
    assert (answer.status, answer.code) == (400, "InvalidURI")


@pytest.mark.parametrize("path", ["/services/Cloud", "/services/Cloud/", "/services/Eucalyptus"])
@pytest_twisted.ensureDeferred
async def test_services_cloud_is_the_ec2_api_with_its_own_error_form(s3, path):
    answer = await s3.request("GET", f"{path}?Action=DescribeImages", keys=None)
    assert answer.status == 401
    assert answer.header("Content-Type") == "application/xml"
    root = answer.xml()
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Errors", "RequestID"]
    assert root.findtext("Errors/Error/Code") == "AuthFailure"
    assert root.findtext("Errors/Error/Message")
    assert root.findtext("RequestID") == answer.header("x-amz-request-id")


@pytest_twisted.ensureDeferred
async def test_other_paths_under_services_are_s3(s3):
    answer = await get(s3, "/services/Other")
    assert (answer.status, answer.code) == (404, "NoSuchBucket")
    assert answer.xml().findtext("BucketName") == "services"


# -- treq's own client over the same in-memory agent ---------------------------------------------


@pytest_twisted.ensureDeferred
async def test_treq_client_reads_a_public_object_anonymously(s3, bucket):
    await s3.put_object(bucket, "public key", b"for everyone", headers={"x-amz-acl": "public-read"})
    d = s3.treq.get(f"http://{DOMAIN}/{bucket}/public%20key")
    response = await s3.pump(d)
    body = await s3.pump(treq.content(response))
    assert (response.code, body) == (200, b"for everyone")
