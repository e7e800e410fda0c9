"""BodySink: where a request body's bytes go as they arrive.

A body flows through a chain of sinks, each passing the bytes on: the
aws-chunked decoder (web/awschunked.py), the check of the signed SHA-256
(auth/authenticate.py), the upload's own digests and size cap
(web/body.py), and at the end the storage backend's writer
(storage/writer.py) or a small buffer for an XML document. They share
this one interface, and tests/unit/test_body_sinks.py holds every one of
them to it.
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class BodySink(Protocol):
    """Takes a body's bytes in order, then is finished once or aborted.

    - ``write(data)``: the next bytes; may refuse them (an S3Error: too
      large, malformed framing), and the request is then refused;
    - ``finish()``: every byte is in; may refuse the body as a whole (a
      digest, signature or length that does not match), and then nothing
      is published; else the sink behind is finished in turn;
    - ``abort()``: the body will not complete (refused, connection lost):
      whatever was written so far is let go (a temp blob is removed), and
      the sink behind is aborted in turn.
    """

    def write(self, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...
