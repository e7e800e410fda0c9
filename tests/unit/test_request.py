"""S3Request against Twisted's HTTPChannel, in memory.

S3Request reads the request line from private HTTPChannel attributes at
``gotLength`` time (Twisted only hands it over once the body is complete);
these tests make a Twisted upgrade that renames or moves them fail loudly
here rather than as dropped connections in production.
"""

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.testing import StringTransport
from twisted.web import http

from objectstore.errors import NoSuchBucket
from objectstore.web.access_log import redact_query
from objectstore.web.body import BufferedBody
from objectstore.web.received import Received
from objectstore.web.request import S3Request, parse_query
from objectstore.web.site import S3Site

PUT_HEAD = b"PUT /bucket/key?acl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"


def connect(factory):
    channel = factory.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


# -- the private Twisted names S3Request relies on ----------------------------------


def test_channel_exposes_the_request_line_when_headers_are_complete():
    seen = {}

    class Recorder(http.Request):
        def gotLength(self, length):
            channel = self.channel
            seen.update(command=channel._command, path=channel._path, version=channel._version, length=length)
            super().gotLength(length)

    factory = http.HTTPFactory()
    factory.protocol = http.HTTPChannel
    channel, _ = connect(factory)
    channel.requestFactory = Recorder

    channel.dataReceived(PUT_HEAD + b"\r\n")

    assert seen == {"command": b"PUT", "path": b"/bucket/key?acl", "version": b"HTTP/1.1", "length": 5}


def test_channel_reports_chunked_bodies_as_no_length():
    lengths = []

    class Recorder(http.Request):
        def gotLength(self, length):
            lengths.append(length)
            super().gotLength(length)

    factory = http.HTTPFactory()
    factory.protocol = http.HTTPChannel
    channel, _ = connect(factory)
    channel.requestFactory = Recorder

    channel.dataReceived(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")

    assert lengths == [None]


def test_request_marks_itself_disconnected_when_the_connection_is_lost():
    channel = http.HTTPChannel()
    channel.makeConnection(StringTransport())
    request = http.Request(channel)
    assert request._disconnected is False
    request.connectionLost(None)
    assert request._disconnected is True


def test_headers_keep_their_values_in_raw_headers():
    # The authenticator reads _rawHeaders (lower-casing the names itself)
    # to skip Twisted's re-capitalising of every name on every request.
    from twisted.web.http_headers import Headers

    headers = Headers()
    headers.addRawHeader(b"X-Amz-Date", b"20130524T000000Z")
    assert {name.lower(): values for name, values in headers._rawHeaders.items()} == {
        b"x-amz-date": [b"20130524T000000Z"]
    }


def test_site_channel_has_the_site_before_the_first_request():
    channel, _ = connect(S3Site(None))
    assert channel.site is not None


# -- S3Request's own behaviour, with a stub resource tree --------------------------------


class StubLeaf:
    """A leaf resource that records what it saw when asked to prepare."""

    def __init__(self, refuse_with=None):
        self.refuse_with = refuse_with
        self.prepared = []

    def prepare(self, request, length):
        self.prepared.append((request.method, request.path, request.args, length, request.bytes_received))
        if self.refuse_with is not None:
            raise self.refuse_with
        request.received = Received.of_document(BufferedBody(1024))


class StubRoot:
    def __init__(self, leaf):
        self.leaf = leaf

    def resourceFor(self, request):
        return self.leaf


async def next_turn():
    await task.deferLater(reactor, 0, lambda: None)


def test_s3request_prepares_from_the_headers_before_any_body_byte():
    leaf = StubLeaf()
    channel, _ = connect(S3Site(StubRoot(leaf)))

    channel.dataReceived(PUT_HEAD + b"\r\n")

    assert leaf.prepared == [(b"PUT", b"/bucket/key", {b"acl": [b""]}, 5, 0)]


@pytest.mark.parametrize(
    ("framing", "declared"),
    [(b"Content-Length: 0\r\n", 0), (b"", None), (b"Transfer-Encoding: chunked\r\n", None)],
)
def test_s3request_tells_an_empty_body_from_an_undeclared_one(framing, declared):
    leaf = StubLeaf()
    channel, _ = connect(S3Site(StubRoot(leaf)))

    channel.dataReceived(b"PUT /b/k HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n")

    assert leaf.prepared[0][3] == declared


@pytest_twisted.ensureDeferred
async def test_refused_request_gets_no_100_continue_and_is_closed():
    channel, transport = connect(S3Site(StubRoot(StubLeaf(refuse_with=NoSuchBucket()))))

    channel.dataReceived(PUT_HEAD + b"Expect: 100-continue\r\n\r\n")
    await next_turn()

    sent = transport.value()
    assert b"100 Continue" not in sent
    assert sent.startswith(b"HTTP/1.1 404 ")
    assert b"<Code>NoSuchBucket</Code>" in sent
    assert transport.disconnecting


@pytest_twisted.ensureDeferred
async def test_refused_request_ignores_the_body_that_follows():
    channel, transport = connect(S3Site(StubRoot(StubLeaf(refuse_with=NoSuchBucket()))))

    channel.dataReceived(PUT_HEAD + b"\r\nhello")
    await next_turn()

    assert transport.value().count(b"HTTP/1.1 ") == 1


def test_s3request_is_the_site_request_factory():
    assert S3Site(None).requestFactory is S3Request


# -- the query string ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "args"),
    [
        (b"", {}),
        (b"acl", {b"acl": [b""]}),
        (b"delete&quiet", {b"delete": [b""], b"quiet": [b""]}),
        (b"prefix=a%2Fb&prefix=c", {b"prefix": [b"a/b", b"c"]}),
        (b"prefix=donn%C3%A9es", {b"prefix": ["données".encode()]}),
        (b"x=%ff%fe", {b"x": [b"\xff\xfe"]}),
        (b"x=\xff", {b"x": [b"\xff"]}),
        (b"a+b=c+d", {b"a b": [b"c d"]}),
    ],
)
def test_parse_query_keeps_every_byte_and_valueless_names(query, args):
    assert parse_query(query) == args


@pytest.mark.parametrize(
    ("uri", "logged"),
    [
        (b"/b/k?X-Amz-Signature=abc123&x=1", b"/b/k?X-Amz-Signature=REDACTED&x=1"),
        (b"/b/k?AWSAccessKeyId=AK&Signature=c2ln%3D&Expires=1", b"/b/k?AWSAccessKeyId=AK&Signature=REDACTED&Expires=1"),
        (b"/b/k?a=1&X-Amz-Security-Token=tok", b"/b/k?a=1&X-Amz-Security-Token=REDACTED"),
        (b"/b/k?prefix=Signature", b"/b/k?prefix=Signature"),
    ],
)
def test_access_log_redacts_bearer_query_parameters(uri, logged):
    assert redact_query(uri) == logged


# -- idle connections (slowloris) ---------------------------------------------------------


def test_connection_idle_for_a_minute_is_closed():
    clock = task.Clock()
    channel, transport = connect(S3Site(StubRoot(StubLeaf()), reactor=clock))

    channel.dataReceived(b"GET /bucket HTTP/1.1\r\n")
    clock.advance(59)
    assert not transport.disconnecting
    channel.dataReceived(b"H")  # one byte, then silence longer than the timeout
    clock.advance(70)

    assert transport.disconnecting
