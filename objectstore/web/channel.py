"""S3Channel: Twisted's HTTP/1.1 channel with a fast send path for small answers.

The Twisted internals it leans on are behind web/twisted_internals.py,
which falls back to Twisted's own way whenever they are not exactly as
expected.
"""

import time

from twisted.web import http
from twisted.web.http_headers import Headers

from objectstore.errors import BadRequest, RequestHeaderSectionTooLarge, RequestTimeout, SlowDown
from objectstore.web import twisted_internals as internals
from objectstore.web.errors import connection_answer
from objectstore.web.limits import BODY_RATE_WINDOW, HEADER_TIMEOUT, MIN_BODY_RATE


def send_at_once(channel, write, *args):
    """Run ``write(*args)``, sending what it writes to *channel* at once (see S3Channel.corked)."""
    corked = getattr(channel, "corked", None)
    if corked is None:
        write(*args)
    else:
        corked(write, *args)


# Seconds a connection answered by the channel itself is read (and dropped) before it is cut.
LINGER = 5


class S3Channel(http.HTTPChannel):
    """HTTP/1.1 that costs fewer system calls per request than Twisted's, and that slow clients cannot hold.

    Twisted's Request asks its channel for both of the connection's
    addresses when it is made (the local one costs a getsockname() every
    time): they are looked up once per connection. And a small answer is
    sent by the call that writes it (see ``corked``), not at the reactor's
    next turn.

    Twisted's idle timeout restarts with every byte, so a client sending
    its headers or its body a byte every few seconds (slowloris) would hold
    the connection forever. Here a byte of headers arriving more than
    ``header_timeout`` after their first closes the connection, and a body
    slower than ``min_body_rate`` over a window of BODY_RATE_WINDOW seconds
    (or silent for the idle timeout) is answered ``400 RequestTimeout``, as
    S3 answers it. What Twisted answers a bare 400 to (too many headers, a
    request it cannot parse) gets an S3 error document, and a connection
    over the caps (web/limits.py) gets ``503 SlowDown``.
    """

    _host = _peer = None
    # While ``corked`` runs: what is written, to send in one piece.
    _chunks = None
    header_timeout = HEADER_TIMEOUT
    min_body_rate = MIN_BODY_RATE
    # Between requests or inside headers (not in a body, nor while a request is answered).
    _awaiting_headers = True
    # When the first byte of the headers being received arrived (seconds of ``seconds``).
    _headers_started = None
    # While a body arrives: (when the current rate window began, bytes since).
    _body_window = None
    seconds = staticmethod(time.monotonic)  # the site's reactor's, see s3_channel
    # The counts this connection is in (web/limits.Connections), and its client's address there.
    _connections = None
    _address = ""
    # Over a cap: answered 503 SlowDown at its first bytes, then closed.
    _turned_away = False

    # -- connection caps -----------------------------------------------------

    def connectionMade(self):
        super().connectionMade()
        connections = getattr(self.site, "connections", None)
        if connections is None:
            return
        address = getattr(self.getPeer(), "host", "")
        if connections.admit(address):
            self._connections, self._address = connections, address
        else:
            self._turned_away = True
            # Not answered at once: closing with its request unread would
            # reset the connection, and the client might lose the answer.
            self.setTimeout(self.header_timeout)

    def connectionLost(self, reason):
        if self._connections is not None:
            connections, self._connections = self._connections, None
            connections.release(self._address)
        super().connectionLost(reason)

    def _turn_away(self):
        self._log.info(
            "Turning {peer} away: {count} connections from it, {total} in all",
            peer=self._address or str(self.getPeer()),
            count=self.site.connections.from_address(self._address),
            total=self.site.connections.total,
        )
        self._answer_and_close(SlowDown("Too many connections; please reduce your request rate."))

    def _answer_and_close(self, error):
        """Answer *error* on the connection itself (no Request to answer through) and close it.

        The client may still be sending (the rest of 10,000 headers):
        closing with its bytes unread would reset the connection, and the
        client might never read its answer. So the sending half is closed,
        what still comes is read and dropped, and the connection is cut
        LINGER seconds later if the client has not closed it by then.
        """
        self.dataReceived = self.lineReceived = lambda *args: None
        self.setTimeout(None)
        self.transport.write(connection_answer(error))
        half_close = getattr(self.transport, "loseWriteConnection", None)  # plain TCP, not TLS
        if half_close is None:
            self.loseConnection()
        else:
            half_close()
        self._abortingCall = self.callLater(LINGER, self.forceAbortClient)

    # -- headers and bodies in time -------------------------------------------

    def dataReceived(self, data):
        if self._awaiting_headers:
            # No timer per request (a callLater and its cancel on every small
            # request): the clock is read as bytes arrive, and the idle
            # timeout still closes a connection that goes silent.
            now = self.seconds()
            if self._headers_started is None:
                if self._turned_away:
                    self._turn_away()
                    return
                self._headers_started = now
            elif now - self._headers_started > self.header_timeout:
                self._log.info(
                    "Closing {peer}: request headers not whole within {seconds} s",
                    peer=str(self.getPeer()),
                    seconds=self.header_timeout,
                )
                self._awaiting_headers = False
                self.timeoutConnection()
                return
        elif self._body_window is not None and not self._body_in_time(len(data)):
            return
        super().dataReceived(data)

    def _body_in_time(self, size):
        """Whether the body still arrives fast enough, *size* more bytes of it now."""
        start, received = self._body_window
        received += size
        now = self.seconds()
        elapsed = now - start
        if elapsed < BODY_RATE_WINDOW:
            self._body_window = (start, received)
            return True
        if received >= self.min_body_rate * elapsed:
            self._body_window = (now, 0)
            return True
        self._log.info(
            "Answering {peer} RequestTimeout: {received} bytes of body in {seconds:.0f} s",
            peer=str(self.getPeer()),
            received=received,
            seconds=elapsed,
        )
        self._body_timed_out()
        return False

    def _body_timed_out(self):
        self._body_window = None
        request = self.requests[-1] if self.requests else None
        if request is None or getattr(request, "refused", True):
            self.loseConnection()
            return
        request.refuse(RequestTimeout())
        if self.abortTimeout is not None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)

    def allHeadersReceived(self):
        self._awaiting_headers = False
        self._headers_started = None
        if self.length != 0 and self.min_body_rate:
            self._body_window = (self.seconds(), 0)
        super().allHeadersReceived()

    def allContentReceived(self):
        self._body_window = None
        super().allContentReceived()

    def requestDone(self, request):
        # The next request's headers may already be buffered: super() feeds
        # them to dataReceived, which starts their clock.
        self._awaiting_headers = True
        super().requestDone(request)

    def timeoutConnection(self):
        if self._body_window is not None:
            # A body that stopped short of its length: S3 answers it.
            self._log.info("Answering {peer} RequestTimeout: its body stalled", peer=str(self.getPeer()))
            self._body_timed_out()
            return
        super().timeoutConnection()

    def _respondToBadRequestAndDisconnect(self):
        # Twisted's answer here is a bare "400 Bad Request"; S3 clients expect an error document.
        self._answer_and_close(RequestHeaderSectionTooLarge() if internals.headers_too_large(self) else BadRequest())

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
    channel = S3Channel()
    channel.seconds = site.reactor.seconds
    limits = getattr(site, "limits", None)
    if limits is not None:
        channel.header_timeout = limits.header_timeout
        channel.min_body_rate = limits.min_body_rate
    return internals.generic_channel(channel)
