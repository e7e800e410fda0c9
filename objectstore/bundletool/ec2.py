"""The EC2 Query API calls the tool makes: POSTed forms, signed with SigV4 for the ``ec2`` service."""

from dataclasses import dataclass
from urllib.parse import quote

from objectstore import xmlio
from objectstore.bundletool.transport import MAX_ANSWER, ToolError
from objectstore.errors import S3Error

API_VERSION = "2016-11-15"


@dataclass(frozen=True)
class ImageState:
    state: str
    reason: str | None


class Ec2:
    def __init__(self, http, url):
        self.http = http
        self.url = url

    async def call(self, action, parameters, idempotent=True):
        """The response document of *action*; a refusal is a ServiceError with EC2's code."""
        form = {"Action": action, "Version": API_VERSION, **{k: v for k, v in parameters.items() if v is not None}}
        body = "&".join(f"{quote(name, safe='')}={quote(str(value), safe='-_.~')}" for name, value in form.items())
        reply = await self.http.request(
            "POST",
            self.url,
            service="ec2",
            headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
            body=body.encode("ascii"),
            idempotent=idempotent,
        )
        try:
            return xmlio.parse(reply.body, MAX_ANSWER)
        except S3Error:
            raise ToolError(f"the answer to {action} is not well-formed XML") from None

    async def register_image(
        self, location, *, name=None, description=None, architecture=None, kernel_id=None, ramdisk_id=None
    ):
        root = await self.call(
            "RegisterImage",
            {
                "ImageLocation": location,
                "Name": name,
                "Description": description,
                "Architecture": architecture,
                "KernelId": kernel_id,
                "RamdiskId": ramdisk_id,
            },
            # Run twice, it would register two images: retried only if the server cannot have acted.
            idempotent=False,
        )
        image_id = root.findtext("{*}imageId")
        if not image_id:
            raise ToolError("the RegisterImage answer carries no imageId")
        return image_id

    async def image_state(self, image_id):
        root = await self.call("DescribeImages", {"ImageId.1": image_id})
        item = root.find("{*}imagesSet/{*}item")
        if item is None:
            raise ToolError(f"{image_id} is not listed any more (deregistered meanwhile?)")
        return ImageState(item.findtext("{*}imageState"), item.findtext("{*}stateReason/{*}message"))
