"""Tag sets (``<Tagging><TagSet><Tag>``): read from a client's document, checked as S3 checks them, and written back.

S3's rules: a key of 1 to 128 characters, a value of up to 256, no key
twice, none beginning with ``aws:`` (S3's own), and at most 50 tags on a
bucket (10 on an object). A document that breaks one is InvalidTag and
changes nothing.
"""

from objectstore import xmlio
from objectstore.errors import InvalidTag, MalformedXML

TAGGING_BODY_LIMIT = 64 * 1024
MAX_BUCKET_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256


def parse_tag_set(body: bytes, max_tags: int) -> list[tuple[str, str]]:
    """The tags of a ``Tagging`` document, in their order; MalformedXML or InvalidTag."""
    root = xmlio.parse(body, TAGGING_BODY_LIMIT)
    tag_sets = xmlio.children(root, "TagSet")
    if xmlio.local(root) != "Tagging" or len(tag_sets) != 1:
        raise MalformedXML()
    tags: list[tuple[str, str]] = []
    for tag in xmlio.children(tag_sets[0], "Tag"):
        key, value = xmlio.child_text(tag, "Key"), xmlio.child_text(tag, "Value")
        if key is None or value is None:
            raise MalformedXML()
        tags.append((key, value))
    if len(tags) > max_tags:
        raise InvalidTag(f"The TagSet cannot contain more than {max_tags} tags.")
    seen = set()
    for key, value in tags:
        if not 1 <= len(key) <= MAX_KEY:
            raise InvalidTag("The TagKey you have provided is invalid", TagKey=key)
        if len(value) > MAX_VALUE:
            raise InvalidTag("The TagValue you have provided is invalid", TagKey=key, TagValue=value)
        if key.lower().startswith("aws:"):
            raise InvalidTag("System tags cannot be added/updated by requester", TagKey=key)
        if key in seen:
            raise InvalidTag("Cannot provide multiple Tags with the same key", TagKey=key)
        seen.add(key)
    return tags


def tagging_document(tags: list[tuple[str, str]]):
    root = xmlio.element("Tagging")
    tag_set = xmlio.sub(root, "TagSet")
    for key, value in tags:
        tag = xmlio.sub(tag_set, "Tag")
        xmlio.sub(tag, "Key", key)
        xmlio.sub(tag, "Value", value)
    return root
