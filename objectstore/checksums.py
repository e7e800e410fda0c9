"""S3's additional checksums: ``x-amz-checksum-crc32`` and its kin.

A client names one algorithm (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) and
sends the checksum of the whole body, base64 of the big-endian digest,
either in a header or - announced by ``x-amz-trailer`` - in the trailer of
an aws-chunked body (boto3's default over HTTPS). The body is hashed as it
arrives with only that algorithm; a mismatch refuses the upload before
anything is stored, and a match is stored with the object as
``{"CRC32": "y/Q5Jg=="}``.

The checks, their order and their messages are those AWS answers with
(OpenStack Swift's s3api suite, run against AWS, spells them out). Nothing
here knows HTTP: the web layer hands in headers as a dict of lower-case
names, and an UploadPart can use the same RequestChecksum.
"""

import base64
import binascii
import hashlib
from typing import Any, Callable

from awscrt import checksums as crt
from isal.isal_zlib import crc32  # zlib's CRC32, SIMD-fast (see setup.py)

from objectstore.errors import BadDigest, InvalidRequest, MalformedTrailerError, S3Error

PREFIX = "x-amz-checksum-"
# Headers that share the prefix but carry no checksum value.
NOT_A_VALUE = frozenset({"x-amz-checksum-mode", "x-amz-checksum-algorithm", "x-amz-checksum-type"})
FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"


class _Crc:
    """A CRC carried as an integer from one piece to the next (zlib's and awscrt's shape)."""

    __slots__ = ("_function", "_size", "_value")

    def __init__(self, function, size):
        self._function = function
        self._size = size
        self._value = 0

    def update(self, data):
        self._value = self._function(data, self._value)

    def digest(self):
        return self._value.to_bytes(self._size, "big")


# Algorithm name -> a new running checksum (update(bytes), digest() -> bytes).
ALGORITHMS: dict[str, Callable[[], Any]] = {
    "CRC32": lambda: _Crc(crc32, 4),
    "CRC32C": lambda: _Crc(crt.crc32c, 4),
    "CRC64NVME": lambda: _Crc(crt.crc64nvme, 8),
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
}
_DIGEST_SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}


def new_checksum(algorithm: str) -> Any:
    """A running checksum of *algorithm* (one of ALGORITHMS)."""
    return ALGORITHMS[algorithm]()


def b64digest(checksum):
    """The value S3 shows for a running checksum: base64 of its digest."""
    return base64.b64encode(checksum.digest()).decode("ascii")


def header_name(algorithm):
    return PREFIX + algorithm.lower()


def checksum_type(value):
    """FULL_OBJECT, or COMPOSITE for a checksum of part checksums (``value-N``)."""
    return COMPOSITE if "-" in value else FULL_OBJECT


def is_valid_value(algorithm, value):
    """Is *value* the canonical base64 of a digest of *algorithm*'s size?

    AWS refuses a value with stray padding bits too ("...NEF=" for SHA1),
    so the value must encode back to itself.
    """
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(digest) == _DIGEST_SIZES[algorithm] and base64.b64encode(digest).decode("ascii") == value


class RequestChecksum:
    """The checksum one upload declares, computed over its bytes and checked at the end.

    *expected* is the header's value, or None while it is still to come in
    the trailer named *trailer*.
    """

    def __init__(self, algorithm, expected=None, trailer=None):
        self.algorithm = algorithm
        self.expected = expected
        self.trailer = trailer
        self._running = new_checksum(algorithm)

    def update(self, data):
        self._running.update(data)

    def trailer_received(self, value):
        """The value the trailer carried (the trailer is checked by ``trailer_value``)."""
        if not is_valid_value(self.algorithm, value):
            raise InvalidRequest(f"Value for {self.trailer} trailing header is invalid.")
        self.expected = value

    def verify(self):
        """``{algorithm: value}`` to store with the object; BadDigest if the bytes do not match."""
        if self.expected is None:
            # Announced in x-amz-trailer, never sent.
            raise MalformedTrailerError()
        calculated = b64digest(self._running)
        if calculated != self.expected:
            raise BadDigest(f"The {self.algorithm} you specified did not match the calculated checksum.")
        return {self.algorithm: calculated}


def requested_checksum(headers):
    """The RequestChecksum an upload's *headers* (lower-case names) declare, or None.

    Refuses what AWS refuses: several checksums, an unknown algorithm, a
    malformed value, an x-amz-sdk-checksum-algorithm that names another
    algorithm or nothing that follows.
    """
    values = {name: value for name, value in headers.items() if name.startswith(PREFIX) and name not in NOT_A_VALUE}
    if len(values) > 1:
        raise multiple_checksum_headers()
    trailer = _announced_trailer(headers.get("x-amz-trailer"))
    declared = headers.get("x-amz-sdk-checksum-algorithm")
    if declared is not None and not values and trailer is None:
        raise InvalidRequest(
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* "
            "or x-amz-trailer headers were found."
        )
    if values and trailer is not None:
        raise InvalidRequest("Expecting a single x-amz-checksum- header")
    if values:
        [(name, expected)] = values.items()
        algorithm = name[len(PREFIX) :].upper()
        if algorithm not in ALGORITHMS:
            raise InvalidRequest("The algorithm type you specified in x-amz-checksum- header is invalid.")
        if not is_valid_value(algorithm, expected):
            raise InvalidRequest(f"Value for {name} header is invalid.")
    elif trailer is not None:
        algorithm, expected = trailer[len(PREFIX) :].upper(), None
    else:
        return None
    if declared is not None and declared.strip().upper() != algorithm:
        # AWS says the same whether the name is unknown or merely another one.
        raise InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
    return RequestChecksum(algorithm, expected, trailer)


def _announced_trailer(text):
    """The checksum trailer an x-amz-trailer header announces (lower case), or None.

    AWS forgives trailing commas and blanks ("x-amz-checksum-crc32, ,"
    excepted) but no empty name before or between names.
    """
    if text is None:
        return None
    names = [name.strip().lower() for name in text.strip().rstrip(",").split(",")]
    for name in names:
        if not name.startswith(PREFIX) or name[len(PREFIX) :].upper() not in ALGORITHMS:
            raise InvalidRequest("The value specified in the x-amz-trailer header is not supported")
    if len(names) > 1:
        raise multiple_checksum_headers()
    return names[0]


def trailer_value(trailers, announced):
    """The value of the *announced* checksum trailer (None when nothing was announced).

    *trailers*: the aws-chunked trailer, lower-case names to values. A
    checksum trailer that was not announced, or an announced one that is
    missing, is a MalformedTrailerError; other trailers (the trailer
    signature) are not ours to judge.
    """
    for name in trailers:
        if name.startswith(PREFIX) and name != announced:
            raise MalformedTrailerError()
    if announced is None:
        return None
    if announced not in trailers:
        raise MalformedTrailerError()
    return trailers[announced]


def multiple_checksum_headers() -> S3Error:
    """The refusal of a request stating more than one x-amz-checksum-* value."""
    return InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
