"""Canaries for the private parts of Twisted that objectstore/web/twisted_internals.py reads.

If one of these fails after a Twisted upgrade, the fast paths have fallen
back to the public ones (slower, still correct): update the module, then
these tests. The ordering tests check that the fast send can never put
bytes ahead of bytes already queued.
"""

import hashlib

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.web import http

from objectstore.web import twisted_internals as internals


class _Server(Protocol):
    def __init__(self, connected):
        self.connected_ = connected

    def connectionMade(self):
        self.connected_.callback(self.transport)


class _Client(Protocol):
    def __init__(self, expected):
        self.received = bytearray()
        self.expected = expected
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.received += data
        if len(self.received) >= self.expected and not self.done.called:
            self.done.callback(bytes(self.received))


async def _connection(expected):
    """(server-side transport, client protocol, port) of a real loopback TCP connection."""
    connected = defer.Deferred()
    port = reactor.listenTCP(0, Factory.forProtocol(lambda: _Server(connected)), interface="127.0.0.1")
    client = _Client(expected)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), client)
    return await connected, client, port


def test_the_channel_keeps_the_request_line_where_request_line_reads_it():
    seen = []

    class Channel(http.HTTPChannel):
        def allHeadersReceived(self):
            seen.append(internals.request_line(self))
            super().allHeadersReceived()

    channel = Channel()
    channel.requestFactory = lambda *a, **kw: http.Request(*a, **kw)
    channel.makeConnection(StringTransport())
    channel.dataReceived(b"PUT /b/k?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n")
    assert seen == [(b"PUT", b"/b/k?x=1", b"HTTP/1.1")]


def test_twisted_still_wraps_its_channel_for_http2():
    assert hasattr(http, "_GenericHTTPChannelProtocol")
    wrapped = internals.generic_channel(http.HTTPChannel())
    assert isinstance(wrapped, http._GenericHTTPChannelProtocol)


@pytest_twisted.ensureDeferred
async def test_a_tcp_transport_has_the_queue_the_fast_send_reads():
    transport, client, port = await _connection(4)
    try:
        for name in ("_writeDisconnected", "_tempDataBuffer", "dataBuffer", "offset", "writeSomeData", "connected"):
            assert hasattr(transport, name), name
        assert internals.sendable_now(transport)  # a fresh connection: nothing queued
        internals.send_now(transport, [b"o", b"k!!"])
        assert not transport._tempDataBuffer and transport.offset == len(transport.dataBuffer)
        assert await client.done == b"ok!!"
    finally:
        client.transport.loseConnection()
        transport.loseConnection()
        await port.stopListening()


@pytest.mark.parametrize(
    "transport",
    [object(), StringTransport(), type("Odd", (), {"connected": True, "dataBuffer": [], "offset": 0})()],
    ids=["no transport attributes", "not TCP", "internals of another shape"],
)
def test_anything_unexpected_takes_the_queued_path(transport):
    assert internals.sendable_now(transport) is False


@pytest.mark.parametrize("turns", [0, 5], ids=["still in Twisted's queue", "partly sent, socket full"])
@pytest_twisted.ensureDeferred
async def test_bytes_queued_before_are_never_overtaken_by_a_fast_send(turns):
    block = hashlib.sha256(b"backlog").digest() * 1024
    backlog = block * 256  # 8 MiB: more than the socket buffers hold
    transport, client, port = await _connection(len(backlog) + 4)
    try:
        client.transport.pauseProducing()  # a slow reader: the server's queue stays full
        transport.write(backlog)
        for _ in range(turns):
            await task.deferLater(reactor, 0.01, lambda: None)
        assert not internals.sendable_now(transport)
        internals.send_now(transport, [b"TA", b"IL"])
        client.transport.resumeProducing()
        received = await client.done
        assert len(received) == len(backlog) + 4
        assert received[-4:] == b"TAIL" and received[:-4] == backlog
    finally:
        client.transport.loseConnection()
        transport.loseConnection()
        await port.stopListening()
