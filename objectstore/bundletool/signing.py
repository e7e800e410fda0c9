"""Signing the tool's requests with AWS Signature Version 4, for S3 and for EC2.

The canonical forms are the server's own (``objectstore.auth.sigv4``): one
definition of what is signed, used on both sides.
"""

import time
from urllib.parse import urlsplit

from objectstore.auth import sigv4


def signed_headers(method, url, headers, payload_sha256, keys, region, service, now=None):
    """*headers* plus Host, X-Amz-Date, (for S3) X-Amz-Content-SHA256, and Authorization.

    *url*'s path and query must already be percent-encoded as they will be
    sent. Every header given is signed.
    """
    parts = urlsplit(url)
    timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    result = {name.lower(): value for name, value in headers.items()}
    result["host"] = parts.netloc
    result["x-amz-date"] = timestamp
    if service == "s3":
        result["x-amz-content-sha256"] = payload_sha256
    names = sorted(result)
    canonical = sigv4.canonical_request(
        method,
        parts.path or "/",
        sigv4.canonical_query(parts.query.encode("ascii")),
        {name: [result[name]] for name in names},
        names,
        payload_sha256,
    )
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    signature = sigv4.signature(
        sigv4.signing_key(keys.secret_key, date, region, service),
        sigv4.string_to_sign(timestamp, scope, canonical),
    )
    credential = f"{keys.access_key}/{scope}"
    result["authorization"] = (
        f"{sigv4.ALGORITHM} Credential={credential}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return result
