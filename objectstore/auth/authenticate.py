"""Who is calling: a request's AWS signature, checked before its body is read.

Signature V2 and V4, in the Authorization header or in the query
(presigned URLs). The result names the caller and carries what is left to
check in the body: its SHA-256 (a V4 ``x-amz-content-sha256`` hash) or the
signature chain of a signed aws-chunked body. Every signature comparison
is constant-time.
"""

import calendar
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Sequence
from email.utils import mktime_tz, parsedate_tz
from typing import Optional, Protocol
from urllib.parse import unquote_to_bytes

from objectstore.auth import sigv2, sigv4
from objectstore.auth.credentials import ANONYMOUS, Caller, Credentials
from objectstore.auth.errors import (
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)
from objectstore.auth.streaming import ChunkSignatures
from objectstore.bodysink import BodySink
from objectstore.errors import AccessDenied, InvalidArgument, MissingSecurityHeader

MAX_SKEW = 15 * 60
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600
_V4_QUERY = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
_V2_QUERY = ("AWSAccessKeyId", "Expires", "Signature")
_HEX = frozenset("0123456789abcdef")
# A query that may carry auth parameters (most carry none: no need to parse them).
_AUTH_PARAMETER = re.compile(rb"(?:^|&)(?:X-Amz-|AWSAccessKeyId|Signature)", re.IGNORECASE)


class RawHeaders(Protocol):
    """A request's headers as twisted.web's Headers gives them: names and values as sent, in bytes."""

    def getAllRawHeaders(self) -> Iterable[tuple[bytes, Sequence[bytes]]]: ...


class SignedRequest(Protocol):
    """What authenticating reads of a request (a twisted.web Request): its raw method, path and target, and headers."""

    @property
    def method(self) -> bytes: ...

    @property
    def path(self) -> bytes: ...

    @property
    def uri(self) -> bytes: ...

    @property
    def requestHeaders(self) -> RawHeaders: ...


class Authenticated:
    """Who a request acts for, and what of its signature is left to check in its body."""

    def __init__(
        self, caller: Caller, payload_sha256: Optional[str] = None, chunk_signatures: Optional[ChunkSignatures] = None
    ) -> None:
        self.caller = caller
        self.payload_sha256 = payload_sha256
        self._chunk_signatures = chunk_signatures

    def chunk_observers(self) -> list[ChunkSignatures]:
        """Observers an aws-chunked body must pass (see web/awschunked.py)."""
        return [] if self._chunk_signatures is None else [self._chunk_signatures]

    def checked_body(self, sink: BodySink) -> BodySink:
        """*sink*, behind a check of the SHA-256 the signature covers (if it covers one)."""
        if self.payload_sha256 is None:
            return sink
        return Sha256CheckedBody(sink, self.payload_sha256)


UNAUTHENTICATED = Authenticated(ANONYMOUS)


class Sha256CheckedBody:
    """Passes a body through, refusing it at the end unless its SHA-256 is the signed one."""

    def __init__(self, sink: BodySink, expected: str) -> None:
        self.sink = sink
        self._expected = expected
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.sink.write(data)

    def finish(self) -> None:
        computed = self._hash.hexdigest()
        if not hmac.compare_digest(computed, self._expected):
            raise XAmzContentSHA256Mismatch(
                ClientComputedContentSHA256=self._expected, S3ComputedContentSHA256=computed
            )
        self.sink.finish()

    def abort(self) -> None:
        self.sink.abort()


class Authenticator:
    """Checks requests against the credential store; *clock* gives Unix time."""

    def __init__(
        self, credentials: Credentials, region: str, clock: Callable[[], float] = time.time, strict_region: bool = False
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.clock = clock
        # Strict: only requests signed for *region* (AWS's answer to a request
        # sent to the wrong regional endpoint). Not strict: a server with one
        # endpoint serves clients configured for any region, checking each
        # signature with the region its client signed for (as MinIO does
        # when no region is set).
        self.strict_region = strict_region

    def authenticate(self, request: SignedRequest, bucket_in_host: Optional[str] = None) -> Authenticated:
        """The request's Authenticated, or the S3Error that refuses it.

        *request* offers ``method``, ``path`` and ``uri`` (raw bytes as
        sent) and ``requestHeaders``; *bucket_in_host*: the bucket named by
        a virtual-host style Host header (part of V2's canonical resource).
        """
        facts = _Facts(request, bucket_in_host)
        # An empty Authorization header is no signature at all: S3 answers it as it
        # answers an anonymous request (AccessDenied where anonymous may not).
        authorization = facts.header("authorization")
        if authorization is not None and not authorization.strip():
            authorization = None
        params = facts.params
        query_v4 = bool(params) and any(name in params for name in _V4_QUERY)
        query_v2 = bool(params) and ("AWSAccessKeyId" in params or "Signature" in params)
        if sum((authorization is not None, query_v4, query_v2)) > 1:
            raise InvalidArgument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
                "string parameter or the Authorization header should be specified",
                ArgumentName="Authorization",
            )
        if authorization is not None:
            scheme, _, rest = authorization.strip().partition(" ")
            if scheme == sigv4.ALGORITHM:
                return self._v4_header(facts, rest)
            if scheme == "AWS":
                return self._v2_header(facts, rest)
            raise InvalidArgument(
                "Unsupported Authorization Type", ArgumentName="Authorization", ArgumentValue=authorization
            )
        if query_v4:
            return self._v4_query(facts)
        if query_v2:
            return self._v2_query(facts)
        return UNAUTHENTICATED

    # -- Signature V2 ----------------------------------------------------

    def _v2_header(self, facts, rest):
        access_key, sep, provided = rest.strip().rpartition(":")
        if not sep or not access_key or not provided:
            raise InvalidArgument(
                "Authorization header is invalid -- one and only one ' ' (space) required", ArgumentName="Authorization"
            )
        caller = self.credentials.lookup(access_key)
        # With x-amz-date, the Date line is empty (S3's rule for V2).
        amz_date = facts.header("x-amz-date")
        date_text = amz_date if amz_date is not None else facts.header("date")
        self._check_skew(_http_date(date_text))
        date_line = "" if amz_date is not None else date_text
        resources = [sigv2.canonical_resource(path, facts.query, facts.bucket_in_host) for path in _v2_paths(facts)]
        self._check_v2(facts, caller, access_key, provided, date_line, resources)
        return Authenticated(caller)

    def _v2_query(self, facts):
        missing = [name for name in _V2_QUERY if name not in facts.params]
        if missing:
            raise AccessDenied(
                "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
            )
        access_key, expires_text, provided = (facts.params[name] for name in _V2_QUERY)
        caller = self.credentials.lookup(access_key)
        try:
            expires = int(expires_text)
        except ValueError:
            raise AccessDenied("Invalid date (should be seconds since epoch): " + expires_text) from None
        now = self.clock()
        if now > expires:
            raise AccessDenied("Request has expired", Expires=_iso(expires), ServerTime=_iso(now))
        # Libcloud's V2 drivers (AuroraObjects among them) sign the path
        # alone, without ?uploads, ?uploadId, ?partNumber: the same request,
        # resource signed one way or the other.
        resources = [
            sigv2.canonical_resource(path, facts.query, facts.bucket_in_host, with_subresources=subresources)
            for subresources in (True, False)
            for path in _v2_paths(facts)
        ]
        self._check_v2(facts, caller, access_key, provided, expires_text, resources)
        return Authenticated(caller)

    def _check_v2(self, facts, caller, access_key, provided, date_line, resources):
        attempts = []
        for resource in dict.fromkeys(resources):
            to_sign = sigv2.string_to_sign(facts.method, facts.headers, resource, date_line)
            if _same(sigv2.signature(caller.secret, to_sign), provided):
                return
            attempts.append(to_sign)
        raise _mismatch(access_key, provided, attempts[0])

    # -- Signature V4 ----------------------------------------------------

    def _v4_header(self, facts, rest):
        fields = {}
        for part in rest.split(","):
            name, eq, value = part.strip().partition("=")
            if eq:
                fields[name] = value.strip()
        if not all(fields.get(name) for name in ("Credential", "SignedHeaders", "Signature")):
            raise AuthorizationHeaderMalformed(
                "The authorization header is malformed; it needs Credential, SignedHeaders and Signature."
            )
        access_key, scope, scope_parts = self._scope(fields["Credential"], AuthorizationHeaderMalformed)
        timestamp, request_time = _v4_request_time(facts)
        if scope_parts[0] != timestamp[:8]:
            raise AuthorizationHeaderMalformed(
                "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date."
            )
        caller = self.credentials.lookup(access_key)
        self._check_skew(request_time)
        payload_hash = facts.header("x-amz-content-sha256")
        if payload_hash is None:
            raise MissingSecurityHeader(MissingHeaderName="x-amz-content-sha256")
        _check_payload_hash(payload_hash)
        signed = _signed_headers(fields["SignedHeaders"], facts)
        queries = functools.partial(sigv4.canonical_queries, facts.query)
        key = sigv4.signing_key(caller.secret, *scope_parts)
        provided = fields["Signature"]
        self._check_v4(facts, access_key, key, timestamp, scope, queries, signed, payload_hash, provided)
        if payload_hash in (sigv4.STREAMING_SIGNED, sigv4.STREAMING_SIGNED_TRAILER):
            chain = ChunkSignatures(
                key, timestamp, scope, provided, signed_trailer=payload_hash == sigv4.STREAMING_SIGNED_TRAILER
            )
            return Authenticated(caller, chunk_signatures=chain)
        if payload_hash in (sigv4.UNSIGNED_PAYLOAD, sigv4.STREAMING_UNSIGNED_TRAILER):
            return Authenticated(caller)
        return Authenticated(caller, payload_sha256=payload_hash)

    def _v4_query(self, facts):
        params = facts.params
        missing = [name for name in _V4_QUERY if not params.get(name)]
        if missing:
            raise InvalidArgument(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
                ArgumentName=missing[0],
            )
        if params["X-Amz-Algorithm"] != sigv4.ALGORITHM:
            raise InvalidArgument(
                'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
                ArgumentName="X-Amz-Algorithm",
                ArgumentValue=params["X-Amz-Algorithm"],
            )
        access_key, scope, scope_parts = self._scope(params["X-Amz-Credential"], AuthorizationQueryParametersError)
        timestamp = params["X-Amz-Date"]
        try:
            request_time = _amz_date(timestamp)
        except AccessDenied:
            raise InvalidArgument(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
                ArgumentName="X-Amz-Date",
                ArgumentValue=timestamp,
            ) from None
        expires = _presigned_expires(params["X-Amz-Expires"])
        if scope_parts[0] != timestamp[:8]:
            raise AuthorizationQueryParametersError("Invalid credential date. Date is not the same as X-Amz-Date.")
        caller = self.credentials.lookup(access_key)
        now = self.clock()
        if request_time - now > MAX_SKEW:
            raise AccessDenied("Request is not valid yet")
        if now >= request_time + expires:
            raise AccessDenied(
                "Request has expired",
                **{"X-Amz-Expires": str(expires)},
                Expires=_iso(request_time + expires),
                ServerTime=_iso(now),
            )
        signed = _signed_headers(params["X-Amz-SignedHeaders"], facts)
        queries = functools.partial(sigv4.canonical_queries, facts.query, exclude=("X-Amz-Signature",))
        payload_hash = params.get("X-Amz-Content-Sha256", sigv4.UNSIGNED_PAYLOAD)
        key = sigv4.signing_key(caller.secret, *scope_parts)
        self._check_v4(
            facts,
            access_key,
            key,
            timestamp,
            scope,
            queries,
            signed,
            payload_hash,
            params["X-Amz-Signature"],
            presigned=True,
        )
        return Authenticated(caller)

    def _scope(self, credential, malformed):
        """(access key, scope, (date, region, service)) of a Credential value, checked against this server.

        A client sends the same Credential all day: the answer is cached.
        """
        return _credential_scope(credential, self.region if self.strict_region else None, malformed)

    def _check_v4(
        self, facts, access_key, key, timestamp, scope, queries, signed, payload_hash, provided, presigned=False
    ):
        attempts = []
        variants = (
            (uri, query, headers)
            for headers in _host_variants(facts.headers, without_port=presigned)
            for uri in sigv4.canonical_uris(facts.path)
            for query in queries()
        )
        for uri, query, headers in variants:
            canonical = sigv4.canonical_request(facts.method, uri, query, headers, signed, payload_hash)
            to_sign = sigv4.string_to_sign(timestamp, scope, canonical)
            if _same(sigv4.signature(key, to_sign), provided):
                return
            attempts.append((to_sign, canonical))
        to_sign, canonical = attempts[0]
        raise _mismatch(access_key, provided, to_sign.encode("latin-1"), CanonicalRequest=canonical.decode("latin-1"))

    def _check_skew(self, request_time):
        now = self.clock()
        if abs(now - request_time) > MAX_SKEW:
            raise RequestTimeTooSkewed(
                RequestTime=_iso(request_time), ServerTime=_iso(now), MaxAllowedSkewMilliseconds=str(MAX_SKEW * 1000)
            )


class _Facts:
    """The parts of a request a signature covers, as sent."""

    def __init__(self, request, bucket_in_host):
        self.method = request.method.decode("latin-1")
        self.path = request.path
        self.query = request.uri.partition(b"?")[2]
        self.bucket_in_host = bucket_in_host
        self.headers = headers = {}  # type: dict
        # Twisted's public iterator re-capitalises every header name, a cost
        # on every request; its raw map has the names as sent.
        raw = getattr(request.requestHeaders, "_rawHeaders", None)
        pairs = raw.items() if raw is not None else request.requestHeaders.getAllRawHeaders()
        for name, values in pairs:
            lower = name.decode("latin-1").lower()
            decoded = [value.decode("latin-1") for value in values]
            if lower in headers:
                headers[lower].extend(decoded)
            else:
                headers[lower] = decoded
        # Auth parameters decoded without turning "+" into a space: V2
        # signatures are base64, and some clients leave their "+" unescaped.
        self.params: dict = {}
        if _AUTH_PARAMETER.search(self.query):
            for part in self.query.split(b"&"):
                name, _, value = part.partition(b"=")
                name, value = unquote_to_bytes(name).decode("latin-1"), unquote_to_bytes(value).decode("latin-1")
                self.params.setdefault(name, value)

    def header(self, name):
        values = self.headers.get(name)
        return values[0] if values else None


# Bounded small: a client can send any text there, and a header can be long.
@functools.lru_cache(maxsize=64)
def _credential_scope(credential, region, malformed):
    """Authenticator._scope's answer; an S3Error raised is not cached (the next request checks again).

    *region*: the one region a signature may be scoped to, or None for any.
    """
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise malformed(
            "The authorization header is malformed; the Credential is mal-formed; "
            'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key, date, scope_region, service, terminator = parts
    if region is not None and scope_region != region:
        raise malformed(
            f"The authorization header is malformed; the region '{scope_region}' is wrong; expecting '{region}'",
            Region=region,
        )
    if service != "s3" or terminator != "aws4_request" or len(date) != 8 or not date.isdigit():
        raise malformed(
            "The authorization header is malformed; the Credential is mal-formed; "
            'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    return access_key, "/".join(parts[1:]), (date, scope_region, service)


def _v2_paths(facts):
    """The request path and, for a path-style bucket (``/bucket``), its ``/bucket/`` form.

    botocore signs a bucket's resource with the trailing slash whether or
    not the URL has one; other clients sign the path as sent.
    """
    path = facts.path
    if facts.bucket_in_host is None and path.count(b"/") == 1 and len(path) > 1:
        return [path, path + b"/"]
    return [path]


def _signed_headers(text, facts):
    """The SignedHeaders list, checked: host is signed, and so is every x-amz-* header sent."""
    signed, names = _signed_header_names(text)
    if "host" not in names:
        raise AccessDenied("The host header must be signed.")
    unsigned = sorted(name for name in facts.headers if name.startswith("x-amz-") and name not in names)
    if unsigned:
        raise AccessDenied(
            "There were headers present in the request which were not signed", HeadersNotSigned=", ".join(unsigned)
        )
    return signed


@functools.lru_cache(maxsize=64)
def _signed_header_names(text):
    """(the names in order, the same as a set) of a SignedHeaders value; a client signs the same few lists."""
    signed = tuple(text.split(";"))
    return signed, frozenset(signed)


def _host_variants(headers, without_port=False):
    """The headers as sent and, if the Host has capitals, with it lower-cased; with *without_port*,
    also with the Host's port left out.

    Host names are case-insensitive and botocore signs the host lower-cased
    (``urlsplit().hostname``) whatever the case it sends. Libcloud's S3
    driver presigns URLs (``get_object_cdn_url``) signing its host without
    the port that the URL then carries: a presigned URL may have been signed
    either way. Only the port is dropped; the host name must still match.
    """
    host = headers.get("host")
    if not host or (not without_port and host[0] == host[0].lower()):
        return [headers]  # the common case, on every request: no copies
    hosts = [host[0], host[0].lower()]
    if without_port:
        hosts += [_without_port(name) for name in hosts]
    return [{**headers, "host": [name]} if name != host[0] else headers for name in dict.fromkeys(hosts)]


def _without_port(host):
    """``example.com:8080`` -> ``example.com``; ``[::1]:8080`` -> ``[::1]``; a host without a port is unchanged."""
    if host.startswith("["):
        end = host.find("]")
        port = host[end + 2 :]
        return host[: end + 1] if end != -1 and host[end + 1 : end + 2] == ":" and port.isdigit() else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else host


def _check_payload_hash(value):
    if value in (sigv4.UNSIGNED_PAYLOAD, *sigv4.STREAMING_MODES):
        return
    if len(value) != 64 or not _HEX.issuperset(value):
        raise InvalidArgument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER "
            "or a valid sha256 value.",
            ArgumentName="x-amz-content-sha256",
            ArgumentValue=value,
        )


def _presigned_expires(text):
    """The seconds a presigned URL is valid for, refused as AWS refuses them.

    0 is a valid number, refused later as AWS refuses it: the URL has
    expired by the time it arrives ("Request has expired").
    """
    try:
        expires = int(text)
    except ValueError:
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number") from None
    if expires < 0:
        raise AuthorizationQueryParametersError("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGNED_EXPIRES:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds); that is, "
            f"the given X-Amz-Expires must be less than {MAX_PRESIGNED_EXPIRES} seconds"
        )
    return expires


_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


@functools.lru_cache(maxsize=64)
def _amz_date(text):
    """Unix time of a ``YYYYMMDDTHHMMSSZ`` timestamp (cached: a second's requests share one)."""
    match = _AMZ_DATE.fullmatch(text or "")
    if match is None:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def _v4_request_time(facts):
    """(ISO 8601 basic timestamp, Unix time) a V4 header signature is dated by.

    x-amz-date, when present (even empty or invalid), takes precedence over
    Date, as on AWS. A Date may be ISO 8601 basic or an HTTP date (botocore
    sends one when the caller set Date); either way the string to sign
    carries the ISO form.
    """
    amz_date = facts.header("x-amz-date")
    if amz_date is not None:
        return amz_date, _amz_date(amz_date)
    date = facts.header("date")
    if date is not None and _AMZ_DATE.fullmatch(date):
        return date, _amz_date(date)
    request_time = _http_date(date)
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(request_time)), request_time


def _http_date(text):
    parsed = parsedate_tz(text) if text else None
    # A date before the epoch is no valid date to AWS (AccessDenied, not RequestTimeTooSkewed).
    if parsed is None or parsed[0] < 1970:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    return mktime_tz(parsed)


def _same(expected, provided):
    return hmac.compare_digest(expected.encode(), provided.encode("latin-1"))


def _mismatch(access_key, provided, to_sign, **details):
    return SignatureDoesNotMatch(
        AWSAccessKeyId=access_key,
        StringToSign=to_sign.decode("latin-1"),
        SignatureProvided=provided,
        StringToSignBytes=" ".join(f"{b:02x}" for b in to_sign),
        **details,
    )


def _iso(timestamp):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
