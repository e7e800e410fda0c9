"""Every body sink keeps the one BodySink contract (objectstore/bodysink.py).

Each case is a sink as the server chains it, with a way to read back what
reached the end of the chain and to list what is left behind (temp blobs,
buffered bytes) after an abort.
"""

import hashlib
import os

import pytest

from objectstore.auth.authenticate import Sha256CheckedBody
from objectstore.auth.errors import XAmzContentSHA256Mismatch
from objectstore.bodysink import BodySink
from objectstore.errors import BadDigest, IncompleteBody, MalformedXML, S3Error
from objectstore.storage.blobs import BlobFiles
from objectstore.storage.writer import ObjectWriter
from objectstore.web.awschunked import AwsChunkedDecoder
from objectstore.web.body import BufferedBody, UploadBody
from tests.unit.test_awschunked import frame

PAYLOAD = os.urandom(100_000)


class Case:
    """A sink chain; *delivered()* and *left()* look at its end, *encode* frames the payload for it."""

    def __init__(self, sink, delivered, left, encode=lambda data: data):
        self.sink, self.delivered, self.left, self.encode = sink, delivered, left, encode


def _files(tmp_path):
    files = BlobFiles(str(tmp_path), durable=False, spares=0)
    files.create_folders()
    return files


def _temp_blobs(tmp_path):
    return sorted(os.listdir(tmp_path / "tmp"))


def _writer_case(tmp_path, inline_limit, wrap=lambda writer: writer, encode=lambda data: data):
    writer = ObjectWriter(_files(tmp_path), inline_limit)

    def delivered():
        if writer.blob is None:
            return writer.data()
        with open(tmp_path / "tmp" / writer.blob, "rb") as f:
            return f.read()

    def left():
        inline = [writer.data()] if writer.blob is None and writer.data() else []
        return _temp_blobs(tmp_path) + inline

    return Case(wrap(writer), delivered, left, encode)


def buffered(tmp_path, payload):
    body = BufferedBody(len(payload))
    return Case(body, body.value, lambda: [body.value()] if body.value() else [])


def inline_writer(tmp_path, payload):
    return _writer_case(tmp_path, inline_limit=len(payload))


def blob_writer(tmp_path, payload):
    return _writer_case(tmp_path, inline_limit=-1)


def upload(tmp_path, payload, md5=None):
    md5 = hashlib.md5(payload).digest() if md5 is None else md5
    return _writer_case(tmp_path, -1, wrap=lambda writer: UploadBody(writer, content_md5=md5))


def aws_chunked_upload(tmp_path, payload):
    return _writer_case(
        tmp_path,
        -1,
        wrap=lambda writer: AwsChunkedDecoder(UploadBody(writer), decoded_length=len(payload)),
        encode=lambda data: frame(data, chunk=8192),
    )


def sha256_checked_upload(tmp_path, payload, digest=None):
    digest = hashlib.sha256(payload).hexdigest() if digest is None else digest
    return _writer_case(tmp_path, -1, wrap=lambda writer: Sha256CheckedBody(UploadBody(writer), digest))


SINKS = [buffered, inline_writer, blob_writer, upload, aws_chunked_upload, sha256_checked_upload]


def _write_in_pieces(sink, data, piece=7919):
    for i in range(0, len(data), piece):
        sink.write(data[i : i + piece])


@pytest.mark.parametrize("make", SINKS)
def test_every_sink_declares_the_body_sink_interface(tmp_path, make):
    assert isinstance(make(tmp_path, PAYLOAD).sink, BodySink)


@pytest.mark.parametrize("make", SINKS)
def test_bytes_written_in_pieces_reach_the_end_of_the_chain_whole(tmp_path, make):
    case = make(tmp_path, PAYLOAD)
    _write_in_pieces(case.sink, case.encode(PAYLOAD))
    case.sink.finish()
    assert case.delivered() == PAYLOAD


@pytest.mark.parametrize("make", SINKS)
def test_an_aborted_body_leaves_nothing_behind(tmp_path, make):
    case = make(tmp_path, PAYLOAD)
    encoded = case.encode(PAYLOAD)
    _write_in_pieces(case.sink, encoded[: len(encoded) // 2])
    assert case.left() != [], "the half-written body is somewhere before the abort"
    case.sink.abort()
    assert case.left() == []


@pytest.mark.parametrize(
    "make, damage, error",
    [
        (buffered, lambda sink, data: sink.write(data + b"x"), MalformedXML),
        (upload, lambda sink, data: (sink.write(data[:-1] + bytes([data[-1] ^ 1])), sink.finish()), BadDigest),
        (aws_chunked_upload, lambda sink, data: (sink.write(data[:-5]), sink.finish()), IncompleteBody),
        (
            sha256_checked_upload,
            lambda sink, data: (sink.write(data[:-1] + bytes([data[-1] ^ 1])), sink.finish()),
            XAmzContentSHA256Mismatch,
        ),
    ],
    ids=["too-large-document", "content-md5", "aws-chunked-truncated", "signed-sha256"],
)
def test_a_sink_that_checks_refuses_a_damaged_body_with_its_s3_error(tmp_path, make, damage, error):
    case = make(tmp_path, PAYLOAD)
    with pytest.raises(error) as raised:
        damage(case.sink, case.encode(PAYLOAD))
    assert isinstance(raised.value, S3Error)
    # What the request does next (S3Request.requestReceived / refuse): abort the chain.
    case.sink.abort()
    assert case.left() == []
