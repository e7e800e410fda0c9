"""S3Request: decides what to do with a request before its body arrives.

Twisted's ``Request`` spools a whole body to memory or a temp file and only
then looks at the request. S3 needs the opposite: route and authenticate as
soon as the headers are in, refuse a bad PUT before reading gigabytes (and
without a ``100 Continue``), and stream the body straight into its
destination as it arrives.
"""

import io
from typing import Any, Optional
from urllib.parse import parse_qs

from twisted.internet import reactor
from twisted.python.failure import Failure
from twisted.web import server

from objectstore.bodysink import BodySink
from objectstore.web import twisted_internals as internals
from objectstore.web.channel import send_at_once
from objectstore.web.errors import as_s3_error, write_error
from objectstore.web.received import Received
from objectstore.web.stamp import http_date_now, new_request_id

# Bodies above this size are read in BIG_READ gulps.
LARGE_BODY = 1024 * 1024
BIG_READ = 256 * 1024


# The headers _stamp sets on every answer, and Connection: what an answer keeps if it turns into an error.
STAMP_HEADERS = (b"server", b"date", b"x-amz-request-id", b"x-amz-id-2", b"connection")


class S3Request(server.Request):
    # Set in gotLength, by the router (web/root.py): who is calling and what
    # they name; by the resource's prepare (web/resource.py): the operation
    # that will answer and what its receive step decided; and here: where the
    # body is written (the operation's sink, maybe behind a check of the
    # signed SHA-256).
    auth: Any = None
    caller: Any = None
    api: str = "s3"
    bucket_name: Optional[str] = None
    key: Optional[str] = None
    resource: Any = None
    operation: Any = None
    received: Optional[Received] = None
    sink: Optional[BodySink] = None
    # An S3Error found before the body: answered once the request is processed.
    pending_error = None
    refused = False
    # After the body is complete, the operation owns what it was written to.
    body_done = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_id = new_request_id()
        self.content = io.BytesIO()
        self.bytes_received = 0

    # -- the channel's calls, in order --------------------------------------

    def gotLength(self, length):
        """All headers are in; the body (if any) has not been read yet."""
        channel = self.channel
        # The channel keeps the request line until the body is complete; we need it now.
        self.method, self.uri, self.clientproto = internals.request_line(channel)
        self.path, _, query = self.uri.partition(b"?")
        self.args = parse_query(query)
        self.site = channel.site
        self.declared_length = self._declared_length(length)
        try:
            self.resource = self.site.resource.resourceFor(self)
            self.resource.prepare(self, self.declared_length)
            # A V4 signature over the body's SHA-256 is checked as the body streams by.
            self.sink = self.auth.checked_body(self.received.sink)
        except BaseException:
            error = as_s3_error(Failure(), self)
            if self._body_expected(length) or self._body_announced():
                self.refuse(error)
            else:
                self.pending_error = error
            return
        if length is None or length > LARGE_BODY:
            self._read_in_big_gulps(True)

    def _read_in_big_gulps(self, big):
        """Read a large body a quarter MiB per wake-up, not Twisted's 64 KiB.

        A quarter of the trips through the Python parts of the stack per
        byte; set for the body only, as the same attribute also sizes the
        write buffer that answers are streamed through.
        """
        transport = getattr(self.channel, "transport", None)
        # Plain TCP transports only (TLS wraps its own reads).
        default = getattr(type(transport), "bufferSize", None)
        if default is not None:
            transport.bufferSize = BIG_READ if big else default

    def handleContentChunk(self, data):
        if self.refused:
            return
        self.bytes_received += len(data)
        try:
            self.sink.write(data)
        except BaseException:
            self.refuse(as_s3_error(Failure(), self))

    def requestReceived(self, command, path, version):
        """The whole body is in: answer (unless the request was refused already)."""
        if self.refused:
            return
        self.body_done = True
        self._read_in_big_gulps(False)
        try:
            if self.sink is not None:
                self.sink.finish()
        except BaseException:
            self.sink.abort()
            self.pending_error = as_s3_error(Failure(), self)
        self.process()

    def process(self):
        self._stamp()
        if self.pending_error is not None:
            write_error(self, self.pending_error)
            return
        try:
            self.render(self.resource)
        except BaseException:
            self.processingFailed(Failure())

    def write(self, data):
        if not self.startedWriting and self._completes_answer(data):
            # The headers and the whole body, sent together at once. Not a
            # first piece of more to come: if what follows fails (a blob
            # shorter than its record), the connection is cut before any
            # header left (see streaming.BodyProducer).
            send_at_once(self.channel, super().write, data)
        else:
            super().write(data)

    def _completes_answer(self, data):
        length = self.responseHeaders.getRawHeaders(b"Content-Length")
        return length is not None and length[-1] == b"%d" % len(data)

    def finish(self):
        if self.startedWriting:
            super().finish()
        else:
            # An answer without a body (most PUTs): headers only.
            send_at_once(self.channel, super().finish)

    def processingFailed(self, reason):
        write_error(self, as_s3_error(reason, self))
        return reason

    def connectionLost(self, reason):
        if self.sink is not None and not self.body_done:
            self.sink.abort()
        super().connectionLost(reason)

    # -- refusing before the body is read ----------------------------------

    def refuse(self, error):
        """Answer *error* now and close: the rest of the body is never read."""
        self.refused = True
        if self.sink is not None:
            self.sink.abort()
        # No "100 Continue": the client must not send the body at all.
        self.requestHeaders.removeHeader(b"Expect")
        self.channel.persistent = False
        self.setHeader(b"Connection", b"close")
        self._stamp()
        # Answered from the next reactor turn: the channel is still inside
        # its header/body parsing and must finish that step first.
        reactor.callLater(0, write_error, self, error)

    def _stamp(self):
        """The headers every answer carries, refusals included (STAMP_HEADERS)."""
        self.setHeader(b"Server", b"objectstore")
        self.setHeader(b"Date", http_date_now())
        self.setHeader(b"x-amz-request-id", self.request_id.encode())
        self.setHeader(b"x-amz-id-2", self.request_id.encode())

    def _declared_length(self, length):
        """The body length the headers declare; None when they declare none.

        Twisted reports 0 both for ``Content-Length: 0`` and for a request
        with neither Content-Length nor chunking; S3 answers the second with
        MissingContentLength, so the difference must survive.
        """
        if length == 0 and not self.requestHeaders.hasHeader(b"Content-Length"):
            return None
        return length

    def _body_expected(self, length):
        return length is None or length > 0

    def _body_announced(self):
        # "Expect: 100-continue" without a length: whatever the client sends
        # next is a body we cannot frame, so the connection cannot be reused.
        return self.requestHeaders.hasHeader(b"Expect")

    def getHeaderText(self, name, default=None):
        value = self.getHeader(name)
        return default if value is None else value.decode("latin-1")


def parse_query(query):
    """``{name: [value, ...]}`` of a raw query string, unquoted, as bytes.

    urllib keeps valueless names (?acl, ?delete), which Twisted's parser
    drops. Working on latin-1 text maps every byte to itself, so any bytes a
    client percent-encodes (``%ff``) come through unchanged instead of
    failing urllib's ASCII round trip.
    """
    if not query:
        return {}
    parsed = parse_qs(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return {name.encode("latin-1"): [v.encode("latin-1") for v in values] for name, values in parsed.items()}
