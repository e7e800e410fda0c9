"""Signature V4 and V2 against AWS's published examples, and the Authenticator's refusals.

The V4 vectors are the S3 examples of AWS's "Signature Calculations for the
Authorization Header" and "Signature Calculations for Streaming Upload" pages:
access key AKIAIOSFODNN7EXAMPLE, 2013-05-24, us-east-1, bucket examplebucket.
"""

import calendar
import hashlib
import hmac
import time

import pytest
from twisted.internet import reactor
from twisted.web.http_headers import Headers

from objectstore.auth import authenticate as authenticate_module
from objectstore.auth import sigv2, sigv4
from objectstore.auth.authenticate import Authenticator
from objectstore.auth.credentials import Credentials
from objectstore.auth.streaming import ChunkSignatures
from objectstore.errors import S3Error
from objectstore.index.database import Index

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TIMESTAMP = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
EXAMPLE_TIME = calendar.timegm(time.strptime(TIMESTAMP, "%Y%m%dT%H%M%SZ"))


class FakeRequest:
    """What the Authenticator reads of a request: method, raw target, headers."""

    def __init__(self, method, target, headers):
        self.method = method.encode()
        self.uri = target.encode()
        self.path = self.uri.partition(b"?")[0]
        self.requestHeaders = Headers({name.encode(): [value.encode()] for name, value in headers.items()})


@pytest.fixture
def authenticator(tmp_path):
    meta = Index(str(tmp_path / "meta.sqlite"), durable=False, reactor=reactor).open()
    credentials = Credentials(meta)
    credentials.create_user("example", access_key=ACCESS_KEY, secret=SECRET)
    clock = [EXAMPLE_TIME + 60]
    auth = Authenticator(credentials, "us-east-1", clock=lambda: clock[0])
    auth.set_time = lambda t: clock.__setitem__(0, t)
    yield auth
    meta.close()


def v4_header(signed, signature):
    return f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders={signed},Signature={signature}"


def refused(auth, request):
    with pytest.raises(S3Error) as caught:
        auth.authenticate(request)
    return caught.value


# -- AWS's examples -------------------------------------------------------------------

GET_OBJECT = dict(
    headers={
        "Host": "examplebucket.s3.amazonaws.com",
        "Range": "bytes=0-9",
        "x-amz-content-sha256": sigv4.EMPTY_SHA256,
        "x-amz-date": TIMESTAMP,
    },
    signed="host;range;x-amz-content-sha256;x-amz-date",
    signature="f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
)


def test_aws_example_get_object_signature():
    headers = {name.lower(): [value] for name, value in GET_OBJECT["headers"].items()}
    canonical = sigv4.canonical_request(
        "GET", "/test.txt", "", headers, GET_OBJECT["signed"].split(";"), sigv4.EMPTY_SHA256
    )
    to_sign = sigv4.string_to_sign(TIMESTAMP, SCOPE, canonical)
    key = sigv4.signing_key(SECRET, "20130524", "us-east-1")
    assert sigv4.signature(key, to_sign) == GET_OBJECT["signature"]


@pytest.mark.parametrize(
    "target, signature",
    [
        ("/?lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ("/?max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ],
)
def test_aws_example_bucket_requests_authenticate(authenticator, target, signature):
    headers = {
        "Host": "examplebucket.s3.amazonaws.com",
        "x-amz-content-sha256": sigv4.EMPTY_SHA256,
        "x-amz-date": TIMESTAMP,
        "Authorization": v4_header("host;x-amz-content-sha256;x-amz-date", signature),
    }
    result = authenticator.authenticate(FakeRequest("GET", target, headers))
    assert result.caller.access_key == ACCESS_KEY
    assert result.payload_sha256 == sigv4.EMPTY_SHA256


def test_aws_example_put_object_authenticates_and_leaves_the_body_hash_to_check(authenticator):
    body_hash = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    headers = {
        "Host": "examplebucket.s3.amazonaws.com",
        "Date": "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-date": TIMESTAMP,
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": body_hash,
        "Authorization": v4_header(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
    }
    result = authenticator.authenticate(FakeRequest("PUT", "/test%24file.text", headers))
    assert result.payload_sha256 == body_hash


def test_aws_example_presigned_url_authenticates_until_it_expires(authenticator):
    target = (
        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={ACCESS_KEY}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date={TIMESTAMP}&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    request = FakeRequest("GET", target, {"Host": "examplebucket.s3.amazonaws.com"})
    assert authenticator.authenticate(request).caller.access_key == ACCESS_KEY
    authenticator.set_time(EXAMPLE_TIME + 86400 + 1)
    error = refused(authenticator, request)
    assert (error.code, error.message) == ("AccessDenied", "Request has expired")
    authenticator.set_time(EXAMPLE_TIME - 20 * 60)
    assert refused(authenticator, request).code == "AccessDenied"


def test_aws_example_chunk_signature_chain():
    key = sigv4.signing_key(SECRET, "20130524", "us-east-1")
    chain = ChunkSignatures(key, TIMESTAMP, SCOPE, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
    chunks = [
        (65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
        (1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
        (0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
    ]
    for size, signature in chunks:
        chain.chunk_started(size, f"chunk-signature={signature}")
        for start in range(0, size, 1000):
            chain.chunk_data(b"a" * min(1000, size - start))
        chain.chunk_ended()


def test_a_tampered_chunk_breaks_the_chain():
    key = sigv4.signing_key(SECRET, "20130524", "us-east-1")
    chain = ChunkSignatures(key, TIMESTAMP, SCOPE, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
    chain.chunk_started(65536, "chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648")
    chain.chunk_data(b"a" * 65535 + b"b")
    with pytest.raises(S3Error) as caught:
        chain.chunk_ended()
    assert caught.value.code == "SignatureDoesNotMatch"


def test_v2_string_to_sign_matches_botocore():
    from botocore.auth import HmacV1Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(
        method="PUT",
        url="http://127.0.0.1:1/bucket/a%20key?acl&partNumber=3&foo=bar",
        headers={"Content-Type": "text/plain", "x-amz-meta-b": "2", "X-Amz-Meta-A": " 1 "},
    )
    HmacV1Auth(BotoCredentials("k", "secret")).add_auth(request)
    headers = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    resource = sigv2.canonical_resource(b"/bucket/a%20key", b"acl&partNumber=3&foo=bar")
    to_sign = sigv2.string_to_sign("PUT", headers, resource, request.headers["Date"])
    assert request.headers["Authorization"] == "AWS k:" + sigv2.signature("secret", to_sign)


# -- refusals ---------------------------------------------------------------------------


def signed_get(authenticator, **overrides):
    headers = dict(GET_OBJECT["headers"])
    headers["Authorization"] = v4_header(GET_OBJECT["signed"], GET_OBJECT["signature"])
    headers.update(overrides)
    return FakeRequest("GET", "/test.txt", headers)


def test_the_example_request_itself_authenticates(authenticator):
    assert authenticator.authenticate(signed_get(authenticator)).caller.access_key == ACCESS_KEY


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({"Range": "bytes=0-10"}, "SignatureDoesNotMatch"),
        ({"Authorization": v4_header(GET_OBJECT["signed"], "0" * 64)}, "SignatureDoesNotMatch"),
        (
            {
                "Authorization": v4_header(GET_OBJECT["signed"], GET_OBJECT["signature"]).replace(
                    ACCESS_KEY, "AKIDUNKNOWN"
                )
            },
            "InvalidAccessKeyId",
        ),
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, "AuthorizationHeaderMalformed"),
        ({"Authorization": "Bearer abc"}, "InvalidArgument"),
        ({"x-amz-content-sha256": "not-a-hash"}, "InvalidArgument"),
        ({"x-amz-date": "20130524T000100Z"}, "SignatureDoesNotMatch"),
        ({"x-amz-date": "yesterday"}, "AccessDenied"),
        ({"x-amz-meta-sneaky": "added after signing"}, "AccessDenied"),
    ],
    ids=[
        "changed-header",
        "wrong-signature",
        "unknown-key",
        "malformed",
        "unknown-scheme",
        "bad-payload-hash",
        "changed-date",
        "bad-date",
        "unsigned-amz-header",
    ],
)
def test_refused_header_signatures(authenticator, overrides, code):
    assert refused(authenticator, signed_get(authenticator, **overrides)).code == code


def test_a_mismatch_says_what_was_signed(authenticator):
    error = refused(authenticator, signed_get(authenticator, Range="bytes=0-10"))
    assert error.details["StringToSign"].startswith("AWS4-HMAC-SHA256\n" + TIMESTAMP + "\n" + SCOPE + "\n")
    assert "range:bytes=0-10" in error.details["CanonicalRequest"]


def test_a_signature_is_checked_with_the_region_its_credential_names(authenticator):
    # AWS's example is signed for us-east-1: claimed for eu-west-1, eu-west-1's key cannot verify it.
    header = v4_header(GET_OBJECT["signed"], GET_OBJECT["signature"]).replace("us-east-1", "eu-west-1")
    assert refused(authenticator, signed_get(authenticator, Authorization=header)).code == "SignatureDoesNotMatch"


def test_with_strict_region_another_region_is_malformed_and_names_the_expected_one(authenticator):
    authenticator.strict_region = True
    header = v4_header(GET_OBJECT["signed"], GET_OBJECT["signature"]).replace("us-east-1", "eu-west-1")
    error = refused(authenticator, signed_get(authenticator, Authorization=header))
    assert error.code == "AuthorizationHeaderMalformed"
    assert error.details["Region"] == "us-east-1"
    assert "eu-west-1" in error.message


def test_missing_content_sha256_is_a_missing_security_header(authenticator):
    request = signed_get(authenticator)
    request.requestHeaders.removeHeader(b"x-amz-content-sha256")
    assert refused(authenticator, request).code == "MissingSecurityHeader"


@pytest.mark.parametrize("offset, accepted", [(-16 * 60, False), (-14 * 60, True), (14 * 60, True), (16 * 60, False)])
def test_header_signatures_allow_fifteen_minutes_of_skew(authenticator, offset, accepted):
    authenticator.set_time(EXAMPLE_TIME - offset)
    request = signed_get(authenticator)
    if accepted:
        authenticator.authenticate(request)
    else:
        assert refused(authenticator, request).code == "RequestTimeTooSkewed"


def _presigned_target(expires):
    return (
        f"/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS_KEY}%2F{SCOPE.replace('/', '%2F')}"
        f"&X-Amz-Date={TIMESTAMP}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={'0' * 64}"
    )


@pytest.mark.parametrize(
    "expires, message",
    [
        ("-5", "X-Amz-Expires must be non-negative"),
        (
            "604801",
            "X-Amz-Expires must be less than a week (in seconds); that is, "
            "the given X-Amz-Expires must be less than 604800 seconds",
        ),
        ("soon", "X-Amz-Expires should be a number"),
    ],
)
def test_presigned_expiry_out_of_range_is_an_authorization_query_parameters_error(authenticator, expires, message):
    request = FakeRequest("GET", _presigned_target(expires), {"Host": "examplebucket.s3.amazonaws.com"})
    error = refused(authenticator, request)
    assert (error.code, error.status, error.message) == ("AuthorizationQueryParametersError", 400, message)


def test_presigned_url_valid_for_zero_seconds_has_expired_when_it_arrives(authenticator):
    # AWS: X-Amz-Expires=0 is a number in range, and the URL it signs is expired already.
    authenticator.set_time(EXAMPLE_TIME)
    request = FakeRequest("GET", _presigned_target("0"), {"Host": "examplebucket.s3.amazonaws.com"})
    error = refused(authenticator, request)
    assert (error.code, error.status, error.message) == ("AccessDenied", 403, "Request has expired")
    assert error.details["X-Amz-Expires"] == "0"


def test_header_and_query_auth_together_are_refused(authenticator):
    request = signed_get(authenticator)
    request.uri += b"?X-Amz-Signature=abc"
    assert refused(authenticator, request).code == "InvalidArgument"


def test_signatures_are_compared_in_constant_time(authenticator, monkeypatch):
    compared = []
    real = hmac.compare_digest

    def recording(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(authenticate_module.hmac, "compare_digest", recording)
    authenticator.authenticate(signed_get(authenticator))
    assert (GET_OBJECT["signature"].encode(), GET_OBJECT["signature"].encode()) in compared


def test_no_signature_is_compared_with_equals():
    """A grep, as docs/threat-model.md threat 18 asks: signatures go through hmac.compare_digest only."""
    import inspect
    import re

    from objectstore.auth import streaming

    for module in (authenticate_module, streaming):
        source = inspect.getsource(module)
        assert not re.search(r"(signature|provided|expected)\w*\s*[!=]=", source), module.__name__


# -- Signature V2 ---------------------------------------------------------------------------


def v2_query_request(authenticator, path, query, expires, with_subresources=True, method="GET"):
    resource = sigv2.canonical_resource(path.encode(), query.encode(), with_subresources=with_subresources)
    signature = sigv2.signature(SECRET, sigv2.string_to_sign(method, {}, resource, str(expires)))
    from urllib.parse import quote

    auth = f"AWSAccessKeyId={ACCESS_KEY}&Expires={expires}&Signature={quote(signature, safe='')}"
    return FakeRequest(method, f"{path}?{query + '&' if query else ''}{auth}", {"Host": "h"})


def test_v2_query_auth_until_it_expires(authenticator):
    request = v2_query_request(authenticator, "/b/k", "", EXAMPLE_TIME + 600)
    assert authenticator.authenticate(request).caller.access_key == ACCESS_KEY
    authenticator.set_time(EXAMPLE_TIME + 601)
    error = refused(authenticator, request)
    assert (error.code, error.message) == ("AccessDenied", "Request has expired")


def test_v2_query_signed_over_the_path_alone_authenticates_as_libcloud_signs_it(authenticator):
    request = v2_query_request(authenticator, "/b/k", "uploads", EXAMPLE_TIME + 600, with_subresources=False)
    assert authenticator.authenticate(request).caller.access_key == ACCESS_KEY


def test_v2_path_alone_does_not_stretch_to_another_path(authenticator):
    request = v2_query_request(authenticator, "/b/k", "uploads", EXAMPLE_TIME + 600, with_subresources=False)
    request.path = b"/b/other"
    request.uri = request.uri.replace(b"/b/k", b"/b/other")
    assert refused(authenticator, request).code == "SignatureDoesNotMatch"


def test_a_plus_in_the_query_is_signed_as_a_space_and_an_escaped_plus_as_a_plus():
    # AWS reads "+" in a query as a space: libcloud sends prefix=a+b and signs prefix=a%20b.
    assert sigv4.canonical_query(b"prefix=a+b&list-type=2") == "list-type=2&prefix=a%20b"
    assert sigv4.canonical_query(b"prefix=a%2Bb") == "prefix=a%2Bb"
    assert sigv2.canonical_resource(b"/b/k", b"response-content-type=a+b") == b"/b/k?response-content-type=a b"
    assert sigv2.canonical_resource(b"/b/k", b"response-content-type=a%2Bb") == b"/b/k?response-content-type=a+b"
