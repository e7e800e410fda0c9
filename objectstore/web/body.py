"""What a request body is written to while it arrives."""

import base64
import binascii
import hashlib
import io

from objectstore.checksums import trailer_value
from objectstore.errors import BadDigest, EntityTooLarge, InvalidDigest, MalformedXML
from objectstore.web.awschunked import ChunkObserver

MAX_OBJECT_SIZE = 5 * 1024**3


class BufferedBody:
    """A small body (an XML document) kept in memory up to a cap.

    With *content_md5* (the 16 raw bytes of a Content-MD5 header) the body
    is refused with BadDigest when it is complete, before any operation
    acts on a document damaged on the way.
    """

    def __init__(self, limit, too_large=MalformedXML, content_md5=None):
        self._buffer = io.BytesIO()
        self._limit = limit
        self._too_large = too_large
        self._expected_md5 = content_md5

    def write(self, data):
        if self._buffer.tell() + len(data) > self._limit:
            raise self._too_large()
        self._buffer.write(data)

    def finish(self):
        if self._expected_md5 is not None:
            check_md5(self._expected_md5, hashlib.md5(self._buffer.getvalue()))

    def abort(self):
        self._buffer = io.BytesIO()

    def value(self):
        return self._buffer.getvalue()


class UploadBody:
    """An object's bytes, streamed into a storage writer and checked on the way.

    *checksum* (a RequestChecksum, or None) is computed over the same bytes
    as the MD5; once the body is complete and checked, ``checksums`` holds
    what to store with the object.
    """

    def __init__(self, writer, content_md5=None, max_size=MAX_OBJECT_SIZE, checksum=None):
        self.writer = writer
        self._expected_md5 = content_md5
        self._max_size = max_size
        self.checksum = checksum
        self.checksums = {}

    def write(self, data):
        if self.writer.size + len(data) > self._max_size:
            raise EntityTooLarge(ProposedSize=self.writer.size + len(data), MaxSizeAllowed=self._max_size)
        if self.checksum is not None:
            self.checksum.update(data)
        self.writer.write(data)

    def finish(self):
        check_md5(self._expected_md5, self.writer.md5)
        if self.checksum is not None:
            self.checksums = self.checksum.verify()
        self.writer.finish()

    def abort(self):
        self.writer.abort()


class TrailerChecksum(ChunkObserver):
    """Hands an aws-chunked trailer's checksum to the upload's RequestChecksum (or None).

    The payload itself is hashed by UploadBody, which sees the same decoded
    bytes whether or not the body was framed; this only reads the trailer.
    """

    def __init__(self, checksum):
        self._checksum = checksum

    def trailers_received(self, trailers):
        value = trailer_value(trailers, self._checksum.trailer if self._checksum else None)
        if value is not None:
            self._checksum.trailer_received(value)


def check_md5(expected, md5):
    """BadDigest unless *md5* (a hash object) has the *expected* digest (None: nothing to check)."""
    if expected is not None and expected != md5.digest():
        raise BadDigest(
            ExpectedDigest=base64.b64encode(expected).decode(),
            CalculatedDigest=base64.b64encode(md5.digest()).decode(),
        )


def parse_content_md5(value):
    """The 16 raw bytes of a Content-MD5 header, or InvalidDigest."""
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDigest() from None
    if len(digest) != 16:
        raise InvalidDigest()
    return digest
