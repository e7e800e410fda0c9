"""Image bundles for the registry's tests: made with ``images``, uploaded and registered for real."""

import json
import os
import time
from urllib.parse import quote

from twisted.internet import reactor, task

from images import crypto
from images.bundle import bundle_image
from tests.s3http import call, error_code

# How long a test waits for a registration to settle.
REGISTRATION_SECONDS = 60.0


class UserKeys:
    """A user's S3 keys, and the certificate and private key they bundle with."""

    def __init__(self, keys, user_id, name):
        self.keys = keys
        self.user_id = user_id
        key_pem, cert_pem = crypto.new_key_and_certificate(name)
        self.key_pem, self.cert_pem = key_pem, cert_pem
        self.private_key = crypto.load_private_key(key_pem)
        self.certificate = crypto.load_certificate(cert_pem)


def cloud_certificate(server):
    return crypto.load_certificate(server.site.resource.registrar.cloud_key.certificate_pem())


def random_image(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1024 * 1024))
            f.write(chunk)
            left -= len(chunk)
    return path


def make_bundle(server, user, image_path, destination, **options):
    """bundle_image for *user*, encrypted for the server's cloud certificate (blocking)."""
    os.makedirs(destination, exist_ok=True)
    return bundle_image(
        image_path,
        destination,
        user_id=user.user_id,
        cloud_certificate=cloud_certificate(server),
        user_certificate=user.certificate,
        user_private_key=user.private_key,
        **options,
    )


def upload_bundle(s3, bucket, result, folder="", acl="aws-exec-read"):
    """Put the parts, then the manifest (as euca-upload-bundle does) with boto3; the manifest's location."""
    for path in [*result.part_paths, result.manifest_path]:
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=folder + os.path.basename(path), Body=f, ACL=acl)
    return f"{bucket}/{folder}{os.path.basename(result.manifest_path)}"


async def register(server, location, keys, image_id=None):
    """(response, JSON or error code) of ``PUT /_images/?image_location=...``."""
    path = f"/_images/?image_location={quote(location, safe='/')}"
    if image_id is not None:
        path += f"&image_id={quote(image_id)}"
    response, content = await call(server, "PUT", path, keys=keys)
    return response, _decoded(response, content)


async def list_images(server, keys):
    response, content = await call(server, "GET", "/_images/", keys=keys)
    assert response.code == 200, content
    return {image["imageId"]: image for image in json.loads(content)}


async def wait_settled(server, image_id, keys, seconds=REGISTRATION_SECONDS):
    """Poll the listing until *image_id* is available or failed; its last description."""
    deadline = time.monotonic() + seconds
    while True:
        image = (await list_images(server, keys)).get(image_id)
        assert image is not None, f"{image_id} is not listed"
        if image["imageState"] in ("available", "failed"):
            return image
        assert time.monotonic() < deadline, f"{image_id} still {image['imageState']} after {seconds} s"
        await task.deferLater(reactor, 0.05, lambda: None)


def _decoded(response, content):
    if response.code >= 300:
        return error_code(content) if content else None
    return json.loads(content) if content else None
