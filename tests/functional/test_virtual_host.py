"""Virtual-host addressing: with a domain, ``BUCKET.DOMAIN`` names the bucket and the path is the key."""

import socket

import boto3
import pytest
import pytest_twisted
import treq
from botocore.config import Config as BotoConfig
from lxml import etree

from tests.conftest import ADMIN_KEYS, live_server
from tests.helpers import refused
from tests.s3http import error_code, signed_headers

DOMAIN = "s3.test"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


@pytest_twisted.async_yield_fixture
async def vhost_server(tmp_path):
    """The conftest ``server``, but serving ``*.s3.test`` virtual-host style."""
    async with live_server(tmp_path, domain=DOMAIN) as live:
        yield live


@pytest.fixture
def resolve_test_domain(monkeypatch):
    """Make ``s3.test`` and its sub-domains resolve to 127.0.0.1 (for boto3, which looks names up)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def vcall(server, method, host, path, body=b""):
    """A signed request to 127.0.0.1 carrying ``Host: host:PORT`` (signed for that host)."""
    authority = f"{host}:{server.port}" if host else None
    headers = signed_headers(method, f"http://{authority}{path}", body=body)
    headers["Host"] = authority
    response = await treq.request(
        method,
        f"http://127.0.0.1:{server.port}{path}",
        headers={k: [v] for k, v in headers.items()},
        data=body or None,
        persistent=False,
    )
    return response, await treq.content(response)


def localnames(element):
    return [etree.QName(c).localname for c in element]


@pytest_twisted.ensureDeferred
async def test_put_bucket_on_its_own_host_creates_it(vhost_server, bucket_name):
    response, content = await vcall(vhost_server, "PUT", f"{bucket_name}.{DOMAIN}", "/")
    assert response.code == 200, content
    assert vhost_server.store.get_bucket(bucket_name).name == bucket_name


@pytest_twisted.ensureDeferred
async def test_path_on_bucket_host_is_the_key(vhost_server, bucket_name):
    host = f"{bucket_name}.{DOMAIN}"
    await vcall(vhost_server, "PUT", host, "/")
    response, _ = await vcall(vhost_server, "PUT", host, "/dir/my%20file.txt", body=b"hello")
    assert response.code == 200
    assert vhost_server.store.get_object(bucket_name, "dir/my file.txt").size == 5
    response, content = await vcall(vhost_server, "GET", host, "/dir/my%20file.txt")
    assert (response.code, content) == (200, b"hello")


@pytest_twisted.ensureDeferred
async def test_get_root_of_bucket_host_lists_the_bucket(vhost_server, bucket_name):
    host = f"{bucket_name}.{DOMAIN}"
    await vcall(vhost_server, "PUT", host, "/")
    await vcall(vhost_server, "PUT", host, "/k", body=b"x")
    response, content = await vcall(vhost_server, "GET", host, "/?list-type=2")
    assert response.code == 200
    root = etree.fromstring(content)
    assert localnames(root)[:2] == ["Name", "Prefix"]
    assert root.findtext(f"{{{S3_NS}}}Name") == bucket_name
    assert [k.text for k in root.iter(f"{{{S3_NS}}}Key")] == ["k"]


@pytest_twisted.ensureDeferred
async def test_double_slash_on_bucket_host_keeps_the_leading_slash_of_the_key(vhost_server, bucket_name):
    host = f"{bucket_name}.{DOMAIN}"
    await vcall(vhost_server, "PUT", host, "/")
    await vcall(vhost_server, "PUT", host, "//rooted", body=b"x")
    assert vhost_server.store.get_object(bucket_name, "/rooted").size == 1


@pytest_twisted.ensureDeferred
async def test_dotted_bucket_name_before_the_domain(vhost_server):
    response, content = await vcall(vhost_server, "PUT", f"my.dotted.bucket.{DOMAIN}", "/")
    assert response.code == 200, content
    assert vhost_server.store.get_bucket("my.dotted.bucket").name == "my.dotted.bucket"


@pytest_twisted.ensureDeferred
async def test_bare_domain_is_the_service(vhost_server, bucket_name):
    await vcall(vhost_server, "PUT", f"{bucket_name}.{DOMAIN}", "/")
    response, content = await vcall(vhost_server, "GET", DOMAIN, "/")
    assert response.code == 200
    root = etree.fromstring(content)
    assert etree.QName(root).localname == "ListAllMyBucketsResult"
    assert [n.text for n in root.iter(f"{{{S3_NS}}}Name")] == [bucket_name]


@pytest_twisted.ensureDeferred
async def test_bare_domain_serves_path_style_too(vhost_server, bucket_name):
    response, _ = await vcall(vhost_server, "PUT", DOMAIN, f"/{bucket_name}")
    assert response.code == 200
    response, _ = await vcall(vhost_server, "PUT", DOMAIN, f"/{bucket_name}/key", body=b"abc")
    assert response.code == 200
    assert vhost_server.store.get_object(bucket_name, "key").size == 3


@pytest_twisted.ensureDeferred
async def test_other_hosts_are_path_style(vhost_server, bucket_name):
    response, _ = await vcall(vhost_server, "PUT", "127.0.0.1", f"/{bucket_name}")
    assert response.code == 200
    response, _ = await vcall(vhost_server, "PUT", "storage.example.com", f"/{bucket_name}/key", body=b"abc")
    assert response.code == 200
    assert vhost_server.store.get_object(bucket_name, "key").size == 3


@pytest_twisted.ensureDeferred
async def test_host_without_port_and_in_capitals_addresses_the_bucket(vhost_server, bucket_name):
    await vcall(vhost_server, "PUT", f"{bucket_name}.{DOMAIN}", "/")
    headers = signed_headers("GET", f"http://{bucket_name.upper()}.S3.TEST./?location")
    headers["Host"] = f"{bucket_name.upper()}.S3.TEST."
    response = await treq.get(
        f"http://127.0.0.1:{vhost_server.port}/?location", headers={k: [v] for k, v in headers.items()}
    )
    content = await treq.content(response)
    assert response.code == 200, content
    assert etree.QName(etree.fromstring(content)).localname == "LocationConstraint"


@pytest_twisted.ensureDeferred
async def test_missing_bucket_host_is_no_such_bucket(vhost_server, bucket_name):
    response, content = await vcall(vhost_server, "GET", f"{bucket_name}.{DOMAIN}", "/")
    assert response.code == 404
    assert error_code(content) == "NoSuchBucket"


@pytest.mark.parametrize("label", ["a..b", "xn--a", "tmp", "ab", "-ab", "192.168.5.4"])
@pytest_twisted.ensureDeferred
async def test_invalid_bucket_name_on_host_is_invalid_bucket_name(vhost_server, label):
    await refused(vhost_server, "InvalidBucketName", vcall(vhost_server, "PUT", f"{label}.{DOMAIN}", "/"), 400)


@pytest_twisted.ensureDeferred
async def test_boto3_virtual_addressing_round_trip(vhost_server, bucket_name, resolve_test_domain):
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{DOMAIN}:{vhost_server.port}",
        aws_access_key_id=ADMIN_KEYS[0],
        aws_secret_access_key=ADMIN_KEYS[1],
        region_name="us-east-1",
        config=BotoConfig(retries={"max_attempts": 0}, s3={"addressing_style": "virtual"}),
    )
    sent = []
    s3.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    keys = ["a b+c", "dir/x", "dir/y", "/leading", "ünï"]

    def round_trip():
        s3.create_bucket(Bucket=bucket_name)
        for key in keys:
            s3.put_object(Bucket=bucket_name, Key=key, Body=key.encode())
        listed = s3.list_objects_v2(Bucket=bucket_name, Delimiter="/")
        bodies = {key: s3.get_object(Bucket=bucket_name, Key=key)["Body"].read() for key in keys}
        location = s3.get_bucket_location(Bucket=bucket_name)["LocationConstraint"]
        for key in keys:
            s3.delete_object(Bucket=bucket_name, Key=key)
        s3.delete_bucket(Bucket=bucket_name)
        return listed, bodies, location

    listed, bodies, location = await vhost_server.blocking(round_trip)
    # botocore always sends GetBucketLocation path-style, to the bare domain.
    virtual = [url for url in sent if not url.endswith("?location")]
    assert all(url.startswith(f"http://{bucket_name}.{DOMAIN}:{vhost_server.port}/") for url in virtual)
    assert len(virtual) == len(sent) - 1
    assert [o["Key"] for o in listed["Contents"]] == ["a b+c", "ünï"]
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["/", "dir/"]
    assert bodies == {key: key.encode() for key in keys}
    assert location is None
    assert vhost_server.store.list_buckets() == []
