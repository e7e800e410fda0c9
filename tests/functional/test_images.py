"""The image registry through /_images: bundles uploaded with boto3 become images, safely.

Bundles are made with ``images`` (as the client tools make them), uploaded
``aws-exec-read`` as euca-upload-bundle uploads them, registered with a
signed ``PUT /_images/?image_location=...`` and polled until they settle.
"""

import hashlib
import json
import os

import pytest_twisted

from tests.conftest import ADMIN_KEYS, live_server
from tests.helpers import unchanged
from tests.imaging import (
    UserKeys,
    list_images,
    make_bundle,
    random_image,
    register,
    upload_bundle,
    wait_settled,
)
from tests.s3http import call, error_code, header

MiB = 1024 * 1024


async def new_user(server, name):
    keys = server.create_user(name)
    return UserKeys(keys, server.user_id(name), name)


async def bundle_in_bucket(server, user, tmp_path, size, bucket="bundles", folder="", acl="aws-exec-read", **options):
    """A random image of *size* bytes, bundled and uploaded by *user*; (location, image bytes' SHA-256, image path)."""
    s3 = server.boto3(user.keys)
    await server.blocking(_ensure_bucket, s3, bucket)
    image_path = random_image(str(tmp_path / f"image-{size}"), size)
    result = await server.blocking(make_bundle, server, user, image_path, str(tmp_path / "bundle"), **options)
    location = await server.blocking(upload_bundle, s3, bucket, result, folder, acl)
    return location, result, image_path


def _ensure_bucket(s3, bucket):
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:
        s3.create_bucket(Bucket=bucket)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


@pytest_twisted.ensureDeferred
async def test_a_25_mib_bundle_in_three_parts_registers_and_downloads_byte_for_byte(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, result, image_path = await bundle_in_bucket(server, alice, tmp_path, 25 * MiB, folder="centos/")
        assert len([p for p in result.part_paths if os.path.getsize(p)]) == 3

        response, answer = await register(server, location, alice.keys)
        assert response.code == 200, answer
        image_id = answer["imageId"]
        assert image_id.startswith("ami-") and len(image_id) == 12

        image = await wait_settled(server, image_id, alice.keys)
        assert image["imageState"] == "available", image
        assert image["imageLocation"] == location
        assert image["imageOwnerId"] == alice.user_id
        assert (image["imageType"], image["type"], image["architecture"]) == ("machine", "machine", "x86_64")
        assert image["isPublic"] is False
        assert image["size"] == 25 * MiB

        response, content = await call(server, "GET", f"/_images/{image_id}", keys=alice.keys)
        assert response.code == 200
        assert header(response, "Content-Type") == "application/octet-stream"
        assert hashlib.sha256(content).hexdigest() == sha256_of(image_path)

        response, content = await call(
            server, "GET", f"/_images/{image_id}/image", keys=alice.keys, headers={"Range": "bytes=100-199"}
        )
        assert response.code == 206
        assert header(response, "Content-Range") == f"bytes 100-199/{25 * MiB}"
        with open(image_path, "rb") as f:
            f.seek(100)
            assert content == f.read(100)

        # The bundle's own folder is the only place anything was written.
        images_dir = os.path.join(server.data_dir, "images")
        assert os.listdir(images_dir) == [image_id]
        assert os.listdir(os.path.join(images_dir, image_id)) == ["image"]


@pytest_twisted.ensureDeferred
async def test_the_listing_is_json_with_novas_field_names(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 100_000)
        _, answer = await register(server, location, alice.keys)
        await wait_settled(server, answer["imageId"], alice.keys)
        response, content = await call(server, "GET", "/_images/", keys=alice.keys)
        assert response.code == 200
        assert header(response, "Content-Type") == "application/json"
        (image,) = json.loads(content)
        for field in (
            "imageId",
            "imageLocation",
            "imageOwnerId",
            "imageState",
            "imageType",
            "type",
            "architecture",
            "isPublic",
            "kernelId",
            "ramdiskId",
            "displayName",
            "description",
        ):
            assert field in image, field
        assert image["displayName"] == "image-100000"


@pytest_twisted.ensureDeferred
async def test_the_listing_says_how_far_a_registration_has_got(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 12 * MiB)
        _, answer = await register(server, location, alice.keys)
        seen = []
        while not seen or seen[-1][0] not in ("available", "failed"):
            image = (await list_images(server, alice.keys))[answer["imageId"]]
            seen.append((image["imageState"], image["progress"]))
        assert seen[-1] == ("available", 100)
        in_flight = [progress for state, progress in seen if state != "available"]
        assert in_flight and all(0 <= progress <= 99 for progress in in_flight), seen
        assert in_flight == sorted(in_flight), seen
        assert any(0 < progress < 99 for progress in in_flight), seen  # it moves, not just 0 then done


@pytest_twisted.ensureDeferred
async def test_the_cloud_certificate_is_served_to_anyone(tmp_path):
    async with live_server(tmp_path) as server:
        response, content = await call(server, "GET", "/_images/cloud-cert.pem", keys=None)
        assert response.code == 200
        with open(os.path.join(server.data_dir, "cloud-cert.pem"), "rb") as f:
            assert content == f.read()
        assert content.startswith(b"-----BEGIN CERTIFICATE-----")
        assert oct(os.stat(os.path.join(server.data_dir, "cloud-key.pem")).st_mode & 0o777) == "0o600"


@pytest_twisted.ensureDeferred
async def test_an_image_id_may_be_chosen_but_not_reused_or_malformed(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 50_000)
        response, answer = await register(server, location, alice.keys, image_id="ami-0123abcd")
        assert (response.code, answer["imageId"]) == (200, "ami-0123abcd")
        await wait_settled(server, "ami-0123abcd", alice.keys)
        async with unchanged(server):
            for image_id, status, code in (
                ("ami-0123abcd", 409, "InvalidAMIID.Duplicate"),
                ("ami-xyz", 400, "InvalidAMIID.Malformed"),
                ("ami-0123ABCD", 400, "InvalidAMIID.Malformed"),
                ("aki-0123abce", 400, "InvalidAMIID.Malformed"),  # a machine image's id must be ami-
                ("../../etc", 400, "InvalidAMIID.Malformed"),
            ):
                response, answer = await register(server, location, alice.keys, image_id=image_id)
                assert (response.code, answer) == (status, code), image_id


@pytest_twisted.ensureDeferred
async def test_registration_is_refused_where_the_caller_cannot_read_the_manifest(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        bob = await new_user(server, "bob")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 50_000)
        bucket = location.split("/")[0]
        cases = (
            (bob.keys, location, 403, "AccessDenied"),
            (None, location, 403, "AccessDenied"),
            (alice.keys, f"{bucket}/missing.manifest.xml", 404, "NoSuchKey"),
            (alice.keys, "nosuchbucket/x.manifest.xml", 404, "NoSuchBucket"),
            (alice.keys, bucket, 400, "InvalidParameterValue"),
            (alice.keys, "/", 400, "InvalidParameterValue"),
            (alice.keys, "_images/x.manifest.xml", 400, "InvalidParameterValue"),
            (alice.keys, "tmp/x.manifest.xml", 400, "InvalidParameterValue"),
            (alice.keys, "../x.manifest.xml", 400, "InvalidParameterValue"),
        )
        async with unchanged(server):
            for keys, where, status, code in cases:
                response, answer = await register(server, where, keys)
                assert (response.code, answer) == (status, code), (keys, where)
            response, content = await call(server, "PUT", "/_images/", keys=alice.keys)
            assert (response.code, error_code(content)) == (400, "MissingParameter")
        # The admin may register anyone's bundle.
        response, answer = await register(server, location, ADMIN_KEYS)
        assert response.code == 200
        assert (await wait_settled(server, answer["imageId"], ADMIN_KEYS))["imageState"] == "available"


@pytest_twisted.ensureDeferred
async def test_hostile_manifests_are_refused_at_registration_and_change_nothing(tmp_path):
    hostile = {
        "xxe": b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]><manifest>&e;</manifest>',
        "billion laughs": (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(
                b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
            )
            + b"]><manifest>&lol9;</manifest>"
        ),
        "malformed": b"<manifest><version>2007-10-10</version><image>",
        "not a manifest": b"<html/>",
        "too large": b"<manifest>" + b" " * (1024 * 1024 + 1) + b"</manifest>",
    }
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        s3 = server.boto3(alice.keys)
        await server.blocking(s3.create_bucket, Bucket="bundles")
        for name, body in hostile.items():
            key = name.replace(" ", "-") + ".manifest.xml"
            await server.blocking(s3.put_object, Bucket="bundles", Key=key, Body=body, ACL="aws-exec-read")
            async with unchanged(server):
                response, answer = await register(server, f"bundles/{key}", alice.keys)
                assert (response.code, answer) == (400, "InvalidManifest"), name
        assert await list_images(server, alice.keys) == {}


@pytest_twisted.ensureDeferred
async def test_deregistering_removes_the_image_and_its_file(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 200_000)
        _, answer = await register(server, location, alice.keys)
        image_id = answer["imageId"]
        await wait_settled(server, image_id, alice.keys)
        assert os.path.exists(os.path.join(server.data_dir, "images", image_id, "image"))
        response, _ = await call(server, "DELETE", f"/_images/?image_id={image_id}", keys=alice.keys)
        assert response.code == 204
        assert await list_images(server, alice.keys) == {}
        assert os.listdir(os.path.join(server.data_dir, "images")) == []
        response, content = await call(server, "GET", f"/_images/{image_id}", keys=alice.keys)
        assert (response.code, error_code(content)) == (404, "InvalidAMIID.NotFound")
        response, content = await call(server, "DELETE", f"/_images/?image_id={image_id}", keys=alice.keys)
        assert (response.code, error_code(content)) == (404, "InvalidAMIID.NotFound")


@pytest_twisted.ensureDeferred
async def test_display_name_and_description_are_changed_with_post(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 50_000)
        _, answer = await register(server, location, alice.keys)
        image_id = answer["imageId"]
        response, content = await call(
            server,
            "POST",
            f"/_images/?image_id={image_id}&display_name=CentOS%209&description=Base%20image",
            keys=alice.keys,
        )
        assert response.code == 200, content
        image = (await list_images(server, alice.keys))[image_id]
        assert (image["displayName"], image["description"]) == ("CentOS 9", "Base image")
        response, content = await call(
            server, "POST", f"/_images/?image_id={image_id}&operation=share", keys=alice.keys
        )
        assert (response.code, error_code(content)) == (400, "InvalidParameterValue")


@pytest_twisted.ensureDeferred
async def test_an_image_whose_bundle_is_not_available_yet_cannot_be_downloaded(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, result, _ = await bundle_in_bucket(server, alice, tmp_path, 50_000)
        # The manifest is there, its part is not: registration fails, with the reason.
        s3 = server.boto3(alice.keys)
        await server.blocking(s3.delete_object, Bucket="bundles", Key=os.path.basename(result.part_paths[0]))
        _, answer = await register(server, location, alice.keys)
        image = await wait_settled(server, answer["imageId"], alice.keys)
        assert image["imageState"] == "failed"
        assert "part 0" in image["stateReason"] and "missing" in image["stateReason"]
        response, content = await call(server, "GET", f"/_images/{answer['imageId']}", keys=alice.keys)
        assert (response.code, error_code(content)) == (409, "IncorrectState")
        assert os.listdir(os.path.join(server.data_dir, "images")) == []


@pytest_twisted.ensureDeferred
async def test_unknown_paths_under_images_are_not_found(tmp_path):
    async with live_server(tmp_path) as server:
        response, content = await call(server, "GET", "/_images/ami-00000000/other", keys=ADMIN_KEYS)
        assert (response.code, error_code(content)) == (400, "InvalidURI")
        response, content = await call(server, "GET", "/_images/ami-00000000", keys=ADMIN_KEYS)
        assert (response.code, error_code(content)) == (404, "InvalidAMIID.NotFound")
        response, content = await call(server, "GET", "/_images/not-an-id", keys=ADMIN_KEYS)
        assert (response.code, error_code(content)) == (400, "InvalidAMIID.Malformed")
        response, content = await call(server, "PATCH", "/_images/", keys=ADMIN_KEYS)
        assert (response.code, error_code(content)) == (405, "MethodNotAllowed")


@pytest_twisted.ensureDeferred
async def test_a_manifest_is_verified_with_the_users_certificate_when_the_registry_has_it(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 40_000)
        _, answer = await register(server, location, alice.keys)
        unverified = await wait_settled(server, answer["imageId"], alice.keys)
        assert (unverified["imageState"], unverified["signatureVerified"]) == ("available", False)

        # Another user's certificate proves nothing about alice's manifest.
        stranger = UserKeys(None, None, "stranger")
        server.credentials.add_certificate(server.credentials.user("alice"), stranger.cert_pem)
        _, answer = await register(server, location, alice.keys)
        assert (await wait_settled(server, answer["imageId"], alice.keys))["signatureVerified"] is False

        server.credentials.add_certificate(server.credentials.user("alice"), alice.cert_pem)
        _, answer = await register(server, location, alice.keys)
        verified = await wait_settled(server, answer["imageId"], alice.keys)
        assert (verified["imageState"], verified["signatureVerified"]) == ("available", True)


@pytest_twisted.ensureDeferred
async def test_a_bundle_made_for_another_account_is_refused_even_when_readable(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        bob = await new_user(server, "bob")
        # Readable by bob, but bundled by alice for alice's account.
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 20_000, acl="public-read")
        async with unchanged(server):
            response, answer = await register(server, location, bob.keys)
            assert (response.code, answer) == (403, "AccessDenied")


@pytest_twisted.ensureDeferred
async def test_an_image_id_with_control_characters_is_answered_as_malformed(tmp_path):
    async with live_server(tmp_path) as server:
        for method, path in (
            ("DELETE", "/_images/?image_id=%01"),
            ("POST", "/_images/?image_id=ami-%00&operation=add"),
            ("GET", "/_images/%01"),
        ):
            response, content = await call(server, method, path, keys=ADMIN_KEYS)
            assert (response.code, error_code(content)) == (400, "InvalidAMIID.Malformed"), (method, path)


@pytest_twisted.ensureDeferred
async def test_deregistering_during_registration_then_reusing_the_id(tmp_path):
    async with live_server(tmp_path, image_workers=1) as server:
        alice = await new_user(server, "alice")
        location, _, image_path = await bundle_in_bucket(server, alice, tmp_path, 12 * MiB)
        _, answer = await register(server, location, alice.keys, image_id="ami-000000aa")
        assert answer["imageId"] == "ami-000000aa"
        response, _ = await call(server, "DELETE", "/_images/?image_id=ami-000000aa", keys=alice.keys)
        assert response.code == 204
        assert os.listdir(os.path.join(server.data_dir, "images")) == []
        # The id is free again, and the new registration is not disturbed by the old one.
        response, answer = await register(server, location, alice.keys, image_id="ami-000000aa")
        assert response.code == 200, answer
        image = await wait_settled(server, "ami-000000aa", alice.keys)
        assert image["imageState"] == "available", image
        response, content = await call(server, "GET", "/_images/ami-000000aa", keys=alice.keys)
        assert hashlib.sha256(content).hexdigest() == sha256_of(image_path)


@pytest_twisted.ensureDeferred
async def test_stopping_with_registrations_running_and_queued_then_starting_again(tmp_path):
    async with live_server(tmp_path, image_workers=1) as server:
        alice = await new_user(server, "alice")
        location, _, image_path = await bundle_in_bucket(server, alice, tmp_path, 12 * MiB)
        ids = []
        for _ in range(3):
            _, answer = await register(server, location, alice.keys)
            ids.append(answer["imageId"])
    # Leaving the block stopped the server: no job may hold it up.
    async with live_server(tmp_path, image_workers=2) as server:
        for image_id in ids:
            assert (await wait_settled(server, image_id, alice.keys))["imageState"] == "available"
        assert sorted(os.listdir(os.path.join(server.data_dir, "images"))) == sorted(ids)
