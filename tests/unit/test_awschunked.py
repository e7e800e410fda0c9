"""The aws-chunked decoder, fed with chunk boundaries falling everywhere."""

import pytest

from objectstore.errors import IncompleteBody, InvalidRequest
from objectstore.web.awschunked import AwsChunkedDecoder


class Collect:
    def __init__(self):
        self.data = bytearray()
        self.finished = self.aborted = False

    def write(self, data):
        self.data += data

    def finish(self):
        self.finished = True

    def abort(self):
        self.aborted = True


def frame(payload, chunk=7, signed=False, trailers=None):
    out = bytearray()
    ext = b";chunk-signature=" + b"0" * 64 if signed else b""
    for i in range(0, len(payload), chunk):
        piece = payload[i : i + chunk]
        out += b"%x" % len(piece) + ext + b"\r\n" + piece + b"\r\n"
    out += b"0" + ext + b"\r\n"
    for name, value in (trailers or {}).items():
        out += f"{name}:{value}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def feed(stream, step, **kwargs):
    sink = Collect()
    decoder = AwsChunkedDecoder(sink, **kwargs)
    for i in range(0, len(stream), step):
        decoder.write(stream[i : i + step])
    decoder.finish()
    return sink, decoder


PAYLOAD = bytes(range(256)) * 3


@pytest.mark.parametrize("step", [1, 2, 3, 5, 13, 64, 10_000])
@pytest.mark.parametrize("signed", [False, True])
def test_payload_survives_any_split(step, signed):
    stream = frame(PAYLOAD, chunk=100, signed=signed, trailers={"x-amz-checksum-crc32": "AAAAAA=="})
    sink, decoder = feed(stream, step, decoded_length=len(PAYLOAD))
    assert bytes(sink.data) == PAYLOAD
    assert sink.finished
    assert decoder.trailers == {"x-amz-checksum-crc32": "AAAAAA=="}


def test_empty_payload():
    sink, _ = feed(frame(b""), 1, decoded_length=0)
    assert sink.data == b"" and sink.finished


def test_truncated_stream_is_incomplete():
    stream = frame(PAYLOAD)[:-10]
    decoder = AwsChunkedDecoder(Collect())
    decoder.write(stream)
    with pytest.raises(IncompleteBody):
        decoder.finish()


def test_decoded_length_mismatch_is_refused():
    with pytest.raises(IncompleteBody):
        feed(frame(PAYLOAD), 50, decoded_length=len(PAYLOAD) + 1)
    with pytest.raises(IncompleteBody):
        feed(frame(PAYLOAD), 50, decoded_length=len(PAYLOAD) - 1)


@pytest.mark.parametrize(
    "stream",
    [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n", b"3\r\nabc\r\n0\r\nno-colon\r\n\r\n", b"9" * 5000],
)
def test_malformed_framing_is_invalid_request(stream):
    decoder = AwsChunkedDecoder(Collect())
    with pytest.raises(InvalidRequest):
        decoder.write(stream)


def test_a_trailer_without_its_closing_empty_line_is_taken_as_aws_takes_it():
    sink = Collect()
    decoder = AwsChunkedDecoder(sink)
    decoder.write(b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n")
    decoder.finish()
    assert (sink.data, decoder.trailers) == (b"abc", {"x-amz-checksum-crc32": "NSRBwg=="})


def test_bytes_after_the_end_are_not_part_of_the_object():
    sink = Collect()
    decoder = AwsChunkedDecoder(sink)
    decoder.write(b"3\r\nabc\r\n0\r\n\r\ntrailing junk")
    decoder.finish()
    assert sink.data == b"abc"
