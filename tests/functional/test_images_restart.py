"""A restart in the middle of registrations: they run again from the bundle, or fail with a reason.

The crash is made by hand: image rows left in flight, a half-written image
file and a folder no image owns, as a server killed mid-registration
leaves them.
"""

import hashlib
import os
import time

import pytest_twisted

from objectstore.index.database import Index
from objectstore.registry.catalog import Catalog
from objectstore.registry.records import Image
from tests.conftest import live_server
from tests.functional.test_images import bundle_in_bucket, new_user, sha256_of
from tests.imaging import wait_settled
from tests.s3http import call


def crashed_registration(data_dir, image_id, location, owner, state):
    """The traces of a registration cut short in *state*: its row, and a partial file."""
    meta = Index(os.path.join(data_dir, "meta.sqlite"), durable=True, reactor=None).open()
    try:
        image = Image(
            id=image_id,
            location=location,
            owner=owner,
            name="crashed",
            description="",
            type="machine",
            architecture="x86_64",
            kernel_id=None,
            ramdisk_id=None,
            block_devices=(),
            is_public=False,
            state=state,
            reason=None,
            size=None,
            sha1=None,
            signature_verified=False,
            created=time.time(),
        )
        Catalog(meta).add(image)
    finally:
        meta.close()
    folder = os.path.join(data_dir, "images", image_id)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "image.partial"), "wb") as f:
        f.write(b"half an image")


@pytest_twisted.ensureDeferred
async def test_registrations_in_flight_at_a_crash_run_again_at_the_next_start(tmp_path):
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        location, _, image_path = await bundle_in_bucket(server, alice, tmp_path, 3 * 1024 * 1024)
        data_dir = server.data_dir
    crashed_registration(data_dir, "ami-0000000a", location, alice.user_id, "untarring")
    crashed_registration(data_dir, "ami-0000000b", "bundles/gone.manifest.xml", alice.user_id, "pending")
    # A folder no image owns (an image deregistered while the server went down).
    os.makedirs(os.path.join(data_dir, "images", "ami-0000000c"))
    with open(os.path.join(data_dir, "images", "ami-0000000c", "image"), "wb") as f:
        f.write(b"stale")

    async with live_server(tmp_path) as server:
        resumed = await wait_settled(server, "ami-0000000a", alice.keys)
        assert resumed["imageState"] == "available", resumed
        response, content = await call(server, "GET", "/_images/ami-0000000a", keys=alice.keys)
        assert response.code == 200
        assert hashlib.sha256(content).hexdigest() == sha256_of(image_path)

        lost = await wait_settled(server, "ami-0000000b", alice.keys)
        assert lost["imageState"] == "failed"
        assert "does not exist" in lost["stateReason"]

        images_dir = os.path.join(data_dir, "images")
        assert sorted(os.listdir(images_dir)) == ["ami-0000000a"]
        assert os.listdir(os.path.join(images_dir, "ami-0000000a")) == ["image"]


@pytest_twisted.ensureDeferred
async def test_a_resumed_registration_of_a_manifest_bundled_for_another_account_fails(tmp_path):
    """The job checks the manifest it reads, not only register(): a manifest swapped in meanwhile
    (here: bob's in-flight registration now points at alice's readable bundle) is not decrypted."""
    async with live_server(tmp_path) as server:
        alice = await new_user(server, "alice")
        bob = await new_user(server, "bob")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 1024 * 1024, acl="public-read")
        data_dir = server.data_dir
    crashed_registration(data_dir, "ami-0000000d", location, bob.user_id, "pending")

    async with live_server(tmp_path) as server:
        refused = await wait_settled(server, "ami-0000000d", bob.keys)
        assert refused["imageState"] == "failed", refused
        assert "bundled for another account" in refused["stateReason"]
        assert os.listdir(os.path.join(data_dir, "images")) == []
