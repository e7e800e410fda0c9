"""AWS Signature Version 2 (S3's HMAC-SHA1 scheme), as clients compute it.

StringToSign = METHOD \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
               x-amz-* headers (lower-cased, sorted, "name:value\\n" each)
               canonical resource (path, plus the sub-resources S3 signs)
"""

import base64
import hmac
from collections.abc import Mapping, Sequence
from typing import Optional

from objectstore.auth.sigv4 import unquote_plus_bytes

# Query parameters that are part of the canonical resource (botocore's
# HmacV1Auth list, which follows S3's documentation).
SUBRESOURCES = frozenset(
    "accelerate acl analytics cors defaultObjectAcl delete encryption intelligent-tiering inventory "
    "legal-hold lifecycle location logging metrics notification object-lock ownershipControls partNumber "
    "policy publicAccessBlock replication requestPayment response-cache-control response-content-disposition "
    "response-content-encoding response-content-language response-content-type response-expires restore "
    "retention select select-type storageClass tagging torrent uploadId uploads versionId versioning versions "
    "website".split()
)


def canonical_resource(
    path: bytes, query: bytes, bucket: Optional[str] = None, with_subresources: bool = True
) -> bytes:
    """The resource line: ``/bucket`` (virtual-host style) + the raw path + signed sub-resources.

    *path* and *query* are the raw bytes of the request target. Sub-resource
    values are signed decoded (``+`` a space, as S3 reads a query), names sorted.
    """
    resource = (b"/" + bucket.encode() if bucket else b"") + path
    if with_subresources and query:
        pairs = []
        for part in query.split(b"&"):
            name, eq, value = part.partition(b"=")
            if name.decode("latin-1") in SUBRESOURCES:
                pairs.append((name, eq + unquote_plus_bytes(value)))
        if pairs:
            pairs.sort(key=lambda pair: pair[0])
            resource += b"?" + b"&".join(name + value for name, value in pairs)
    return resource


def string_to_sign(method: str, headers: Mapping[str, Sequence[str]], resource: bytes, date: str) -> bytes:
    """*headers*: ``{lower-case name: [values]}`` as text; *date*: the Date (or Expires) line."""
    lines = [method, _first(headers, "content-md5"), _first(headers, "content-type"), date]
    amz = sorted(
        (name, ",".join(v.strip() for v in values)) for name, values in headers.items() if name.startswith("x-amz-")
    )
    text = "\n".join(lines) + "\n" + "".join(f"{name}:{value}\n" for name, value in amz)
    # Header text is latin-1 decoded from the wire: encoding it back gives the bytes as sent.
    return text.encode("latin-1") + resource


def signature(secret: str, to_sign: bytes) -> str:

    return base64.b64encode(hmac.digest(secret.encode(), to_sign, "sha1")).decode()


def _first(headers, name):
    values = headers.get(name)
    return values[0].strip() if values else ""
