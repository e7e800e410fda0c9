"""The nova-compatible image API at ``/_images``.

``GET /_images/`` lists the images a caller may see (JSON, nova's field
names); ``PUT /_images/?image_location=B/K[&image_id=ID]`` registers a
bundle; ``POST /_images/?image_id=ID&operation=add|remove`` makes an image
public or private (without ``operation``: sets display_name /
description); ``DELETE /_images/?image_id=ID`` deregisters it.
``GET /_images/ID`` (or ``/_images/ID/image``) streams an available
image, ranges included; ``GET /_images/cloud-cert.pem`` is the certificate
bundles are encrypted for. Requests are signed as S3 requests are; errors
are S3 error documents with EC2's codes.
"""

import json
import os

from objectstore.errors import (
    AccessDenied,
    ImageNotFound,
    IncorrectImageState,
    InvalidParameterValue,
    InvalidURI,
    MissingParameter,
    ObjectDamaged,
)
from objectstore.registry.records import visible_to
from objectstore.storage.integrity import CRC32, Check, Verifier, VerifyingBody
from objectstore.web.access import require_user
from objectstore.web.conditions import parse_range
from objectstore.web.formats import http_date
from objectstore.web.resource import S3Resource, arg, client_gone, operation, send_empty
from objectstore.web.streaming import BodyProducer

PREFIX = b"/_images"
CLOUD_CERT = b"cloud-cert.pem"


def image_resource(app, request):
    """The resource for a path under /_images/ (None for a path outside it).

    ``/_images`` itself, without the slash, stays what it would be without
    the registry: a bucket that cannot exist (InvalidBucketName on create).
    """
    path = request.path
    if not path.startswith(PREFIX + b"/"):
        return None
    rest = path[len(PREFIX) :].strip(b"/")
    if not rest:
        return ImageListResource(app)
    if rest == CLOUD_CERT:
        return CloudCertResource(app)
    image_id, _, tail = rest.partition(b"/")
    if tail not in (b"", b"image"):
        return UnknownImagePath(app)
    return ImageFileResource(app, image_id.decode("latin-1"))


def describe(image, progress=None):
    """An image as nova's S3 image service lists it, and how far its registration has got (0-100)."""
    return {
        "imageId": image.id,
        "imageLocation": image.location,
        "imageOwnerId": image.owner,
        "imageState": image.state,
        "imageType": image.type,
        "type": image.type,
        "architecture": image.architecture,
        "isPublic": image.is_public,
        "kernelId": image.kernel_id,
        "ramdiskId": image.ramdisk_id,
        "displayName": image.name,
        "description": image.description,
        "size": image.size,
        "stateReason": image.reason,
        "progress": progress,
        "signatureVerified": image.signature_verified,
        "blockDeviceMapping": [{"virtualName": v, "deviceName": d} for v, d in image.block_devices],
    }


def send_json(request, value, status=200):
    if client_gone(request):
        return
    body = json.dumps(value).encode("utf-8")
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.write(body)
    request.finish()


class ImageListResource(S3Resource):
    resource_type = "IMAGES"

    @property
    def registrar(self):
        return self.app.registrar

    @operation("GET")
    async def list_images(self, request):
        images = self.registrar.visible(request.caller.user)
        send_json(request, [describe(image, self.registrar.progress(image)) for image in images])

    @operation("PUT")
    async def register_image(self, request):
        user = require_user(request)
        location = _required(request, "image_location")
        image = await self.registrar.register(user, location, image_id=arg(request, "image_id"))
        send_json(request, {"imageId": image.id, "imageState": image.state})

    @operation("POST")
    async def change_image(self, request):
        user = require_user(request)
        image_id = _required(request, "image_id")
        operation_name = arg(request, "operation")
        if operation_name is not None:
            if operation_name not in ("add", "remove"):
                raise InvalidParameterValue(f"Unknown operation {operation_name!r}: expected add or remove.")
            changes = {"is_public": operation_name == "add"}
        else:
            changes = {
                field: arg(request, parameter)
                for parameter, field in (("display_name", "name"), ("description", "description"))
                if arg(request, parameter) is not None
            }
        image = await self.registrar.change(user, image_id, **changes)
        send_json(request, describe(image, self.registrar.progress(image)))

    @operation("DELETE")
    async def deregister_image(self, request):
        user = require_user(request)
        await self.registrar.deregister(user, _required(request, "image_id"))
        send_empty(request, 204)


class ImageFileResource(S3Resource):
    """An image's bytes, for the hypervisors that boot it."""

    resource_type = "IMAGE"

    def __init__(self, app, image_id):
        super().__init__(app)
        self.image_id = image_id

    @operation("GET")
    async def get_image(self, request):
        registrar = self.app.registrar
        image = registrar.get(self.image_id)
        if not visible_to(image, request.caller.user):
            raise AccessDenied()
        if not image.available:
            raise IncorrectImageState(f"The image {image.id} is {image.state}, not available.", ImageId=image.id)
        if image.damage is not None:
            raise ObjectDamaged()
        try:
            file = _ImageFile(registrar.image_path(image))
        except FileNotFoundError:
            # Deregistered since the lookup.
            raise ImageNotFound(ImageId=image.id) from None
        body = _verifying(file, image, registrar)
        try:
            size = file.size
            span = parse_range(request.getHeaderText(b"Range"), size)
            start, end = (0, size - 1) if span is None else span
            if span is not None:
                request.setResponseCode(206)
                request.setHeader(b"Content-Range", b"bytes %d-%d/%d" % (start, end, size))
            request.setHeader(b"Content-Type", b"application/octet-stream")
            request.setHeader(b"Content-Length", b"%d" % (end - start + 1))
            request.setHeader(b"Accept-Ranges", b"bytes")
            request.setHeader(b"ETag", f'"{image.sha1}"'.encode())
            request.setHeader(b"Last-Modified", http_date(image.created).encode())
        except BaseException:
            body.close()
            raise
        if request.method == b"HEAD" or end < start:
            body.close()
            request.finish()
            return
        BodyProducer(request, body, start, end).start()


class UnknownImagePath(S3Resource):
    """A path under /_images that names nothing: never a bucket called _images."""

    resource_type = "IMAGE"

    def prepare(self, request, length):
        raise InvalidURI("No such path under /_images.")


class CloudCertResource(S3Resource):
    resource_type = "CLOUD_CERTIFICATE"

    @operation("GET")
    async def get_certificate(self, request):
        pem = self.app.registrar.cloud_key.certificate_pem()
        request.setHeader(b"Content-Type", b"application/x-pem-file")
        request.setHeader(b"Content-Length", b"%d" % len(pem))
        request.write(pem)
        request.finish()


def _required(request, name):
    value = arg(request, name)
    if not value:
        raise MissingParameter(f"The request must contain the parameter {name}.", ParameterName=name)
    return value


def _verifying(file, image, registrar):
    """*file*, checked against *image*'s CRC32 as it is read whole (cut before its last byte if it fails).

    A range is not checked: the background scrub reads every image whole
    within its pass. An image unpacked before CRCs were kept has none until
    its first scrub records one.
    """
    if image.crc32 is None or file.size != image.size:
        return file
    reactor = registrar.reactor
    return VerifyingBody(
        file,
        Verifier([Check(0, image.size, lambda: CRC32(image.crc32), "its file's bytes")]),
        damaged=lambda what: reactor.callFromThread(registrar.quarantine, image, what),
        unverified=lambda: None,
    )


class _ImageFile:
    """An image file opened for streaming (BodyProducer's body: read(offset, length), close())."""

    def __init__(self, path):
        self._fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        self.size = os.fstat(self._fd).st_size

    def read(self, offset, length):
        return os.pread(self._fd, length, offset)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
