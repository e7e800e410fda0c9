"""What a registered image is, and how its id looks."""

import re
import secrets
from dataclasses import dataclass
from typing import Optional

# Registration moves an image through these; only AVAILABLE ones have a file.
PENDING = "pending"
DECRYPTING = "decrypting"
UNTARRING = "untarring"
AVAILABLE = "available"
FAILED = "failed"
IN_FLIGHT = (PENDING, DECRYPTING, UNTARRING)

# The id prefix of each image type, as EC2 names them.
ID_PREFIXES = {"machine": "ami", "kernel": "aki", "ramdisk": "ari"}
_IMAGE_ID = re.compile(r"(ami|aki|ari)-[0-9a-f]{8}")


def new_image_id(image_type):
    return f"{ID_PREFIXES[image_type]}-{secrets.token_hex(4)}"


def is_image_id(text):
    return bool(text) and _IMAGE_ID.fullmatch(text) is not None


def id_matches_type(image_id, image_type):
    return image_id.startswith(ID_PREFIXES[image_type] + "-")


@dataclass(frozen=True)
class Image:
    id: str
    location: str  # bucket/key of the manifest
    owner: str  # the registering user's canonical id
    name: str
    description: str
    type: str  # machine | kernel | ramdisk
    architecture: str
    kernel_id: str
    ramdisk_id: str
    # ((virtual name, device), ...) from the manifest.
    block_devices: tuple
    is_public: bool
    state: str
    reason: str  # why registration failed; None otherwise
    size: int  # the image file's bytes, once available
    sha1: str  # the tar stream's SHA1 the manifest declared and the registry checked
    signature_verified: bool
    created: float
    # Why the image file's bytes were found damaged (None: never); a damaged image is not served.
    damage: Optional[str] = None
    # zlib's CRC32 of the image file, recorded as it was unpacked (None for one unpacked before).
    crc32: Optional[int] = None

    @property
    def available(self):
        return self.state == AVAILABLE

    @property
    def in_flight(self):
        return self.state in IN_FLIGHT


def visible_to(image, user):
    """May *user* (None: anonymous) see and download *image*?"""
    if image.is_public:
        return True
    return user is not None and (user.admin or user.id == image.owner)


def manageable_by(image, user):
    """May *user* change or deregister *image*? Its owner and admins only."""
    return user is not None and (user.admin or user.id == image.owner)
