"""AWS Signature Version 4, header form, for the load generator.

Kept to a few hash calls per request (the signing key is cached per day and
the timestamp per second) so that signing never becomes what the benchmark
measures.  ``python -m bench.sigv4`` checks it against AWS's published S3
examples and, when botocore is installed, against botocore's signer.
"""

import hashlib
import hmac
import time
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def encode_path(path):
    """Percent-encode a path the way S3 canonicalises it (once, '/' kept).

    The same string must go on the request line and into the signature, so
    the client uses this function for both.
    """
    return quote(path, safe="/~")


def encode_query(params):
    """Canonical query string: sorted, every name and value RFC 3986 encoded."""
    return "&".join(f"{quote(str(k), safe='-_.~')}={quote(str(v), safe='-_.~')}" for k, v in sorted(params))


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Signer:
    def __init__(self, access_key, secret_key, region="us-east-1", service="s3"):
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.service = service
        self._key_day = None
        self._key = None
        self._date_second = None
        self._amz_date = None

    def _signing_key(self, day):
        if day != self._key_day:
            key = _hmac(("AWS4" + self.secret_key).encode(), day)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            self._key_day, self._key = day, key
        return self._key

    def _now(self):
        second = int(time.time())
        if second != self._date_second:
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._date_second = second
        return self._amz_date

    def sign(self, method, encoded_path, encoded_query, headers, payload_hash, amz_date=None):
        """Return a copy of ``headers`` with the SigV4 headers added.

        ``headers`` must already hold ``host``; every header passed is signed.
        ``encoded_path`` / ``encoded_query`` are the exact strings sent on the
        request line (see encode_path / encode_query).
        """
        amz_date = amz_date or self._now()
        day = amz_date[:8]
        signed = dict(headers)
        signed["x-amz-date"] = amz_date
        signed["x-amz-content-sha256"] = payload_hash
        canon = sorted((k.lower(), " ".join(str(v).split())) for k, v in signed.items())
        signed_names = ";".join(k for k, _ in canon)
        canonical_request = "\n".join(
            (
                method,
                encoded_path,
                encoded_query,
                "".join(f"{k}:{v}\n" for k, v in canon),
                signed_names,
                payload_hash,
            )
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        string_to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                sha256_hex(canonical_request.encode()),
            )
        )
        signature = hmac.new(self._signing_key(day), string_to_sign.encode(), hashlib.sha256).hexdigest()
        signed["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )
        return signed


# The worked examples from AWS's "Signature Calculations for the Authorization
# Header" page for S3 (sig-v4-header-based-auth.html).
_AWS_EXAMPLES = [
    (
        "GET",
        "/test.txt",
        [],
        {"host": "examplebucket.s3.amazonaws.com", "range": "bytes=0-9"},
        EMPTY_SHA256,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    ),
    (
        "PUT",
        "/test$file.text",
        [],
        {
            "host": "examplebucket.s3.amazonaws.com",
            "date": "Fri, 24 May 2013 00:00:00 GMT",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
        },
        sha256_hex(b"Welcome to Amazon S3."),
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    ),
    (
        "GET",
        "/",
        [("lifecycle", "")],
        {"host": "examplebucket.s3.amazonaws.com"},
        EMPTY_SHA256,
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    ),
    (
        "GET",
        "/",
        [("max-keys", "2"), ("prefix", "J")],
        {"host": "examplebucket.s3.amazonaws.com"},
        EMPTY_SHA256,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    ),
]


def _signature(headers):
    return headers["Authorization"].rsplit("Signature=", 1)[1]


def _check_against_botocore():
    try:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError:
        return "botocore not installed; skipped"
    signer = Signer("AKID", "secret/with+chars", "us-east-1")
    amz_date = "20240102T030405Z"
    cases = [
        ("PUT", "/bucket/dir/a key+é.bin", [], UNSIGNED_PAYLOAD),
        ("GET", "/bucket", [("list-type", "2"), ("max-keys", "1000"), ("continuation-token", "a/b+c=d")], EMPTY_SHA256),
        ("HEAD", "/bucket/k", [], EMPTY_SHA256),
    ]
    for method, path, query, payload in cases:
        host = "127.0.0.1:9000"
        ours = signer.sign(method, encode_path(path), encode_query(query), {"host": host}, payload, amz_date=amz_date)
        # botocore encodes the query itself, so it is an independent witness.
        request = AWSRequest(
            method=method,
            url=f"http://{host}{quote(path)}",
            params=dict(query),
            headers={"X-Amz-Content-SHA256": payload, "X-Amz-Date": amz_date},
        )
        # add_auth() would stamp the current time, so drive its steps directly.
        request.context["timestamp"] = amz_date
        auth = S3SigV4Auth(Credentials("AKID", "secret/with+chars"), "s3", "us-east-1")
        canonical = auth.canonical_request(request)
        theirs = auth.signature(auth.string_to_sign(request, canonical), request)
        if _signature(ours) != theirs:
            raise AssertionError(f"botocore disagrees on {method} {path} {query}")
    return f"{len(cases)} requests match botocore"


def self_check():
    signer = Signer("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    for method, path, query, headers, payload, expected in _AWS_EXAMPLES:
        got = signer.sign(method, encode_path(path), encode_query(query), headers, payload, amz_date="20130524T000000Z")
        if _signature(got) != expected:
            raise AssertionError(f"AWS example {method} {path} {query}: {_signature(got)}")
    return [f"{len(_AWS_EXAMPLES)} AWS examples match", _check_against_botocore()]


if __name__ == "__main__":
    for line in self_check():
        print("sigv4:", line)
