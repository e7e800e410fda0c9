"""Signatures of EC2 Query API requests: SigV2 (euca2ools, boto 2) and SigV4 (boto3).

They differ from S3's. SigV2 here is the Query API's version 2: the
parameters themselves (query string or form body) carry AWSAccessKeyId,
SignatureVersion=2, SignatureMethod (HmacSHA256 or HmacSHA1), Timestamp or
Expires, and a Signature over ``METHOD\\nhost\\npath\\nsorted parameters``.
SigV4 is scoped to the ``ec2`` service and signs the form body's SHA-256
(no x-amz-content-sha256 header). Both are checked once the whole request,
body included, is in: a form body carries parameters the signature covers.
"""

import base64
import calendar
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Optional, Protocol
from urllib.parse import quote

from objectstore.auth import sigv4
from objectstore.auth.authenticate import SignedRequest
from objectstore.auth.credentials import Caller, Credentials
from objectstore.auth.errors import RequestTimeTooSkewed
from objectstore.errors import AuthFailure, InvalidAccessKeyId

SERVICE = "ec2"
MAX_SKEW = 15 * 60
_V2_DIGESTS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}


class Ec2Request(SignedRequest, Protocol):
    """What the EC2 checks read of a request: a SignedRequest's parts, and headers as text."""

    def getHeaderText(self, name: bytes) -> Optional[str]: ...


class Ec2Authenticator:
    def __init__(
        self, credentials: Credentials, region: str, clock: Callable[[], float] = time.time, strict_region: bool = False
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.clock = clock
        # Not strict: a request signed for any region is checked with that region (see Config.strict_region).
        self.strict_region = strict_region

    def authenticate(self, request: Ec2Request, parameters: Mapping[str, str], body: bytes) -> Caller:
        """The Caller of an EC2 request; *parameters*: query and form together; *body*: the raw form."""
        authorization = request.getHeaderText(b"Authorization")
        if authorization is not None:
            return self._v4(request, authorization, body)
        if "Signature" in parameters or "AWSAccessKeyId" in parameters:
            return self._v2(request, parameters)
        raise AuthFailure("AWS was not able to validate the provided access credentials (no signature).")

    # -- SigV2 -----------------------------------------------------------

    def _v2(self, request, parameters):
        version = parameters.get("SignatureVersion")
        if version != "2":
            raise AuthFailure(f"Signature version {version!r} is not supported; use 2 or SigV4.")
        digest = _V2_DIGESTS.get(parameters.get("SignatureMethod", ""))
        if digest is None:
            raise AuthFailure("SignatureMethod must be HmacSHA256 or HmacSHA1.")
        self._check_v2_time(parameters)
        caller = self._caller(parameters.get("AWSAccessKeyId", ""))
        provided = parameters.get("Signature", "")
        unsigned = {name: value for name, value in parameters.items() if name != "Signature"}
        query = "&".join(f"{_encode(name)}={_encode(value)}" for name, value in sorted(unsigned.items()))
        host = (request.getHeaderText(b"Host") or "").lower()
        # boto 2 signs the Host header as sent; some clients leave a default port out.
        for signed_host in dict.fromkeys([host, host.rsplit(":", 1)[0]]):
            to_sign = "\n".join([request.method.decode("ascii"), signed_host, request.path.decode("latin-1"), query])
            expected = base64.b64encode(hmac.digest(caller.secret.encode(), to_sign.encode(), digest)).decode()
            if hmac.compare_digest(expected.encode(), provided.encode()):
                return caller
        raise AuthFailure("AWS was not able to validate the provided access credentials (signature mismatch).")

    def _check_v2_time(self, parameters):
        now = self.clock()
        if "Expires" in parameters:
            if _seconds(parameters["Expires"]) < now:
                raise AuthFailure("Request has expired.")
            return
        stamp = parameters.get("Timestamp")
        if stamp is None:
            raise AuthFailure("The request must contain a Timestamp or Expires parameter.")
        if abs(_seconds(stamp) - now) > MAX_SKEW:
            raise RequestTimeTooSkewed()

    # -- SigV4 -----------------------------------------------------------

    def _v4(self, request, authorization, body):
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme != sigv4.ALGORITHM:
            raise AuthFailure(f"Unsupported authorization type {scheme!r}.")
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        credential = fields.get("Credential", "").split("/")
        if len(credential) != 5 or credential[4] != "aws4_request":
            raise AuthFailure("The Credential is malformed.")
        access_key, date, region, service, _ = credential
        if service != SERVICE or not region or (self.strict_region and region != self.region):
            where = f"region '{self.region}'" if self.strict_region else "a region"
            raise AuthFailure(f"Credential should be scoped to {where} and service '{SERVICE}'.")
        timestamp = request.getHeaderText(b"X-Amz-Date") or ""
        if not timestamp.startswith(date) or abs(_seconds(timestamp) - self.clock()) > MAX_SKEW:
            raise RequestTimeTooSkewed()
        caller = self._caller(access_key)
        signed = fields.get("SignedHeaders", "").split(";")
        if "host" not in signed:
            raise AuthFailure("The host header must be signed.")
        headers = {
            name.decode("latin-1").lower(): [v.decode("latin-1") for v in values]
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        path, _, query = request.uri.partition(b"?")
        scope = "/".join(credential[1:])
        key = sigv4.signing_key(caller.secret, date, region, SERVICE)
        payload = hashlib.sha256(body).hexdigest()
        provided = fields.get("Signature", "").encode()
        for uri in sigv4.canonical_uris(path):
            for canonical_query in sigv4.canonical_queries(query):
                canonical = sigv4.canonical_request(
                    request.method.decode("ascii"), uri, canonical_query, headers, signed, payload
                )
                expected = sigv4.signature(key, sigv4.string_to_sign(timestamp, scope, canonical))
                if hmac.compare_digest(expected.encode(), provided):
                    return caller
        raise AuthFailure("AWS was not able to validate the provided access credentials (signature mismatch).")

    def _caller(self, access_key):
        try:
            return self.credentials.lookup(access_key)
        except InvalidAccessKeyId:
            raise AuthFailure("AWS was not able to validate the provided access credentials.") from None


def _encode(text):
    return quote(text, safe="-_.~")


def _seconds(stamp):
    """Seconds since the epoch of an ISO 8601 UTC time (``2026-11-21T10:00:00Z``, ``20261121T100000Z``, ...)."""
    text = stamp.strip().replace("-", "").replace(":", "")
    text = text.split(".")[0].rstrip("Z")
    try:
        return calendar.timegm(time.strptime(text[:15], "%Y%m%dT%H%M%S"))
    except ValueError:
        raise AuthFailure(f"Invalid time {stamp!r}.") from None
