"""What S3Request and S3Site do once rather than per request, and still do right.

Every request pays for these, so they are done once per connection (the
socket's addresses), once per second (the Date header), without a system
call (request ids) or without a reactor turn (a small answer's send); these
tests check the answers did not change with it.
"""

import re
import socket

import pytest_twisted
from twisted.internet import reactor, tcp
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.web.http import datetimeToString

from objectstore.errors import NoSuchBucket
from objectstore.web.channel import S3Channel
from objectstore.web.site import S3Site
from objectstore.web.stamp import http_date_now, new_request_id


class CountingTransport(StringTransport):
    """A transport that counts how often its addresses are asked for."""

    def __init__(self):
        super().__init__(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 9000), peerAddress=IPv4Address("TCP", "127.0.0.1", 5555)
        )
        self.asked = {"host": 0, "peer": 0}

    def getHost(self):
        self.asked["host"] += 1
        return super().getHost()

    def getPeer(self):
        self.asked["peer"] += 1
        return super().getPeer()


class RefusingRoot:
    """Every request is for a bucket that does not exist: answered at once, with no body to read."""

    def __init__(self):
        self.requests = []

    def resourceFor(self, request):
        self.requests.append(request)
        raise NoSuchBucket()


def test_a_connection_looks_its_addresses_up_once_for_all_its_requests():
    root = RefusingRoot()
    channel = S3Site(root).buildProtocol(None)
    transport = CountingTransport()
    channel.makeConnection(transport)

    channel.dataReceived(b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n" * 3)

    assert transport.value().count(b"HTTP/1.1 404 ") == 3
    assert transport.asked == {"host": 1, "peer": 1}
    # Each request still knows both ends of its connection.
    for request in root.requests:
        assert request.getHost() == IPv4Address("TCP", "127.0.0.1", 9000)
        assert request.getClientAddress() == IPv4Address("TCP", "127.0.0.1", 5555)


def test_the_site_builds_s3_channels():
    channel = S3Site(RefusingRoot()).buildProtocol(None)
    channel.makeConnection(StringTransport())
    assert isinstance(channel._channel, S3Channel)


def test_request_ids_are_sixteen_upper_case_hex_digits_and_do_not_repeat():
    ids = [new_request_id() for _ in range(10000)]
    assert all(re.fullmatch("[0-9A-F]{16}", request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


def test_the_date_header_follows_the_clock_second_by_second():
    now = [1_700_000_000.25]

    def clock():
        return now[0]

    first = http_date_now(clock)
    assert first == datetimeToString(1_700_000_000)
    now[0] += 0.5  # the same second
    assert http_date_now(clock) == first
    now[0] += 0.5  # the next one
    assert http_date_now(clock) == datetimeToString(1_700_000_001)
    now[0] += 3600  # any later one
    assert http_date_now(clock) == datetimeToString(1_700_003_601)


def _ask(port, request, until):
    """Send *request* on a fresh TCP connection; what comes back, up to *until* (blocking)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while until not in received:
            data = sock.recv(65536)
            if not data:
                break
            received += data
        return received


@pytest_twisted.ensureDeferred
async def test_a_small_answer_is_sent_at_once_not_at_the_reactor_next_turn(monkeypatch):
    # Twisted would queue it and have epoll watch the socket for writability
    # (two epoll_ctl calls and a reactor turn); S3Channel sends it itself.
    watched = []
    add_writer = reactor.addWriter

    def watching(selectable):
        watched.append(selectable)
        add_writer(selectable)

    monkeypatch.setattr(reactor, "addWriter", watching)
    port = reactor.listenTCP(0, S3Site(RefusingRoot()), interface="127.0.0.1")
    try:
        received = await deferToThread(
            _ask, port.getHost().port, b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n" * 2, b"</Error>"
        )
    finally:
        await port.stopListening()

    assert received.startswith(b"HTTP/1.1 404 ")
    assert not [selectable for selectable in watched if isinstance(selectable, tcp.Server)]


@pytest_twisted.ensureDeferred
async def test_an_answer_that_closes_the_connection_is_sent_whole_before_the_close():
    port = reactor.listenTCP(0, S3Site(RefusingRoot()), interface="127.0.0.1")
    try:
        received = await deferToThread(
            _ask, port.getHost().port, b"GET /b/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"\0"
        )
    finally:
        await port.stopListening()

    assert received.startswith(b"HTTP/1.1 404 ")
    assert received.endswith(b"</Error>")
