"""S3Request against Twisted's HTTPChannel, in memory.

S3Request reads the request line from private HTTPChannel attributes at
``gotLength`` time (Twisted only hands it over once the body is complete);
these tests make a Twisted upgrade that renames or moves them fail loudly
here rather than as dropped connections in production.
"""

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web import http

from objectstore.errors import NoSuchBucket
from objectstore.web.access_log import redact_query
from objectstore.web.body import BufferedBody
from objectstore.web.limits import BODY_RATE_WINDOW, HEADER_TIMEOUT, MIN_BODY_RATE, ConnectionLimits
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
        request.received = Received.of_document(BufferedBody(100_000))
        request.auth = Unsigned()


class Unsigned:
    """An authentication that checks no body signature."""

    def checked_body(self, sink):
        return sink


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


def test_headers_sent_a_byte_every_few_seconds_are_cut_off_within_the_header_timeout():
    """Slowloris: each byte restarts the idle timeout, but not the headers' own deadline."""
    clock = task.Clock()
    channel, transport = connect(S3Site(StubRoot(StubLeaf()), reactor=clock))

    for byte in b"GET /bucket HTTP/1.1\r\nHost: x\r\n":
        channel.dataReceived(bytes([byte]))
        if transport.disconnecting:
            break
        clock.advance(5)
    assert transport.disconnecting
    # Cut at the first byte past the header timeout (the idle timeout never came near).
    assert HEADER_TIMEOUT < clock.seconds() <= HEADER_TIMEOUT + 5


def slow_site(clock, **limits):
    return S3Site(StubRoot(StubLeaf()), reactor=clock, limits=ConnectionLimits(**limits))


def test_a_body_at_the_minimum_rate_is_not_cut_off_by_the_header_timeout():
    clock = task.Clock()
    channel, transport = connect(slow_site(clock))

    channel.dataReceived(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n")
    for _ in range(60):
        clock.advance(1)
        channel.dataReceived(b"x" * MIN_BODY_RATE)  # just fast enough, for longer than the header timeout
    assert not transport.disconnecting
    assert transport.value() == b""


@pytest_twisted.ensureDeferred
async def test_a_body_slower_than_the_minimum_rate_is_answered_request_timeout():
    clock = task.Clock()
    channel, transport = connect(slow_site(clock))

    channel.dataReceived(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n")
    sent = 0
    while not transport.value() and clock.seconds() < 120:
        clock.advance(5)
        channel.dataReceived(b"x" * 100)  # 20 bytes a second: within the idle timeout, under the rate
        sent += 100
        await next_turn()

    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"<Code>RequestTimeout</Code>" in answer
    assert transport.disconnecting
    # Cut at the first bytes after one window of the rate (20 s), not at the idle timeout.
    assert BODY_RATE_WINDOW <= clock.seconds() <= BODY_RATE_WINDOW + 5


def test_with_no_minimum_body_rate_a_trickling_body_is_kept():
    clock = task.Clock()
    channel, transport = connect(slow_site(clock, min_body_rate=0))

    channel.dataReceived(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n")
    for _ in range(20):
        clock.advance(5)
        channel.dataReceived(b"x")
    assert not transport.disconnecting


def test_headers_arriving_whole_in_time_leave_no_clock_running():
    clock = task.Clock()
    channel, transport = connect(slow_site(clock, min_body_rate=0))

    channel.dataReceived(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\n")
    clock.advance(HEADER_TIMEOUT - 1)
    channel.dataReceived(b"Content-Length: 3\r\n\r\n")
    assert channel._channel._headers_started is None
    clock.advance(HEADER_TIMEOUT)
    channel.dataReceived(b"ab")
    assert not transport.disconnecting


def test_a_get_starts_no_body_clock():
    clock = task.Clock()
    channel, _ = connect(slow_site(clock))

    channel.dataReceived(b"GET /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n")
    assert channel._channel._body_window is None


@pytest_twisted.ensureDeferred
async def test_a_body_short_of_its_length_is_answered_request_timeout_after_the_idle_timeout():
    """S3 answers a body that stops short 400 RequestTimeout; closing silently leaves the client guessing."""
    clock = task.Clock()
    channel, transport = connect(slow_site(clock))

    channel.dataReceived(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nHel")
    clock.advance(59)
    assert not transport.disconnecting
    clock.advance(2)
    await next_turn()

    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"<Code>RequestTimeout</Code>" in answer
    assert b"Connection: close" in answer
    assert transport.disconnecting


def test_a_connection_idle_between_requests_is_closed_after_a_minute():
    clock = task.Clock()
    channel, transport = connect(slow_site(clock))

    clock.advance(59)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting
    assert transport.value() == b""


# -- what Twisted answers a bare 400 to gets an S3 error document -------------------------


def test_too_many_headers_get_request_header_section_too_large():
    channel, transport = connect(S3Site(StubRoot(StubLeaf())))
    flood = b"".join(b"X-Flood-%d: %d\r\n" % (i, i) for i in range(10_000))

    channel.dataReceived(b"GET /bucket HTTP/1.1\r\nHost: x\r\n" + flood + b"\r\n")

    answer = transport.value()
    assert answer.count(b"HTTP/1.1 ") == 1
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"<Code>RequestHeaderSectionTooLarge</Code>" in answer
    assert b"Content-Type: application/xml" in answer
    assert transport.disconnecting


def test_a_request_line_that_does_not_parse_gets_bad_request():
    channel, transport = connect(S3Site(StubRoot(StubLeaf())))

    channel.dataReceived(b"NONSENSE\r\n\r\n")

    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"<Code>BadRequest</Code>" in answer
    assert b"<RequestId>" in answer
    assert transport.disconnecting


# -- connection caps ------------------------------------------------------------------------


def connect_from(site, host):
    channel = site.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
    channel.makeConnection(transport)
    return channel, transport


def test_connections_past_the_per_address_cap_are_answered_slow_down():
    site = S3Site(StubRoot(StubLeaf()), limits=ConnectionLimits(max_connections_per_address=2))
    first = connect_from(site, "10.0.0.1")
    connect_from(site, "10.0.0.1")
    third_channel, third = connect_from(site, "10.0.0.1")
    elsewhere_channel, elsewhere = connect_from(site, "10.0.0.2")

    third_channel.dataReceived(b"GET /bucket HTTP/1.1\r\nHost: x\r\n\r\n")
    elsewhere_channel.dataReceived(b"GET /bucket HTTP/1.1\r\nHost: x\r\n\r\n")

    assert third.value().startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"<Code>SlowDown</Code>" in third.value()
    assert third.disconnecting
    assert not elsewhere.value().startswith(b"HTTP/1.1 503")
    assert (site.connections.total, site.connections.from_address("10.0.0.1")) == (3, 2)

    # Once one of them closes, the address may connect again.
    first[0].connectionLost(None)
    third_channel.connectionLost(None)
    assert site.connections.from_address("10.0.0.1") == 1
    channel, transport = connect_from(site, "10.0.0.1")
    channel.dataReceived(b"GET /bucket HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not transport.value().startswith(b"HTTP/1.1 503")


def test_connections_past_the_total_cap_are_answered_slow_down():
    site = S3Site(StubRoot(StubLeaf()), limits=ConnectionLimits(max_connections=2))
    connect_from(site, "10.0.0.1"), connect_from(site, "10.0.0.2")
    channel, transport = connect_from(site, "10.0.0.3")

    channel.dataReceived(b"GET /bucket HTTP/1.1\r\nHost: x\r\n\r\n")

    assert b"<Code>SlowDown</Code>" in transport.value()
    assert site.connections.total == 2


def test_a_turned_away_connection_that_sends_nothing_is_closed_after_the_header_timeout():
    clock = task.Clock()
    site = S3Site(StubRoot(StubLeaf()), reactor=clock, limits=ConnectionLimits(max_connections=1))
    connect_from(site, "10.0.0.1")
    _, transport = connect_from(site, "10.0.0.2")

    clock.advance(HEADER_TIMEOUT + 1)
    assert transport.disconnecting


def test_no_caps_when_they_are_zero():
    site = S3Site(StubRoot(StubLeaf()), limits=ConnectionLimits(max_connections=0, max_connections_per_address=0))
    for _ in range(50):
        connect_from(site, "10.0.0.1")
    assert site.connections.total == 50
