"""AWS Signature Version 4 for S3: canonical request, signing key, chunk and trailer signatures.

Pure functions over the request as it arrived (raw path, raw query, header
values as sent), so they can be checked against AWS's published examples.
"""

import functools
import hashlib
import hmac
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = frozenset({STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER})

_SPACES = re.compile(r"\s+")


def canonical_uris(path: bytes) -> Iterator[str]:
    """The canonical URIs a client may have signed for a raw *path*, likeliest first.

    S3 clients sign the path as they sent it (botocore does not normalise
    it); others encode it per the spec from the decoded path. Both are the
    same path, so accepting either relaxes nothing. A generator: the second
    form is only worked out if the first does not match.
    """
    as_sent = path.decode("latin-1")
    yield as_sent
    encoded = quote(unquote_to_bytes(path), safe="/~")
    if encoded != as_sent:
        yield encoded


def canonical_queries(query: bytes, exclude: Collection[str] = ()) -> Iterator[str]:
    """The canonical query strings a client may have signed for a raw *query*, likeliest first.

    botocore, handed a URL with its query already in it, signs the pairs as
    they are in the URL; the spec's form re-encodes every name and value.
    For a query encoded as the spec encodes it, both are the same.
    """
    pairs = []
    for part in query.split(b"&") if query else ():
        name, _, value = part.partition(b"=")
        if part and (not exclude or unquote_plus_bytes(name).decode("latin-1") not in exclude):
            pairs.append((name.decode("latin-1"), value.decode("latin-1")))
    as_sent = "&".join(f"{name}={value}" for name, value in sorted(pairs))
    yield as_sent
    encoded = canonical_query(query, exclude)
    if encoded != as_sent:
        yield encoded


def canonical_query(query: bytes, exclude: Collection[str] = ()) -> str:
    """Names and values URI-encoded, sorted; *query* is the raw query bytes (``+`` a space)."""
    pairs = []
    for part in query.split(b"&") if query else ():
        if not part:
            continue
        name, _, value = part.partition(b"=")
        name, value = unquote_plus_bytes(name), unquote_plus_bytes(value)
        if name.decode("latin-1") in exclude:
            continue
        pairs.append((quote(name, safe="~"), quote(value, safe="~")))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def unquote_plus_bytes(text: bytes) -> bytes:
    """A query name or value decoded as S3 decodes it: ``+`` is a space, ``%2B`` a plus.

    Form-encoding clients (libcloud, requests) send a space as ``+`` and sign
    it as ``%20``; botocore sends ``%20``. Both mean the same bytes.
    """
    return unquote_to_bytes(text.replace(b"+", b" ")) if b"+" in text else unquote_to_bytes(text)


def canonical_headers(headers: Mapping[str, Sequence[str]], signed: Iterable[str]) -> str:
    """*headers*: ``{lower-case name: [values]}``; *signed*: the SignedHeaders names."""
    lines = []
    for name in signed:
        values = headers.get(name, ())
        # Nearly every header comes once: no list to build and join.
        value = _trim(values[0]) if len(values) == 1 else ",".join([_trim(v) for v in values])
        lines.append(f"{name}:{value}\n")
    return "".join(lines)


def _trim(value):
    """Outer spaces dropped, inner runs of them made one (the regex only when there is a run)."""
    value = value.strip()
    if "  " in value or "\t" in value or "\n" in value:
        value = _SPACES.sub(" ", value)
    return value


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: Mapping[str, Sequence[str]],
    signed: Sequence[str],
    payload_hash: str,
) -> bytes:
    return "\n".join([method, uri, query, canonical_headers(headers, signed), ";".join(signed), payload_hash]).encode(
        "latin-1"
    )


def string_to_sign(timestamp: str, scope: str, request_bytes: bytes) -> str:
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{hashlib.sha256(request_bytes).hexdigest()}"


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def signature(key: bytes, to_sign: str) -> str:
    # hmac.digest is OpenSSL's one-shot HMAC: a fraction of hmac.new's cost.
    return hmac.digest(key, to_sign.encode("latin-1"), "sha256").hex()


def chunk_string_to_sign(timestamp: str, scope: str, previous: str, chunk_sha256: str) -> str:
    return f"{ALGORITHM}-PAYLOAD\n{timestamp}\n{scope}\n{previous}\n{EMPTY_SHA256}\n{chunk_sha256}"


def trailer_string_to_sign(timestamp: str, scope: str, previous: str, trailers: Iterable[tuple[str, str]]) -> str:
    """*trailers*: (name, value) pairs as received, without the signature itself."""
    canonical = "".join(f"{name}:{value}\n" for name, value in trailers).encode("latin-1")
    return f"{ALGORITHM}-TRAILER\n{timestamp}\n{scope}\n{previous}\n{hashlib.sha256(canonical).hexdigest()}"


def _hmac(key, text):
    return hmac.digest(key, text.encode(), "sha256")
