"""The EC2 Query API at /services/Cloud: boto3's EC2 client and euca2ools-style SigV2 queries.

The same registry as /_images: what one API registers, the other lists.
"""

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

import pytest_twisted
import treq
from botocore.exceptions import ClientError
from lxml import etree

from tests.conftest import ADMIN_KEYS, REGION, live_server
from tests.functional.test_images import bundle_in_bucket, new_user
from tests.imaging import list_images, wait_settled

EC2_NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"


def ec2_client(server, keys, path="/services/Cloud", region=REGION):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ec2",
        endpoint_url=server.url + path,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        region_name=region,
        config=Config(retries={"max_attempts": 0}),
    )


def sigv2_query(server, keys, params, method="GET", host=None):
    """A Query API request signed as euca2ools / boto 2 sign it (SignatureVersion 2, HmacSHA256)."""
    host = host or f"127.0.0.1:{server.port}"
    params = dict(
        params,
        AWSAccessKeyId=keys[0],
        SignatureVersion="2",
        SignatureMethod="HmacSHA256",
        Timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        Version="2013-02-01",
    )
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
    to_sign = f"{method}\n{host}\n/services/Cloud\n{query}"
    signature = base64.b64encode(hmac.digest(keys[1].encode(), to_sign.encode(), hashlib.sha256)).decode()
    return f"{query}&Signature={quote(signature, safe='-_.~')}"


async def ec2_get(server, query):
    response = await treq.get(f"{server.url}/services/Cloud?{query}", persistent=False)
    return response, etree.fromstring(await treq.content(response))


@pytest_twisted.ensureDeferred
async def test_boto3_registers_describes_modifies_and_deregisters(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 60_000)
        ec2 = ec2_client(server, alice.keys)

        registered = await server.blocking(
            ec2.register_image, ImageLocation=location, Name="centos-9", Description="base", Architecture="x86_64"
        )
        image_id = registered["ImageId"]
        assert (await wait_settled(server, image_id, alice.keys))["imageState"] == "available"

        (image,) = (await server.blocking(ec2.describe_images, ImageIds=[image_id]))["Images"]
        assert (image["ImageId"], image["Name"], image["State"], image["Public"]) == (
            image_id,
            "centos-9",
            "available",
            False,
        )
        assert (image["ImageLocation"], image["OwnerId"], image["ImageType"]) == (location, alice.user_id, "machine")

        described = await server.blocking(
            ec2.describe_images,
            Filters=[{"Name": "name", "Values": ["centos-*"]}, {"Name": "state", "Values": ["available"]}],
        )
        assert [i["ImageId"] for i in described["Images"]] == [image_id]
        nothing = await server.blocking(ec2.describe_images, Filters=[{"Name": "is-public", "Values": ["true"]}])
        assert nothing["Images"] == []
        mine = await server.blocking(ec2.describe_images, Owners=["self"])
        assert [i["ImageId"] for i in mine["Images"]] == [image_id]

        await server.blocking(
            ec2.modify_image_attribute, ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}
        )
        public = await server.blocking(ec2.describe_images, ExecutableUsers=["all"])
        assert [i["ImageId"] for i in public["Images"]] == [image_id]
        attribute = await server.blocking(ec2.describe_image_attribute, ImageId=image_id, Attribute="launchPermission")
        assert attribute["LaunchPermissions"] == [{"Group": "all"}]
        # Another user now sees it, through either API.
        bob = await new_user(server, "bob")
        assert image_id in await list_images(server, bob.keys)

        await server.blocking(ec2.reset_image_attribute, ImageId=image_id, Attribute="launchPermission")
        assert image_id not in await list_images(server, bob.keys)

        await server.blocking(ec2.deregister_image, ImageId=image_id)
        assert await list_images(server, alice.keys) == {}
        try:
            await server.blocking(ec2.describe_images, ImageIds=[image_id])
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidAMIID.NotFound"
        else:
            raise AssertionError("a deregistered image was described")


@pytest_twisted.ensureDeferred
async def test_boto3_sees_ec2_error_codes(tmp_path):
    async with live_server(tmp_path) as server:
        ec2 = ec2_client(server, ADMIN_KEYS)
        for call, code in (
            (lambda: ec2.describe_images(ImageIds=["ami-12345678"]), "InvalidAMIID.NotFound"),
            (lambda: ec2.describe_images(ImageIds=["bogus"]), "InvalidAMIID.Malformed"),
            (lambda: ec2.register_image(ImageLocation="nobucket/x.manifest.xml", Name="xyz"), "InvalidManifest"),
            (lambda: ec2.describe_images(Filters=[{"Name": "colour", "Values": ["red"]}]), "InvalidParameterValue"),
            (lambda: ec2.deregister_image(ImageId="ami-12345678"), "InvalidAMIID.NotFound"),
        ):
            try:
                await server.blocking(call)
            except ClientError as e:
                assert e.response["Error"]["Code"] == code
            else:
                raise AssertionError(f"expected {code}")
        wrong = ec2_client(server, (ADMIN_KEYS[0], "not-the-secret"))
        try:
            await server.blocking(wrong.describe_images)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AuthFailure"
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 401
        else:
            raise AssertionError("a wrong secret was accepted")


@pytest_twisted.ensureDeferred
async def test_boto3_configured_for_another_region_is_answered(tmp_path):
    async with live_server(tmp_path) as server:
        ec2 = ec2_client(server, ADMIN_KEYS, region="eu-west-1")
        assert (await server.blocking(ec2.describe_images, Owners=["self"]))["Images"] == []
        wrong = ec2_client(server, (ADMIN_KEYS[0], "not-the-secret"), region="eu-west-1")
        try:
            await server.blocking(wrong.describe_images)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AuthFailure"
        else:
            raise AssertionError("a wrong secret was accepted for another region")


@pytest_twisted.ensureDeferred
async def test_with_strict_region_another_region_is_an_auth_failure_naming_the_right_one(tmp_path):
    async with live_server(tmp_path, strict_region=True) as server:
        try:
            await server.blocking(ec2_client(server, ADMIN_KEYS, region="eu-west-1").describe_images)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AuthFailure"
            assert f"region '{REGION}'" in e.response["Error"]["Message"]
        else:
            raise AssertionError("strict_region accepted another region")
        assert (await server.blocking(ec2_client(server, ADMIN_KEYS).describe_images))["Images"] == []


@pytest_twisted.ensureDeferred
async def test_a_hand_built_sigv2_describe_images_as_euca2ools_sends_it(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 20_000)
        ec2 = ec2_client(server, alice.keys, path="/services/Eucalyptus")
        image_id = (await server.blocking(ec2.register_image, ImageLocation=location, Name="name"))["ImageId"]

        query = sigv2_query(server, alice.keys, {"Action": "DescribeImages", "ImageId.1": image_id})
        response, root = await ec2_get(server, query)
        assert response.code == 200
        assert root.tag == f"{EC2_NS}DescribeImagesResponse"
        assert root.findtext(f"{EC2_NS}requestId")
        assert [i.findtext(f"{EC2_NS}imageId") for i in root.iter(f"{EC2_NS}item")] == [image_id]

        tampered = query.replace(f"ImageId.1={image_id}", "ImageId.1=ami-00000000")
        response, root = await ec2_get(server, tampered)
        assert response.code == 401
        assert root.findtext("Errors/Error/Code") == "AuthFailure"
        assert root.findtext("RequestID")

        response, root = await ec2_get(server, sigv2_query(server, alice.keys, {"Action": "RunInstances"}))
        assert (response.code, root.findtext("Errors/Error/Code")) == (400, "InvalidAction")
        response, root = await ec2_get(server, "Action=DescribeImages")
        assert (response.code, root.findtext("Errors/Error/Code")) == (401, "AuthFailure")
