"""The few private parts of Twisted the HTTP edge relies on, in one place, each with a safe fallback.

- ``request_line``: HTTPChannel keeps the request line in ``_command``,
  ``_path`` and ``_version`` until the body is complete; S3Request needs it
  when the headers are (to route and authenticate before the body).
- ``sendable_now`` / ``send_now``: a small answer is sent with one send()
  when the TCP transport has nothing queued, instead of waiting a reactor
  turn; whether anything is queued is read from FileDescriptor's
  ``_tempDataBuffer``, ``dataBuffer`` and ``offset``.
- ``generic_channel``: ``http._GenericHTTPChannelProtocol`` wraps a channel
  so that TLS can negotiate HTTP/2, as Twisted's own Site does.

tests/unit/test_twisted_internals.py is the canary: it fails when a Twisted
release moves any of these. Until then each function falls back to the
public path (queue the data; Twisted's own channel) whenever what it finds
is not exactly what it expects, so a change costs speed, never order or bytes.
"""

from twisted.internet import tcp
from twisted.web import http


def request_line(channel) -> tuple:
    """(method, uri, version) of the request whose headers *channel* has just parsed."""
    return channel._command, channel._path, channel._version


def headers_too_large(channel) -> bool:
    """Whether *channel* has just refused a request for more headers, or more bytes of them, than it takes.

    Twisted keeps the counts privately; if they are gone, a refusal is
    taken to be for some other reason (an answer with a less precise code).
    """
    count = getattr(channel, "_receivedHeaderCount", 0)
    size = getattr(channel, "_receivedHeaderSize", 0)
    return count > channel.maxHeaders or size > channel.totalHeadersSize


def sendable_now(transport) -> bool:
    """Whether *transport* is plain TCP, open for writing, with nothing queued to send before new data.

    A pending loseConnection is no obstacle: the close waits for the queue
    to empty, and data sent at once was never in it.
    """
    try:
        return (
            isinstance(transport, tcp.Connection)
            and not getattr(transport, "TLS", False)
            and transport.connected
            and not transport._writeDisconnected
            and not transport._tempDataBuffer
            and isinstance(transport.dataBuffer, (bytes, bytearray, memoryview))
            and transport.offset == len(transport.dataBuffer)
        )
    except (AttributeError, TypeError):
        # A Twisted whose FileDescriptor keeps its queue otherwise: its own path, a little slower.
        return False


def send_now(transport, chunks: list) -> None:
    """Send *chunks* on *transport*: at once if it is plain TCP with nothing queued; else (and the rest) queued.

    Once data is queued, Twisted's own bookkeeping (a connection lost while
    sending, a pending loseConnection) takes over.
    """
    if sendable_now(transport):
        data = b"".join(chunks)
        sent = transport.writeSomeData(data)
        # Anything but a count (a lost connection) is left to the queued path to find out.
        if isinstance(sent, int):
            if sent >= len(data):
                return
            chunks = [data[sent:]]
    transport.writeSequence(chunks)


def generic_channel(channel):
    """*channel* wrapped as Twisted's Site wraps its HTTPChannel (HTTP/2 where TLS negotiates it)."""
    wrapper = getattr(http, "_GenericHTTPChannelProtocol", None)
    return channel if wrapper is None else wrapper(channel)
