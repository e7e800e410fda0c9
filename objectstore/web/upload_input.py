"""What an upload (PutObject, CreateMultipartUpload, the copies) sends besides its bytes.

Shared by ObjectResource and the multipart operations.
"""

import base64
import binascii
import quopri
import re
from urllib.parse import unquote_to_bytes

from objectstore.errors import InvalidArgument, InvalidRequest, MetadataTooLarge
from objectstore.storage.names import check_key, decode_key
from objectstore.web.awschunked import strip_aws_chunked
from objectstore.web.body import BufferedBody

# Content headers stored with an object and returned as they were sent.
CONTENT_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
)
META_PREFIX = "x-amz-meta-"
MAX_METADATA_BYTES = 2048


def no_copy_body():
    """The body of a copy request: none at all."""
    return BufferedBody(0, too_large=lambda: InvalidRequest("A copy request must not have a body."))


def is_chunked(request):
    encoding = request.getHeaderText(b"Transfer-Encoding", "")
    return "chunked" in encoding.lower()


def lower_headers(request):
    return {
        name.decode("latin-1").lower(): values[-1].decode("latin-1")
        for name, values in request.requestHeaders.getAllRawHeaders()
    }


def content_headers(request):
    """The content headers and x-amz-meta-* an upload carries."""
    headers, metadata = {}, {}
    size = 0
    for name, values in request.requestHeaders.getAllRawHeaders():
        lower = name.decode("latin-1").lower()
        value = values[-1].decode("utf-8", "replace")
        if lower == "content-encoding":
            # aws-chunked describes the request's framing, not the object.
            value = strip_aws_chunked(value)
            if value:
                headers[lower] = value
        elif lower in CONTENT_HEADERS:
            headers[lower] = value
        elif lower.startswith(META_PREFIX):
            short = lower[len(META_PREFIX) :]
            metadata[short] = value = metadata_value(values[-1])
            size += len(short.encode()) + len(value.encode())
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLarge(Size=size, MaxSizeAllowed=MAX_METADATA_BYTES)
    return headers, metadata


# A value made of RFC 2047 encoded-words alone (whitespace between them is dropped).
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_ENCODED_WORDS = re.compile(rb"\s*(?:=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=\s*)+")


def metadata_value(raw):
    """An x-amz-meta-* value as stored: RFC 2047 encoded-words decoded (as AWS does), other bytes
    read as UTF-8 (what botocore sends) or, when they are not UTF-8, as ISO-8859-1.

    (GET sends it back encoded again where it is not printable US-ASCII: ``metadata_header``.)
    """
    if b"=?" in raw and _ENCODED_WORDS.fullmatch(raw):
        try:
            return "".join(_decoded_word(*word) for word in _ENCODED_WORD.findall(raw))
        except (LookupError, ValueError, binascii.Error):
            pass  # not decodable after all: kept as sent
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decoded_word(charset, encoding, text):
    if encoding in b"Bb":
        data = base64.b64decode(text, validate=True)
    else:
        data = quopri.decodestring(text, header=True)
    return data.decode(charset.decode("ascii").partition("*")[0])


def metadata_header(value):
    """A stored metadata value as a header: as it is when printable US-ASCII, else (as AWS answers
    it) one RFC 2047 "Q" encoded-word over its UTF-8: ``\x04mymeta`` is ``=?UTF-8?Q?=04mymeta?=``.
    """
    if _PRINTABLE_ASCII.fullmatch(value):
        return value.encode("ascii")
    encoded = b"".join(_Q_WORD[byte] for byte in value.encode("utf-8"))
    return b"=?UTF-8?Q?" + encoded + b"?="


_PRINTABLE_ASCII = re.compile("[\t\x20-\x7e]*")
# RFC 2047 section 5 (3): letters, digits and !*+-/ as they are, a space as "_", any other byte =XX.
_Q_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")
_Q_WORD = [bytes([b]) if b in _Q_SAFE else b"_" if b == 0x20 else b"=%02X" % b for b in range(256)]


def copy_source(header):
    """(bucket, key) of an x-amz-copy-source header (URL-encoded, leading / optional).

    *header* is the raw bytes: the key is decoded exactly as a request path's
    is, so a key that is not UTF-8 text is refused here as it is there.
    """
    path = unquote_to_bytes(header.split(b"?", 1)[0]).lstrip(b"/")
    bucket, slash, key = path.partition(b"/")
    if not bucket or not slash or not key:
        raise InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=header.decode("latin-1"),
        )
    return bucket.decode("utf-8", "replace"), check_key(decode_key(key))
