"""ListObjects (v1) and ListObjectsV2 documents."""

import base64
import binascii
import re
from urllib.parse import quote

from lxml import etree

from objectstore import xmlio
from objectstore.errors import InvalidArgument
from objectstore.web.formats import iso8601, owner_element
from objectstore.web.resource import arg

MAX_KEYS = 1000


def max_keys_of(request):
    text = arg(request, "max-keys")
    if text is None:
        return MAX_KEYS
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(
            "Provided max-keys not an integer or within integer range", ArgumentName="max-keys", ArgumentValue=text
        ) from None
    if value < 0:
        raise InvalidArgument(
            "Argument maxKeys must be an integer between 0 and 2147483647", ArgumentName="maxKeys", ArgumentValue=text
        )
    return min(value, MAX_KEYS)


def encoder_of(request):
    encoding = arg(request, "encoding-type")
    if encoding is None:
        return lambda text: text
    if encoding.lower() != "url":
        raise InvalidArgument(
            "Invalid Encoding Method specified in Request", ArgumentName="encoding-type", ArgumentValue=encoding
        )
    return url_encode


def encode_token(position):
    return base64.urlsafe_b64encode(position.encode("utf-8")).decode("ascii")


def decode_token(token):
    # Strict: a lenient decoder drops stray characters and would silently
    # restart the listing from somewhere else instead of refusing the token.
    try:
        position = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        position = ""
    if not position:
        raise InvalidArgument("The continuation token provided is incorrect", ArgumentName="continuation-token")
    return position


# Characters XML 1.0 cannot carry at all (C0 controls but TAB, LF, CR; U+FFFE, U+FFFF).
_NOT_XML = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def url_encode(text: str) -> str:
    """A key, prefix or marker as encoding-type=url answers it: everything but "/" and the unreserved characters."""
    return quote(text, safe="/")


def key_text(parent, tag, value):
    """``<tag>value</tag>``, even when *value* holds characters XML 1.0 cannot carry.

    A key may hold any of them. AWS writes them as character references
    (``&#x1;``) when the client did not ask for ``encoding-type=url``: not
    XML 1.0, but it keeps the listing answering, where refusing to serialise
    would make one odd key fail every listing of the bucket.
    """
    element = xmlio.sub(parent, tag)
    pieces = _NOT_XML.split(value)
    element.text = pieces[0]
    for char, piece in zip(_NOT_XML.findall(value), pieces[1:], strict=True):
        reference = etree.Entity(f"#x{ord(char):X}")
        reference.tail = piece
        element.append(reference)
    return element


def v1_document(request, bucket, listing, prefix, delimiter, marker, max_keys, credentials):
    enc = encoder_of(request)
    root = xmlio.element("ListBucketResult")
    xmlio.sub(root, "Name", bucket)
    key_text(root, "Prefix", enc(prefix))
    key_text(root, "Marker", enc(marker))
    if listing.truncated and delimiter:
        key_text(root, "NextMarker", enc(listing.last))
    _tail(root, request, listing, delimiter, max_keys, enc, credentials, with_owner=True)
    return root


def v2_document(request, bucket, listing, prefix, delimiter, start_after, token, max_keys, fetch_owner, credentials):
    enc = encoder_of(request)
    root = xmlio.element("ListBucketResult")
    xmlio.sub(root, "Name", bucket)
    key_text(root, "Prefix", enc(prefix))
    if token is not None:
        key_text(root, "ContinuationToken", token)
    if listing.truncated:
        xmlio.sub(root, "NextContinuationToken", encode_token(listing.last))
    if start_after:
        key_text(root, "StartAfter", enc(start_after))
    xmlio.sub(root, "KeyCount", str(len(listing.entries) + len(listing.prefixes)))
    _tail(root, request, listing, delimiter, max_keys, enc, credentials, with_owner=fetch_owner)
    return root


def _tail(root, request, listing, delimiter, max_keys, enc, credentials, with_owner):
    """What both listing versions end with, in AWS's order."""
    page_terms(root, request, listing, delimiter, max_keys, enc)
    _contents(root, listing, enc, credentials, with_owner)


def page_terms(root, request, listing, delimiter, max_keys, enc):
    """MaxKeys, Delimiter, EncodingType and IsTruncated: what every listing of keys says before its entries."""
    xmlio.sub(root, "MaxKeys", str(max_keys))
    if delimiter:
        key_text(root, "Delimiter", enc(delimiter))
    if arg(request, "encoding-type"):
        xmlio.sub(root, "EncodingType", "url")
    xmlio.sub(root, "IsTruncated", _bool(listing.truncated))


def _contents(root, listing, enc, credentials, with_owner):
    for entry in listing.entries:
        item = xmlio.sub(root, "Contents")
        key_text(item, "Key", enc(entry.key))
        xmlio.sub(item, "LastModified", iso8601(entry.modified))
        xmlio.sub(item, "ETag", f'"{entry.etag}"')
        xmlio.sub(item, "Size", str(entry.size))
        if with_owner:
            owner_element(item, entry.owner, credentials)
        xmlio.sub(item, "StorageClass", "STANDARD")
    for prefix in listing.prefixes:
        key_text(xmlio.sub(root, "CommonPrefixes"), "Prefix", enc(prefix))


def _bool(value):
    return "true" if value else "false"
