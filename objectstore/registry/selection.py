"""Which images a DescribeImages call names: ids, owners, launch permissions and filters.

EC2's rules: the images returned are those the caller may launch (their
own, public ones; admins: all), narrowed by every kind of criterion given;
within a kind, any value may match (``ImageId.1`` or ``ImageId.2``), and a
filter value may use ``*`` and ``?`` wildcards.
"""

import re

from objectstore.errors import InvalidParameterValue
from objectstore.registry.records import visible_to

# Filter name -> the image's value(s) it compares, as text.
FILTERS = {
    "image-id": lambda image: image.id,
    "image-type": lambda image: image.type,
    "state": lambda image: image.state,
    "is-public": lambda image: "true" if image.is_public else "false",
    "name": lambda image: image.name,
    "owner-id": lambda image: image.owner,
    "architecture": lambda image: image.architecture,
    "description": lambda image: image.description,
    "kernel-id": lambda image: image.kernel_id or "",
    "ramdisk-id": lambda image: image.ramdisk_id or "",
    "manifest-location": lambda image: image.location,
}


def select(images, user, *, image_ids=(), owners=(), executable_by=(), filters=()):
    """The images of *images* that *user* may see and the criteria keep, in their order.

    *filters* is a sequence of (name, [values]); unknown names are refused,
    as EC2 refuses them.
    """
    for name, _ in filters:
        if name not in FILTERS:
            raise InvalidParameterValue(f"The filter '{name}' is invalid")
    matchers = [(FILTERS[name], [_wildcard(value) for value in values]) for name, values in filters]
    kept = []
    for image in images:
        if not visible_to(image, user):
            continue
        if image_ids and image.id not in image_ids:
            continue
        if owners and not any(_owned_by(image, owner, user) for owner in owners):
            continue
        if executable_by and not any(_executable_by(image, who, user) for who in executable_by):
            continue
        if not all(any(m.fullmatch(value_of(image)) for m in patterns) for value_of, patterns in matchers):
            continue
        kept.append(image)
    return kept


def _owned_by(image, owner, user):
    if owner == "self":
        return user is not None and image.owner == user.id
    return image.owner == owner


def _executable_by(image, who, user):
    """``all``: public images; ``self``: those *user* may launch; an account id: those it may."""
    if who == "all":
        return image.is_public
    if who == "self":
        return user is not None and (image.is_public or image.owner == user.id or user.admin)
    return image.is_public or image.owner == who


def _wildcard(value):
    """A filter value as a pattern: ``*`` any run of characters, ``?`` one; nothing else is special."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value), re.DOTALL)
