"""Decoding ``Content-Encoding: aws-chunked`` bodies while they stream.

boto3 (>= 1.36 with its default checksums, and always over HTTPS) frames
PutObject and UploadPart bodies as aws-chunked: ``hex-size[;chunk-signature=S]
CRLF data CRLF`` ... a zero-size chunk, then trailer lines (``x-amz-checksum-
crc32:...``) and an empty line. Only the data may reach the object.

The decoder is a state machine over whatever slices the transport hands it,
so chunk boundaries may fall anywhere, down to single bytes.
"""

from objectstore.errors import IncompleteBody, InvalidArgument, InvalidRequest

MAX_LINE = 4096
MAX_TRAILER_BYTES = 16 * 1024


def is_aws_chunked(request):
    """Is the body aws-chunked framed (a STREAMING- payload hash, or aws-chunked with its decoded length)?

    ``Content-Encoding: aws-chunked`` alone is only a label: a client may
    send it over a plain body (s3-tests' content-encoding test does, and
    AWS stores such a body as sent, dropping the label). Framing comes with
    a STREAMING- payload hash or x-amz-decoded-content-length.
    """
    payload = request.getHeaderText(b"x-amz-content-sha256", "")
    if payload.startswith("STREAMING-"):
        return True
    encodings = request.getHeaderText(b"Content-Encoding", "")
    return "aws-chunked" in _tokens(encodings) and request.getHeader(b"x-amz-decoded-content-length") is not None


def decoded_length(request):
    """x-amz-decoded-content-length as a number, or None when the client did not know it."""
    text = request.getHeaderText(b"x-amz-decoded-content-length")
    if text is None:
        return None
    if not text.strip().isdigit():
        raise InvalidArgument(
            "x-amz-decoded-content-length must be a number",
            ArgumentName="x-amz-decoded-content-length",
            ArgumentValue=text,
        )
    return int(text)


def strip_aws_chunked(encodings):
    """A Content-Encoding list without its aws-chunked token (what the object itself is).

    As AWS stores it: a list without aws-chunked is kept as sent ("deflate, gzip"
    stays so); aws-chunked alone leaves nothing; otherwise the other codings stay
    as they were written ("aws-chunked, gzip" and botocore's "gzip,aws-chunked"
    are "gzip").
    """
    parts = encodings.split(",")
    if "aws-chunked" not in (part.strip().lower() for part in parts):
        return encodings
    return ",".join(part for part in parts if part.strip() and part.strip().lower() != "aws-chunked").strip()


def _tokens(encodings):
    return [e.strip().lower() for e in encodings.split(",")]


class ChunkObserver:
    """Hooks for whoever checks the framing (signatures, checksums); no-ops here.

    A hook refuses the body by raising an S3Error.
    """

    def chunk_started(self, size, extensions):
        pass

    def chunk_data(self, data):
        pass

    def chunk_ended(self):
        pass

    def trailers_received(self, trailers):
        pass


class _Observers(ChunkObserver):
    """Several observers seen as one, called in turn."""

    def __init__(self, observers):
        self._observers = list(observers)

    def chunk_started(self, size, extensions):
        for observer in self._observers:
            observer.chunk_started(size, extensions)

    def chunk_data(self, data):
        for observer in self._observers:
            observer.chunk_data(data)

    def chunk_ended(self):
        for observer in self._observers:
            observer.chunk_ended()

    def trailers_received(self, trailers):
        for observer in self._observers:
            observer.trailers_received(trailers)


class AwsChunkedDecoder:
    """Feeds the payload of an aws-chunked stream to *sink* (write/finish/abort)."""

    def __init__(self, sink, decoded_length=None, observers=()):
        self.sink = sink
        self.decoded_length = decoded_length
        self.observer = _Observers(observers)
        self.trailers = {}
        self.decoded = 0
        self._line = bytearray()
        self._remaining = 0
        self._state = self._size_line
        self._trailer_bytes = 0

    # The sink interface -------------------------------------------------

    def write(self, data):
        view = memoryview(data)
        while view:
            view = self._state(view)

    def finish(self):
        if self._state == self._trailer_line and not self._line:
            # AWS takes a body that ends after its trailer lines without the
            # closing empty line.
            self.observer.trailers_received(self.trailers)
            self._state = self._done
        if self._state != self._done:
            raise IncompleteBody("The aws-chunked body ended before its final chunk.")
        if self.decoded_length is not None and self.decoded != self.decoded_length:
            raise IncompleteBody(
                f"The decoded body has {self.decoded} bytes; x-amz-decoded-content-length "
                f"announced {self.decoded_length}."
            )
        self.sink.finish()

    def abort(self):
        self.sink.abort()

    # States: each consumes from the view and returns the rest ----------

    def _size_line(self, view):
        line, view = self._take_line(view)
        if line is None:
            return view
        size_text, _, extensions = line.partition(b";")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise InvalidRequest("Malformed aws-chunked chunk header.") from None
        if size < 0:
            raise InvalidRequest("Malformed aws-chunked chunk header.")
        self.observer.chunk_started(size, extensions.decode("latin-1"))
        if size == 0:
            self.observer.chunk_ended()
            self._state = self._trailer_line
        else:
            self._remaining = size
            self._state = self._data
        return view

    def _data(self, view):
        piece = view[: self._remaining]
        self._remaining -= len(piece)
        self.decoded += len(piece)
        if self.decoded_length is not None and self.decoded > self.decoded_length:
            raise IncompleteBody("The aws-chunked body is longer than x-amz-decoded-content-length.")
        data = bytes(piece)
        self.observer.chunk_data(data)
        self.sink.write(data)
        if self._remaining == 0:
            self._state = self._data_end
        return view[len(piece) :]

    def _data_end(self, view):
        line, view = self._take_line(view)
        if line is None:
            return view
        if line:
            raise InvalidRequest("Malformed aws-chunked body: data longer than its chunk size.")
        self.observer.chunk_ended()
        self._state = self._size_line
        return view

    def _trailer_line(self, view):
        line, view = self._take_line(view)
        if line is None:
            return view
        self._trailer_bytes += len(line)
        if self._trailer_bytes > MAX_TRAILER_BYTES:
            raise InvalidRequest("The aws-chunked trailer is too large.")
        if not line:
            self.observer.trailers_received(self.trailers)
            self._state = self._done
            return view
        name, colon, value = line.partition(b":")
        if not colon:
            raise InvalidRequest("Malformed aws-chunked trailer.")
        self.trailers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        return view

    def _done(self, view):
        # AWS ignores whatever follows the end of the aws-chunked body; it is
        # not part of the object either way.
        return view[len(view) :]

    def _take_line(self, view):
        """(line without CRLF, rest) once a whole line is in; (None, empty) until then."""
        end = bytes(view[: MAX_LINE + 2]).find(b"\n")
        if end < 0:
            self._line += view
            if len(self._line) > MAX_LINE:
                raise InvalidRequest("aws-chunked framing line too long.")
            return None, view[len(view) :]
        self._line += view[: end + 1]
        line = bytes(self._line).rstrip(b"\r\n")
        self._line = bytearray()
        return line, view[end + 1 :]
