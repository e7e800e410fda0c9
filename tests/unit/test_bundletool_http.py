"""objectstore-bundle's HTTP: signatures as botocore makes them, and retries only where they can help."""

import calendar
import hashlib
import time

import pytest
import pytest_twisted
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from twisted.internet import endpoints, reactor
from twisted.web import resource, server

from objectstore.bundletool.settings import Keys
from objectstore.bundletool.signing import signed_headers
from objectstore.bundletool.transport import FileBody, HttpClient, NetworkError, ServiceError

KEYS = Keys("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def _botocore(service, method, url, headers, body):
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    signer = S3SigV4Auth if service == "s3" else SigV4Auth
    signer(Credentials(KEYS.access_key, KEYS.secret_key), service, "us-east-1").add_auth(request)
    stamp = request.headers["X-Amz-Date"]
    return request.headers["Authorization"], calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))


@pytest.mark.parametrize(
    ("service", "method", "url", "headers", "body"),
    [
        (
            "s3",
            "PUT",
            "http://127.0.0.1:3333/bundles/dir/a%20b%2Bc~%C3%A9.part.00",
            {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "x-amz-acl": "aws-exec-read"},
            b"",
        ),
        ("s3", "GET", "http://s3.example/bundles?max-keys=0", {}, b""),
        ("s3", "POST", "http://s3.example:8080/prefix/bucket?delete=", {"Content-MD5": "abc"}, b"<Delete/>"),
        (
            "ec2",
            "POST",
            "http://127.0.0.1:3333/services/Cloud",
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            b"Action=DescribeImages&Version=2016-11-15&ImageId.1=ami-12345678",
        ),
    ],
)
def test_signatures_are_the_ones_botocore_makes(service, method, url, headers, body):
    expected, now = _botocore(service, method, url, headers, body)
    payload = hashlib.sha256(body).hexdigest()
    ours = signed_headers(method, url, headers, payload, KEYS, "us-east-1", service, now=now)
    assert ours["authorization"] == expected


class Flaky(resource.Resource):
    """Answers with the statuses given, in turn, then 200; records what it received."""

    isLeaf = True

    def __init__(self, statuses, body=b""):
        super().__init__()
        self.statuses = list(statuses)
        self.body = body
        self.received = []

    def render(self, request):
        self.received.append((request.method, request.content.read(), request.getHeader("authorization")))
        status = self.statuses.pop(0) if self.statuses else 200
        request.setResponseCode(status)
        if status == 200:
            return b"ok"
        return self.body or b"<Error><Code>Busy</Code><Message>try later</Message></Error>"


async def _serve(site_resource):
    return await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(server.Site(site_resource))


async def _with_client(flaky, call, retries=3):
    port = await _serve(flaky)
    http = HttpClient(reactor, KEYS, "us-east-1", retries=retries, backoff=0.01)
    try:
        return await call(http, f"http://127.0.0.1:{port.getHost().port}/bucket/key")
    finally:
        await http.close()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_busy_server_is_asked_again_and_progress_counts_each_byte_once(tmp_path):
    path = tmp_path / "part"
    path.write_bytes(b"x" * 300_000)
    body = FileBody(str(path), 300_000, hashlib.sha256(path.read_bytes()).hexdigest())
    flaky = Flaky([503, 500])
    sent = []

    reply = await _with_client(
        flaky, lambda http, url: http.request("PUT", url, service="s3", body=body, on_sent=sent.append)
    )
    assert reply.status == 200 and reply.body == b"ok"
    assert [method for method, _, _ in flaky.received] == [b"PUT"] * 3
    assert all(content == b"x" * 300_000 for _, content, _ in flaky.received)
    assert all(auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") for _, _, auth in flaky.received)
    assert sum(sent) == 300_000  # the two failed attempts' bytes were taken back


@pytest_twisted.ensureDeferred
async def test_a_refusal_is_not_retried_and_keeps_the_servers_code_and_message():
    flaky = Flaky([403], body=b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
    with pytest.raises(ServiceError) as caught:
        await _with_client(flaky, lambda http, url: http.request("GET", url, service="s3"))
    assert (caught.value.status, caught.value.code) == (403, "AccessDenied")
    assert str(caught.value) == "Access Denied (AccessDenied, HTTP 403)"
    assert len(flaky.received) == 1


@pytest_twisted.ensureDeferred
async def test_retries_give_up_with_the_last_error():
    flaky = Flaky([503] * 10)
    with pytest.raises(ServiceError) as caught:
        await _with_client(flaky, lambda http, url: http.request("GET", url, service="s3"), retries=2)
    assert (caught.value.status, caught.value.code) == (503, "Busy")
    assert len(flaky.received) == 3


@pytest_twisted.ensureDeferred
async def test_a_refused_connection_is_a_network_error_after_the_retries():
    port = await _serve(Flaky([]))
    url = f"http://127.0.0.1:{port.getHost().port}/bucket"
    await port.stopListening()
    http = HttpClient(reactor, KEYS, "us-east-1", retries=1, backoff=0.01)
    try:
        with pytest.raises(NetworkError, match="connection refused"):
            await http.request("GET", url, service="s3")
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_a_request_that_must_not_run_twice_is_not_retried_once_the_server_may_have_acted():
    flaky = Flaky([500])
    with pytest.raises(ServiceError) as caught:
        await _with_client(flaky, lambda http, url: http.request("POST", url, service="ec2", idempotent=False))
    assert caught.value.status == 500
    assert len(flaky.received) == 1


@pytest_twisted.ensureDeferred
async def test_a_request_that_must_not_run_twice_is_retried_when_the_server_refused_it_undone():
    flaky = Flaky([503, 429])
    reply = await _with_client(flaky, lambda http, url: http.request("POST", url, service="ec2", idempotent=False))
    assert reply.status == 200
    assert len(flaky.received) == 3


class Silent(resource.Resource):
    """Takes the request and never answers."""

    isLeaf = True

    def render(self, request):
        return server.NOT_DONE_YET


@pytest_twisted.ensureDeferred
async def test_a_server_that_goes_quiet_is_given_up_after_the_idle_timeout():
    port = await _serve(Silent())
    http = HttpClient(reactor, KEYS, "us-east-1", retries=0, timeout=0.2)
    try:
        with pytest.raises(NetworkError, match=r"nothing sent or received for 0.2 s"):
            await http.request("GET", f"http://127.0.0.1:{port.getHost().port}/bucket", service="s3")
    finally:
        await http.close()
        await port.stopListening()
