"""Hostile bundles registered through the live server: each fails (or is refused) with its reason.

Every case of docs/bundle-format.md §10 and docs/threat-model.md rows 14-15. Besides
the reason, each checks that nothing appeared anywhere outside the image's
own folder (which is gone too), and that the registry stays up.
"""

import hashlib
import io
import os
import re

import pytest
import pytest_twisted

from images.bundle import bundle_stream
from images.manifest import Part
from images.testing import (
    char_device,
    fifo,
    gzip_bomb,
    hardlink,
    rebuild_manifest,
    symlink,
    tar_header,
    tar_with_members,
)
from tests.conftest import live_server
from tests.functional.test_images import new_user
from tests.helpers import unchanged
from tests.imaging import (
    cloud_certificate,
    list_images,
    make_bundle,
    random_image,
    register,
    upload_bundle,
    wait_settled,
)
from tests.s3http import call

PAYLOAD = b"an image that is not what it claims" * 100
PART_SIZE = 64 * 1024


def tar_bundle(tar, size=len(PAYLOAD)):
    """A maker of a bundle holding the tar stream *tar*, declaring *size*."""

    def make(server, user, folder):
        return bundle_stream(io.BytesIO(tar), folder, prefix="image.img", size=size, **_signing(server, user))

    return make


def _signing(server, user):
    return dict(
        user_id=user.user_id,
        cloud_certificate=cloud_certificate(server),
        user_certificate=user.certificate,
        user_private_key=user.private_key,
        part_size=PART_SIZE,
    )


def bomb_bundle(server, user, folder):
    """2 GiB of zeros after an honest header: a few MiB of gzip."""
    bomb = gzip_bomb(2 * 1024**3, prefix=tar_header("image.img", len(PAYLOAD)) + PAYLOAD)
    return bundle_stream(
        bomb,
        folder,
        prefix="image.img",
        size=len(PAYLOAD),
        gzipped=True,
        image_digest="0" * 40,
        **{**_signing(server, user), "part_size": 10 * 1024 * 1024},
    )


def honest_bundle(server, user, folder):
    image = random_image(os.path.join(folder, "..", "honest.img"), 200_000)
    return make_bundle(server, user, image, folder, part_size=PART_SIZE)


def tampered(change):
    """A maker of an honest bundle, then changed by *change(result, user)* (which rewrites files)."""

    def make(server, user, folder):
        result = honest_bundle(server, user, folder)
        change(result, user)
        return result

    return make


def _rewrite_manifest(result, user, **changes):
    with open(result.manifest_path, "wb") as f:
        f.write(rebuild_manifest(result.manifest, private_key=user.private_key, **changes))


def _flip_a_byte_of_part_1(result, user):
    with open(result.part_paths[1], "r+b") as f:
        f.seek(10)
        byte = f.read(1)
        f.seek(10)
        f.write(bytes([byte[0] ^ 0xFF]))


def _wrong_image_digest(result, user):
    _rewrite_manifest(result, user, image_digest="1" * 40)


def _truncate_last_part(result, user):
    path = result.part_paths[-1]
    with open(path, "rb") as f:
        data = f.read()[:-5]
    with open(path, "wb") as f:
        f.write(data)
    parts = list(result.manifest.parts)
    parts[-1] = Part(parts[-1].index, parts[-1].filename, hashlib.sha1(data).hexdigest())
    _rewrite_manifest(result, user, parts=parts)


FAILING = {
    "traversal": (tar_bundle(tar_with_members([("../../evil", PAYLOAD)])), r"'\.\.' in its name"),
    "absolute path": (tar_bundle(tar_with_members([("/tmp/objectstore-evil", PAYLOAD)])), "absolute name"),
    "symlink then a file through it": (
        tar_bundle(tar_with_members([symlink("l", "/tmp"), ("l/objectstore-evil", PAYLOAD)])),
        "symbolic link",
    ),
    "hard link": (tar_bundle(tar_with_members([hardlink("image.img", "/etc/passwd")])), "hard link"),
    "device node": (tar_bundle(tar_with_members([char_device("image.img")])), "character device"),
    "fifo": (tar_bundle(tar_with_members([fifo("image.img")])), "FIFO"),
    "extra member": (
        tar_bundle(tar_with_members([("image.img", PAYLOAD), ("evil", PAYLOAD)])),
        "second member 'evil'",
    ),
    "gzip bomb": (bomb_bundle, "expands to more than"),
    "wrong part digest": (tampered(_flip_a_byte_of_part_1), r"part 1 .* does not match"),
    "wrong image digest": (tampered(_wrong_image_digest), "does not match the digest in its manifest"),
    "truncated part": (tampered(_truncate_last_part), "AES blocks|padding|ends early|gzip"),
}


def everything_but_the_store(root):
    """Every path under *root* (the test's folder) outside the store's own blobs, spool and index."""
    found = set()
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            rel = os.path.relpath(os.path.join(folder, name), root)
            if not rel.startswith(("data/blobs", "data/tmp", "data/meta.sqlite")):
                found.add(rel)
    return found


@pytest.mark.parametrize("case", FAILING, ids=list(FAILING))
@pytest_twisted.ensureDeferred
async def test_a_hostile_bundle_fails_with_its_reason_and_writes_nowhere(tmp_path, case):
    make, reason = FAILING[case]
    async with live_server(tmp_path) as server:
        user = await new_user(server, "mallory")
        s3 = server.boto3(user.keys)
        await server.blocking(s3.create_bucket, Bucket="bundles")
        folder = tmp_path / "bundle"
        folder.mkdir()
        result = await server.blocking(make, server, user, str(folder))
        location = await server.blocking(upload_bundle, s3, "bundles", result)
        before = everything_but_the_store(tmp_path)

        response, answer = await register(server, location, user.keys)
        assert response.code == 200, answer
        image = await wait_settled(server, answer["imageId"], user.keys)

        assert image["imageState"] == "failed", image
        assert re.search(reason, image["stateReason"]), image["stateReason"]
        after = everything_but_the_store(tmp_path)
        assert after == before, after ^ before
        assert os.listdir(os.path.join(server.data_dir, "images")) == []
        assert not os.path.lexists("/tmp/objectstore-evil")
        # Still serving.
        response, _ = await call(server, "GET", "/_images/cloud-cert.pem", keys=None)
        assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_a_part_name_reaching_outside_the_bundle_is_refused_at_registration(tmp_path):
    """nova bug 885167: a part named ``../other/secret`` must never be read."""
    async with live_server(tmp_path) as server:
        user = await new_user(server, "mallory")
        s3 = server.boto3(user.keys)
        await server.blocking(s3.create_bucket, Bucket="bundles")
        folder = tmp_path / "bundle"
        folder.mkdir()
        result = await server.blocking(honest_bundle, server, user, str(folder))
        parts = [Part(0, "../secret", result.manifest.parts[0].digest), *result.manifest.parts[1:]]
        _rewrite_manifest(result, user, parts=parts)
        location = await server.blocking(upload_bundle, s3, "bundles", result, "in/")
        async with unchanged(server):
            response, answer = await register(server, location, user.keys)
            assert (response.code, answer) == (400, "InvalidManifest")
        assert await list_images(server, user.keys) == {}
