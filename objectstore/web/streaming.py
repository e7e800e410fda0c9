"""Streaming an object's bytes out with flat memory."""

from twisted.internet.interfaces import IPullProducer
from zope.interface import implementer

from objectstore.errors import ObjectDamaged

CHUNK = 256 * 1024


@implementer(IPullProducer)
class BodyProducer:
    """Writes bytes [start, end] of an opened object, a chunk each time the transport asks.

    A pull producer: Twisted calls ``resumeProducing`` when the socket has
    room, so a slow client holds one chunk of memory, not the object.
    """

    def __init__(self, request, body, start, end):
        self.request = request
        self.body = body
        self.offset = start
        self.end = end + 1

    def start(self):
        self.request.registerProducer(self, False)

    def resumeProducing(self):
        if self.body is None:
            return
        want = min(CHUNK, self.end - self.offset)
        try:
            data = self.body.read(self.offset, want) if want > 0 else b""
        except ObjectDamaged:
            data = b""  # found before its last byte was sent (see storage/integrity.py)
        if want > 0 and not data:
            # The blob is shorter than its record, or its bytes fail their
            # checksum: cut the connection rather than let the client take a
            # short or damaged body for a whole one.
            self._close()
            self.request.channel.transport.abortConnection()
            return
        self.offset += len(data)
        if data:
            self.request.write(data)
        if self.offset >= self.end:
            self._close()
            self.request.unregisterProducer()
            self.request.finish()

    def stopProducing(self):
        self._close()

    def _close(self):
        if self.body is not None:
            self.body.close()
            self.body = None
