"""What an upload (PutObject, CreateMultipartUpload, the copies) sends besides its bytes.

Shared by ObjectResource and the multipart operations.
"""

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
            metadata[short] = value
            size += len(short.encode()) + len(value.encode())
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLarge(Size=size, MaxSizeAllowed=MAX_METADATA_BYTES)
    return headers, metadata


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
