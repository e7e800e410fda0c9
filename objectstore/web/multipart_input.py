"""What a multipart request's query, headers and CompleteMultipartUpload body become.

Every refusal here is AWS's, raised before the store is asked anything, so
the operations in web/multipart.py read only values already checked.
"""

import re
from typing import TYPE_CHECKING, NamedTuple, Optional

from objectstore import xmlio
from objectstore.checksums import ALGORITHMS, b64digest, header_name, multiple_checksum_headers, new_checksum
from objectstore.errors import InvalidArgument, InvalidRequest, MalformedXML
from objectstore.storage.composite import COMPOSITE, CRC_POLYNOMIALS, FULL_OBJECT
from objectstore.storage.multipart import MAX_PARTS, check_part_number
from objectstore.storage.records import RequestedPart, Upload
from objectstore.web.listing import encoder_of
from objectstore.web.resource import arg

if TYPE_CHECKING:
    from objectstore.checksums import RequestChecksum
    from objectstore.web.request import S3Request

# 10,000 parts with a SHA-256 each take about 1.8 MB as SDKs write them;
# the rest is room for indentation. Bigger is refused before it is parsed.
COMPLETE_BODY_LIMIT = 4 * 1024 * 1024
# The most parts a ListParts page, and uploads a ListMultipartUploads page, hold.
MAX_LISTED = 1000
# The element of each checksum in a Complete document's <Part> and in listings.
CHECKSUM_ELEMENTS = {algorithm: "Checksum" + algorithm for algorithm in ALGORITHMS}
# Who initiated an upload an anonymous caller started (public-read-write buckets).
ANONYMOUS_INITIATOR = ""
# The largest count S3 accepts in max-parts, max-uploads and part-number-marker.
_MAX_COUNT = 2**31 - 1
# A Complete's <PartNumber>: any integer parses, so one out of range is
# InvalidArgument at Complete (as at AWS), not MalformedXML.
_PART_NUMBER = re.compile(r"-?[0-9]+", re.ASCII)
# Digits kept of a <PartNumber>: longer is out of range whatever it says.
_PART_NUMBER_DIGITS = 8


class PartsQuery(NamedTuple):
    """The page a ListParts asks for: parts numbered above *part_number_marker*, at most *max_parts*."""

    part_number_marker: int
    max_parts: int


class UploadsQuery(NamedTuple):
    """What a ListMultipartUploads asks for, echoed in its answer."""

    prefix: str
    delimiter: str
    key_marker: str
    # "" whenever key_marker is: AWS ignores upload-id-marker without a key-marker.
    upload_id_marker: str
    max_uploads: int
    # encoding-type=url: keys, prefixes and markers percent-encoded in the answer.
    url_encoded: bool


def part_number_of(request: "S3Request", required: bool = True) -> Optional[int]:
    """The ``partNumber`` query parameter, 1..10000; None when absent and not *required*."""
    text = arg(request, "partNumber")
    if text is None and not required:
        return None
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=text or "",
        )
    number = int(text)
    check_part_number(number)
    return number


class ComputedChecksum:
    """The upload's checksum computed over a part that declared none (quacks like a RequestChecksum).

    Every part of an upload with a checksum algorithm then has one, so the
    object's can be made of them at Complete.
    """

    trailer = None

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._running = new_checksum(algorithm)

    def update(self, data: bytes) -> None:
        self._running.update(data)

    def verify(self) -> dict[str, str]:
        return {self.algorithm: b64digest(self._running)}


def part_checksum(
    upload: Upload, declared: "Optional[RequestChecksum]"
) -> "Optional[RequestChecksum | ComputedChecksum]":
    """What a part's body is checked with: what it declares, of the upload's algorithm if it has one."""
    expected = upload.checksum_algorithm
    if expected is None:
        return declared
    if declared is None:
        return ComputedChecksum(expected)
    if declared.algorithm != expected:
        raise InvalidRequest(
            f"Checksum Type mismatch occurred, expected checksum Type: {expected.lower()}, "
            f"actual checksum Type: {declared.algorithm.lower()}"
        )
    return declared


def requested_upload_checksum(request: "S3Request") -> tuple[Optional[str], Optional[str]]:
    """(algorithm, type) of x-amz-checksum-algorithm / x-amz-checksum-type at CreateMultipartUpload."""
    algorithm = request.getHeaderText(b"x-amz-checksum-algorithm")
    kind = request.getHeaderText(b"x-amz-checksum-type")
    if algorithm is None:
        if kind is not None:
            raise InvalidRequest(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
            )
        return None, None
    algorithm = algorithm.strip().upper()
    if algorithm not in ALGORITHMS:
        raise InvalidRequest(
            "Checksum algorithm provided is unsupported. Please try again with any of the valid types: "
            f"[{', '.join(ALGORITHMS)}]"
        )
    # CRC64NVME is only ever FULL_OBJECT at AWS; the others default to COMPOSITE.
    default = FULL_OBJECT if algorithm == "CRC64NVME" else COMPOSITE
    kind = (kind or default).strip().upper()
    if kind not in (COMPOSITE, FULL_OBJECT):
        raise InvalidRequest("Value for x-amz-checksum-type header is invalid.")
    if kind == FULL_OBJECT and algorithm not in CRC_POLYNOMIALS:
        raise InvalidRequest(f"The FULL_OBJECT checksum type cannot be used with the {algorithm.lower()} algorithm.")
    if kind == COMPOSITE and algorithm == "CRC64NVME":
        raise InvalidRequest("The COMPOSITE checksum type cannot be used with the crc64nvme algorithm.")
    return algorithm, kind


def parse_complete(body: bytes) -> list[RequestedPart]:
    """The RequestedParts of a CompleteMultipartUpload document, in the order given.

    Only the document's shape is checked here (MalformedXML). Part numbers
    out of range, out of order or repeated are the store's to refuse
    (storage.multipart.choose_parts), with the upload's id in the error.
    """
    root = xmlio.parse(body, COMPLETE_BODY_LIMIT)
    if xmlio.local(root) != "CompleteMultipartUpload":
        raise MalformedXML()
    parts = []
    for element in root:
        if xmlio.local(element) != "Part":
            raise MalformedXML()
        number = _PART_NUMBER.fullmatch((xmlio.child_text(element, "PartNumber") or "").strip())
        etag = xmlio.child_text(element, "ETag")
        if number is None or etag is None:
            raise MalformedXML()
        checksums = {}
        for algorithm, name in CHECKSUM_ELEMENTS.items():
            value = xmlio.child_text(element, name)
            if value is not None:
                checksums[algorithm] = value.strip()
        # Any number of digits is a number, if not one in range (InvalidArgument, at Complete).
        value = int(number[0]) if len(number[0]) <= _PART_NUMBER_DIGITS else MAX_PARTS + 1
        # ETag quotes are optional (libcloud sends none, boto3 sends them).
        parts.append(RequestedPart(value, etag.strip().strip('"'), checksums))
    if not parts:
        raise MalformedXML()
    return parts


def stated_object_checksum(request: "S3Request") -> Optional[tuple[str, str]]:
    """(algorithm, value) of an x-amz-checksum-* header on Complete: the whole object's, as the client has it.

    More than one is refused, as PutObject refuses them.
    """
    stated = [
        (algorithm, value.strip())
        for algorithm in ALGORITHMS
        if (value := request.getHeaderText(header_name(algorithm).encode())) is not None
    ]
    if len(stated) > 1:
        raise multiple_checksum_headers()
    return stated[0] if stated else None


def stated_object_size(request: "S3Request") -> Optional[int]:
    """The x-amz-mp-object-size header on Complete: the whole object's size, as the client has it."""
    text = request.getHeaderText(b"x-amz-mp-object-size")
    if text is None:
        return None
    if not (text.strip().isascii() and text.strip().isdigit()):
        raise InvalidRequest("Value for x-amz-mp-object-size header is invalid.")
    return int(text)


def copy_source_range(header: Optional[str], size: int) -> tuple[int, int]:
    """(start, length) to copy from a source of *size* bytes: ``bytes=first-last``, or all of it."""
    if header is None:
        return 0, size
    unit, _, spec = header.strip().partition("=")
    first, dash, last = spec.partition("-")
    if unit != "bytes" or not dash or not all(p.isascii() and p.isdigit() for p in (first, last)):
        raise InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are "
            "the zero-based offsets of the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        )
    start, end = int(first), int(last)
    if start > end or end >= size:
        raise InvalidArgument(
            f"Range specified is not valid for source object of size: {size}",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        )
    return start, end - start + 1


def count_argument(request: "S3Request", name: str, default: int, maximum: Optional[int] = None) -> int:
    """A count in the query (max-parts, ...): 0..2**31-1, capped at *maximum*; *default* when absent."""
    text = arg(request, name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) > _MAX_COUNT:
        raise InvalidArgument(
            f"Argument {name} must be an integer between 0 and {_MAX_COUNT}", ArgumentName=name, ArgumentValue=text
        )
    value = int(text)
    return value if maximum is None else min(value, maximum)


def parts_query(request: "S3Request") -> PartsQuery:
    """The page a ListParts asks for (max-parts is checked first, as it always was)."""
    max_parts = count_argument(request, "max-parts", MAX_LISTED, maximum=MAX_LISTED)
    marker = count_argument(request, "part-number-marker", 0)
    return PartsQuery(marker, max_parts)


def uploads_query(request: "S3Request") -> UploadsQuery:
    """What a ListMultipartUploads asks for; a bad max-uploads or encoding-type is refused before any scan."""
    prefix = arg(request, "prefix", "")
    delimiter = arg(request, "delimiter", "")
    key_marker = arg(request, "key-marker", "")
    upload_id_marker = arg(request, "upload-id-marker", "") if key_marker else ""
    max_uploads = count_argument(request, "max-uploads", MAX_LISTED, maximum=MAX_LISTED)
    encoder_of(request)  # refuses anything but encoding-type=url (any case)
    url_encoded = arg(request, "encoding-type") is not None
    return UploadsQuery(prefix, delimiter, key_marker, upload_id_marker, max_uploads, url_encoded)
