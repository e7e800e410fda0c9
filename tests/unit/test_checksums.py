"""S3 additional checksums: the algorithms, the header rules, the trailer through the aws-chunked decoder."""

import base64
import hashlib
import io
import os

import pytest
from botocore import httpchecksum

from objectstore.checksums import (
    ALGORITHMS,
    RequestChecksum,
    b64digest,
    checksum_type,
    is_valid_value,
    new_checksum,
    requested_checksum,
    trailer_value,
)
from objectstore.errors import BadDigest, InvalidRequest, MalformedTrailerError
from objectstore.web.awschunked import AwsChunkedDecoder
from objectstore.web.body import TrailerChecksum, UploadBody
from tests.s3http import aws_chunked

# The standard check input of CRC catalogues, and its published values
# (CRC-32 0xCBF43926, CRC-32C 0xE3069283, CRC-64/NVME 0xAE8B14860A799888);
# SHA1 and SHA256 as AWS answers for the same body.
CHECK_INPUT = b"123456789"
CHECK_VALUES = {
    "CRC32": "y/Q5Jg==",
    "CRC32C": "4waSgw==",
    "CRC64NVME": "rosUhgp5mIg=",
    "SHA1": "98O8HYCOBHMq32eZZczDTKeuNEE=",
    "SHA256": "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
}
# botocore's own implementation of each algorithm (the CRT ones as boto3 uses them).
BOTOCORE = {
    "CRC32": httpchecksum.Crc32Checksum,
    "CRC32C": httpchecksum.CrtCrc32cChecksum,
    "CRC64NVME": httpchecksum.CrtCrc64NvmeChecksum,
    "SHA1": httpchecksum.Sha1Checksum,
    "SHA256": httpchecksum.Sha256Checksum,
}


def checksum_of(algorithm, data, step=None):
    running = new_checksum(algorithm)
    step = step or max(len(data), 1)
    for i in range(0, len(data), step):
        running.update(data[i : i + step])
    return b64digest(running)


# -- the algorithms -------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_check_value_of_each_algorithm(algorithm):
    assert checksum_of(algorithm, CHECK_INPUT) == CHECK_VALUES[algorithm]


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("size", [0, 1, 7, 4096, 65_537, 1_000_003])
def test_each_algorithm_agrees_with_botocore(algorithm, size):
    data = os.urandom(size)
    reference = BOTOCORE[algorithm]()
    reference.update(data)
    assert checksum_of(algorithm, data) == reference.b64digest()


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("step", [1, 3, 1000, 65_536])
def test_pieces_give_the_checksum_of_the_whole(algorithm, step):
    data = os.urandom(200_001)
    assert checksum_of(algorithm, data, step) == checksum_of(algorithm, data)


def test_checksum_type_tells_a_composite_by_its_part_count():
    assert checksum_type("y/Q5Jg==") == "FULL_OBJECT"
    assert checksum_type("y/Q5Jg==-3") == "COMPOSITE"


# -- values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "short===",  # not base64
        "shrt",  # 3 bytes
        "toolong=",  # 5 bytes
        "^^^^^^==",
        "y^/^Q5^J^g==",
        "y/Q5Jg",  # padding missing
        " y/Q5Jg==",
        "",
    ],
)
def test_malformed_crc32_values(value):
    assert not is_valid_value("CRC32", value)


def test_a_value_with_stray_padding_bits_is_malformed():
    # Decodes to 20 bytes, but is not what those bytes encode to: AWS refuses it.
    assert is_valid_value("SHA1", "98O8HYCOBHMq32eZZczDTKeuNEE=")
    assert not is_valid_value("SHA1", "98O8HYCOBHMq32eZZczDTKeuNEF=")


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_each_check_value_is_valid_only_for_its_own_size(algorithm):
    value = CHECK_VALUES[algorithm]
    assert is_valid_value(algorithm, value)
    sizes = {a: len(base64.b64decode(v)) for a, v in CHECK_VALUES.items()}
    for other in ALGORITHMS:
        if sizes[other] != sizes[algorithm]:
            assert not is_valid_value(other, value)


# -- what the headers declare ---------------------------------------------------------


def test_no_checksum_headers_declare_nothing():
    assert requested_checksum({"content-md5": "x", "x-amz-checksum-mode": "ENABLED"}) is None


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_a_checksum_header_is_expected_of_the_body(algorithm):
    checksum = requested_checksum({f"x-amz-checksum-{algorithm.lower()}": CHECK_VALUES[algorithm]})
    assert (checksum.algorithm, checksum.expected, checksum.trailer) == (algorithm, CHECK_VALUES[algorithm], None)


def test_sdk_algorithm_naming_the_header_algorithm_in_any_case():
    for declared in ("CRC32", "crc32"):
        checksum = requested_checksum({"x-amz-sdk-checksum-algorithm": declared, "x-amz-checksum-crc32": "y/Q5Jg=="})
        assert checksum.algorithm == "CRC32"


def test_announced_trailer_is_expected_later():
    checksum = requested_checksum(
        {"x-amz-sdk-checksum-algorithm": "CRC64NVME", "x-amz-trailer": "x-amz-checksum-crc64nvme"}
    )
    assert (checksum.algorithm, checksum.expected, checksum.trailer) == ("CRC64NVME", None, "x-amz-checksum-crc64nvme")


@pytest.mark.parametrize("trailer", ["x-amz-checksum-crc32,", "x-amz-checksum-crc32,,", "x-amz-checksum-crc32, "])
def test_trailing_commas_in_x_amz_trailer_are_forgiven(trailer):
    assert requested_checksum({"x-amz-trailer": trailer}).trailer == "x-amz-checksum-crc32"


# The refusals and their messages, as AWS answers them.
MULTIPLE = "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
TRAILER_UNSUPPORTED = "The value specified in the x-amz-trailer header is not supported"
SDK_INVALID = "Value for x-amz-sdk-checksum-algorithm header is invalid."


@pytest.mark.parametrize(
    "headers, message",
    [
        ({"x-amz-checksum-crc32": "y/Q5Jg==", "x-amz-checksum-sha1": CHECK_VALUES["SHA1"]}, MULTIPLE),
        (
            {
                "x-amz-sdk-checksum-algorithm": "SHA256",
                "x-amz-checksum-crc32": "y/Q5Jg==",
                "x-amz-checksum-crc32c": "x",
            },
            MULTIPLE,
        ),
        ({"x-amz-checksum-crc32": "bad"}, "Value for x-amz-checksum-crc32 header is invalid."),
        ({"x-amz-checksum-sha256": "y/Q5Jg=="}, "Value for x-amz-checksum-sha256 header is invalid."),
        ({"x-amz-checksum-md5": "y/Q5Jg=="}, "The algorithm type you specified in x-amz-checksum- header is invalid."),
        ({"x-amz-sdk-checksum-algorithm": "CRC32C", "x-amz-checksum-crc32": "y/Q5Jg=="}, SDK_INVALID),
        ({"x-amz-sdk-checksum-algorithm": "INVALIDALGO", "x-amz-checksum-crc32": "y/Q5Jg=="}, SDK_INVALID),
        ({"x-amz-sdk-checksum-algorithm": "SHA1", "x-amz-trailer": "x-amz-checksum-crc32"}, SDK_INVALID),
        (
            {"x-amz-sdk-checksum-algorithm": "CRC32"},
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* "
            "or x-amz-trailer headers were found.",
        ),
        (
            {"x-amz-checksum-crc32": "y/Q5Jg==", "x-amz-trailer": "x-amz-checksum-crc32"},
            "Expecting a single x-amz-checksum- header",
        ),
        ({"x-amz-checksum-crc32": "y/Q5Jg==", "x-amz-trailer": "x-amz-checksum-crc32, x-amz-checksum-crc32"}, MULTIPLE),
        ({"x-amz-trailer": "x-amz-checksum-crc32, x-amz-checksum-crc32c"}, MULTIPLE),
        ({"x-amz-trailer": "x-amz-content-sha256"}, TRAILER_UNSUPPORTED),
        ({"x-amz-trailer": "x-amz-checksum-sha3"}, TRAILER_UNSUPPORTED),
        ({"x-amz-trailer": ", x-amz-checksum-crc32"}, TRAILER_UNSUPPORTED),
        ({"x-amz-trailer": ",x-amz-checksum-crc32"}, TRAILER_UNSUPPORTED),
        ({"x-amz-trailer": "x-amz-checksum-crc32, ,"}, TRAILER_UNSUPPORTED),
    ],
)
def test_declarations_aws_refuses(headers, message):
    with pytest.raises(InvalidRequest) as caught:
        requested_checksum(headers)
    assert caught.value.message == message


def test_checksum_algorithm_and_type_headers_are_no_checksums():
    # Tolerated on a PUT, as AWS does; they only mean something elsewhere.
    headers = {"x-amz-checksum-crc32": "y/Q5Jg==", "x-amz-checksum-algorithm": "crc32", "x-amz-checksum-type": "X"}
    assert requested_checksum(headers).algorithm == "CRC32"


# -- verification -----------------------------------------------------------------------


def test_matching_body_gives_what_to_store():
    checksum = RequestChecksum("CRC32", "y/Q5Jg==")
    checksum.update(b"1234")
    checksum.update(b"56789")
    assert checksum.verify() == {"CRC32": "y/Q5Jg=="}


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_mismatch_is_bad_digest_naming_the_algorithm(algorithm):
    checksum = RequestChecksum(algorithm, CHECK_VALUES[algorithm])
    checksum.update(b"123456780")
    with pytest.raises(BadDigest) as caught:
        checksum.verify()
    assert caught.value.message == f"The {algorithm} you specified did not match the calculated checksum."


def test_announced_trailer_never_received_is_malformed_trailer():
    checksum = RequestChecksum("CRC32", trailer="x-amz-checksum-crc32")
    checksum.update(CHECK_INPUT)
    with pytest.raises(MalformedTrailerError):
        checksum.verify()


def test_trailer_value_checks_the_announcement():
    assert trailer_value({"x-amz-checksum-crc32": "v"}, "x-amz-checksum-crc32") == "v"
    # The trailer signature of a signed stream is someone else's to check.
    assert trailer_value({"x-amz-trailer-signature": "s"}, None) is None
    assert trailer_value({}, None) is None
    for trailers, announced in [
        ({}, "x-amz-checksum-crc32"),
        ({"x-amz-checksum-crc32": "v"}, "x-amz-checksum-crc32c"),
        ({"x-amz-checksum-crc32": "v"}, None),
        ({"x-amz-checksum-crc32": "v", "x-amz-checksum-sha1": "w"}, "x-amz-checksum-crc32"),
    ]:
        with pytest.raises(MalformedTrailerError):
            trailer_value(trailers, announced)


def test_malformed_trailer_value_is_invalid_request():
    checksum = RequestChecksum("CRC32", trailer="x-amz-checksum-crc32")
    with pytest.raises(InvalidRequest) as caught:
        checksum.trailer_received("not=base-64")
    assert caught.value.message == "Value for x-amz-checksum-crc32 trailing header is invalid."


# -- through the aws-chunked decoder, as a PUT uses it ----------------------------------------


class Writer:
    """The part of a storage writer UploadBody uses; keeps what it is given."""

    def __init__(self):
        self.md5 = hashlib.md5()
        self.size = 0
        self.data = bytearray()
        self.aborted = False

    def write(self, data):
        self.md5.update(data)
        self.size += len(data)
        self.data += data

    def finish(self):
        self.finished = True

    def abort(self):
        self.aborted = True


def framed(payload, trailers):
    return aws_chunked(payload, trailers, chunk=100)


def upload(stream, headers, step):
    """Feed *stream* *step* bytes at a time through decoder, observer and UploadBody, as a PUT does."""
    checksum = requested_checksum(headers)
    body = UploadBody(Writer(), checksum=checksum)
    decoder = AwsChunkedDecoder(body, observers=[TrailerChecksum(checksum)])
    for i in range(0, len(stream), step):
        decoder.write(stream[i : i + step])
    decoder.finish()
    return body


PAYLOAD = os.urandom(1000)
ANNOUNCED = {"x-amz-sdk-checksum-algorithm": "CRC32C", "x-amz-trailer": "x-amz-checksum-crc32c"}


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 100_000])
def test_trailer_checksum_survives_any_split(step):
    stream = framed(PAYLOAD, {"x-amz-checksum-crc32c": checksum_of("CRC32C", PAYLOAD)})
    body = upload(stream, ANNOUNCED, step)
    assert bytes(body.writer.data) == PAYLOAD
    assert body.checksums == {"CRC32C": checksum_of("CRC32C", PAYLOAD)}


@pytest.mark.parametrize("step", [1, 5, 100_000])
def test_wrong_trailer_checksum_is_bad_digest(step):
    stream = framed(PAYLOAD, {"x-amz-checksum-crc32c": checksum_of("CRC32C", b"not the payload")})
    with pytest.raises(BadDigest):
        upload(stream, ANNOUNCED, step)


def test_botocore_framed_body_passes():
    # The exact bytes boto3 sends: its AwsChunkedWrapper with the checksum in the trailer.
    wrapper = httpchecksum.AwsChunkedWrapper(
        io.BytesIO(PAYLOAD),
        checksum_cls=httpchecksum.Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=333,
    )
    stream = wrapper.read()
    body = upload(stream, {"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-trailer": "x-amz-checksum-crc32"}, 1)
    assert body.checksums == {"CRC32": checksum_of("CRC32", PAYLOAD)}


def test_announced_trailer_missing_from_the_body_is_malformed_trailer():
    with pytest.raises(MalformedTrailerError):
        upload(framed(PAYLOAD, {}), ANNOUNCED, 1)


def test_unannounced_checksum_trailer_is_malformed_trailer():
    stream = framed(PAYLOAD, {"x-amz-checksum-crc32c": checksum_of("CRC32C", PAYLOAD)})
    with pytest.raises(MalformedTrailerError):
        upload(stream, {}, 1)


def test_header_checksum_of_a_framed_body_is_checked_against_the_decoded_bytes():
    body = upload(framed(PAYLOAD, {}), {"x-amz-checksum-sha256": checksum_of("SHA256", PAYLOAD)}, 3)
    assert body.checksums == {"SHA256": checksum_of("SHA256", PAYLOAD)}
    with pytest.raises(BadDigest):
        upload(framed(PAYLOAD + b"x", {}), {"x-amz-checksum-sha256": checksum_of("SHA256", PAYLOAD)}, 3)


def test_unframed_body_without_checksum_stores_none():
    body = UploadBody(Writer())
    body.write(PAYLOAD)
    body.finish()
    assert body.checksums == {}
