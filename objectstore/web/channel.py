"""S3Channel: Twisted's HTTP/1.1 channel with a fast send path for small answers.

The Twisted internals it leans on are behind web/twisted_internals.py,
which falls back to Twisted's own way whenever they are not exactly as
expected.
"""

from twisted.web import http
from twisted.web.http_headers import Headers

from objectstore.web import twisted_internals as internals


def send_at_once(channel, write, *args):
    """Run ``write(*args)``, sending what it writes to *channel* at once (see S3Channel.corked)."""
    corked = getattr(channel, "corked", None)
    if corked is None:
        write(*args)
    else:
        corked(write, *args)


class S3Channel(http.HTTPChannel):
    """HTTP/1.1 that costs fewer system calls per request than Twisted's.

    Twisted's Request asks its channel for both of the connection's
    addresses when it is made (the local one costs a getsockname() every
    time): they are looked up once per connection. And a small answer is
    sent by the call that writes it (see ``corked``), not at the reactor's
    next turn.
    """

    _host = _peer = None
    # While ``corked`` runs: what is written, to send in one piece.
    _chunks = None

    def corked(self, write, *args):
        """Run ``write(*args)`` and send what it writes at once, with one send().

        Twisted queues every write until epoll reports the socket writable:
        two epoll_ctl() calls (watch for writability, then stop watching) and
        a pass through the reactor loop per answer. When nothing is queued
        before it, what the socket takes now goes now (all of a small
        answer); the rest is queued the usual way, after it.
        """
        if self._chunks is not None or not internals.sendable_now(self.transport):
            # Nested (a pipelined request answered meanwhile): the outer call
            # sends. Not plain TCP (TLS), or data queued: the usual way.
            write(*args)
            return
        self._chunks = []
        try:
            write(*args)
        finally:
            chunks, self._chunks = self._chunks, None
            if chunks:
                internals.send_now(self.transport, chunks)

    def writeHeaders(self, version, code, reason, headers):
        if self._chunks is None or not isinstance(headers, Headers):
            super().writeHeaders(version, code, reason, headers)
            return
        chunks = self._chunks
        chunks += (version, b" ", code, b" ", reason, b"\r\n")
        for name, values in headers.getAllRawHeaders():
            for value in values:
                chunks += (name, b": ", value, b"\r\n")
        chunks.append(b"\r\n")

    def write(self, data):
        if self._chunks is None:
            super().write(data)
        else:
            self._chunks.append(data)

    def writeSequence(self, iovec):
        if self._chunks is None:
            super().writeSequence(iovec)
        else:
            self._chunks.extend(iovec)

    def getHost(self):
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self):
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer


def s3_channel(site):
    # Twisted's own factory, with S3Channel in place of HTTPChannel (the
    # wrapper still switches to HTTP/2 where TLS negotiates it).
    return internals.generic_channel(S3Channel())
