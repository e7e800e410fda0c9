"""Multipart uploads on the wire: the operations on ``/bucket/key?uploads|uploadId`` and their documents.

CreateMultipartUpload, UploadPart (streamed and checked exactly as a
PutObject body is), UploadPartCopy, CompleteMultipartUpload,
AbortMultipartUpload and ListParts live here as a mixin of ObjectResource;
the bucket's ListMultipartUploads document is built here too. What the
operations do to the store is storage/multipart.py's business.
"""

import re

from objectstore import xmlio
from objectstore.auth import acl as acls
from objectstore.checksums import ALGORITHMS, b64digest, checksum_type, header_name, new_checksum
from objectstore.errors import AccessDenied, InvalidArgument, InvalidRequest, MalformedXML
from objectstore.storage.composite import COMPOSITE, CRC_POLYNOMIALS, FULL_OBJECT
from objectstore.storage.multipart import MAX_PART_SIZE, MAX_PARTS, check_part_number
from objectstore.storage.records import RequestedPart
from objectstore.web.access import require
from objectstore.web.body import BufferedBody
from objectstore.web.conditions import check_conditions
from objectstore.web.formats import iso8601, owner_element
from objectstore.web.listing import _text as text_element
from objectstore.web.listing import encoder_of
from objectstore.web.received import Received
from objectstore.web.resource import arg, operation, send_empty, send_xml
from objectstore.web.upload_input import content_headers, copy_source, lower_headers, no_copy_body

# 10,000 parts with a SHA-256 each take about 1.8 MB as SDKs write them;
# the rest is room for indentation. Bigger is refused before it is parsed.
COMPLETE_BODY_LIMIT = 4 * 1024 * 1024
MAX_LISTED = 1000
# The element of each checksum in a Complete document's <Part> and in listings.
CHECKSUM_ELEMENTS = {algorithm: "Checksum" + algorithm for algorithm in ALGORITHMS}
_PART_NUMBER = re.compile(r"-?[0-9]+", re.ASCII)
# Who initiated an upload an anonymous caller started (public-read-write buckets).
ANONYMOUS_INITIATOR = ""


def part_number_of(request, required=True):
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


def checksum_headers(request, checksums):
    """``x-amz-checksum-<algorithm>`` and ``x-amz-checksum-type`` of stored checksums."""
    for algorithm, value in checksums.items():
        request.setHeader(header_name(algorithm).encode(), value.encode("ascii"))
        request.setHeader(b"x-amz-checksum-type", checksum_type(value).encode())


class ComputedChecksum:
    """The upload's checksum computed over a part that declared none (quacks like a RequestChecksum).

    Every part of an upload with a checksum algorithm then has one, so the
    object's can be made of them at Complete.
    """

    trailer = None

    def __init__(self, algorithm):
        self.algorithm = algorithm
        self._running = new_checksum(algorithm)

    def update(self, data):
        self._running.update(data)

    def verify(self):
        return {self.algorithm: b64digest(self._running)}


def part_checksum(upload, declared):
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


def requested_upload_checksum(request):
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


def parse_complete(body):
    """The RequestedParts of a CompleteMultipartUpload document, in the order given."""
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
        value = int(number[0]) if len(number[0]) <= 8 else MAX_PARTS + 1
        # ETag quotes are optional (libcloud sends none, boto3 sends them).
        parts.append(RequestedPart(value, etag.strip().strip('"'), checksums))
    if not parts:
        raise MalformedXML()
    return parts


def _stated_checksum(request):
    """(algorithm, value) of an x-amz-checksum-* header on Complete: the whole object's, as the client has it."""
    for algorithm in ALGORITHMS:
        value = request.getHeaderText(header_name(algorithm).encode())
        if value is not None:
            return algorithm, value.strip()
    return None


def _stated_size(request):
    text = request.getHeaderText(b"x-amz-mp-object-size")
    if text is None:
        return None
    if not (text.strip().isascii() and text.strip().isdigit()):
        raise InvalidRequest("Value for x-amz-mp-object-size header is invalid.")
    return int(text)


def copy_source_range(header, size):
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
    first, last = int(first), int(last)
    if first > last or last >= size:
        raise InvalidArgument(
            f"Range specified is not valid for source object of size: {size}",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        )
    return first, last - first + 1


def _count_argument(request, name, default, maximum=None):
    text = arg(request, name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) > 2**31 - 1:
        raise InvalidArgument(
            f"Argument {name} must be an integer between 0 and 2147483647", ArgumentName=name, ArgumentValue=text
        )
    value = int(text)
    return value if maximum is None else min(value, maximum)


class MultipartOperations:
    """The multipart operations of ``/bucket/key`` (ObjectResource mixes them in)."""

    # -- CreateMultipartUpload -------------------------------------------------

    @operation("POST", "uploads")
    async def create_multipart_upload(self, request):
        bucket = self.store.get_bucket(self.bucket_name)
        require(request, bucket.acl, acls.WRITE)
        acl = self._canned_acl(request, bucket)
        headers, metadata = content_headers(request)
        checksum = requested_upload_checksum(request)
        user = request.caller.user
        upload = await self.store.multipart.create(
            self.bucket_name,
            self.key,
            initiator=user.id if user else ANONYMOUS_INITIATOR,
            owner=acl["owner"],
            acl=acl,
            headers=headers,
            metadata=metadata,
            checksum=checksum,
        )
        if upload.checksum_algorithm:
            request.setHeader(b"x-amz-checksum-algorithm", upload.checksum_algorithm.encode())
            request.setHeader(b"x-amz-checksum-type", upload.checksum_type.encode())
        send_xml(
            request,
            xmlio.element(
                "InitiateMultipartUploadResult",
                xmlio.element("Bucket", self.bucket_name),
                xmlio.element("Key", self.key),
                xmlio.element("UploadId", upload.id),
            ),
        )

    def _upload(self, request):
        return self.store.multipart.get(arg(request, "uploadId", ""), self.bucket_name, self.key)

    def _initiator_or_owner(self, request, bucket, upload):
        """Refuse anyone but the upload's initiator and the bucket's owner (admins are both)."""
        user = request.caller.user
        if user is None:
            # An upload started anonymously may be handled by anyone who may write the bucket.
            if upload.initiator == ANONYMOUS_INITIATOR and acls.allows(bucket.acl, request.caller, acls.WRITE):
                return
            raise AccessDenied()
        if not (user.admin or user.id in (bucket.owner, upload.initiator)):
            raise AccessDenied()

    # -- UploadPart / UploadPartCopy -----------------------------------------------

    def receive_upload_part(self, request, length):
        """Refused before its body: no write access, no such upload, a bad part number or declaration."""
        bucket = self.store.get_bucket(self.bucket_name)
        require(request, bucket.acl, acls.WRITE)
        number = part_number_of(request)
        upload = self._upload(request)
        if request.getHeader(b"x-amz-copy-source") is not None:
            return Received.of_document(no_copy_body(), multipart_upload=upload, part_number=number)
        # Framed, sized and checked exactly as a PutObject body (the limit, 5 GiB, is the same).
        received = self._receive_upload_body(
            request,
            length,
            self.store.multipart.new_part_writer,
            checksum_for=lambda declared: part_checksum(upload, declared),
        )
        received.multipart_upload, received.part_number = upload, number
        return received

    @operation("PUT", "uploadId")
    async def upload_part(self, request):
        received = request.received
        upload, number = received.multipart_upload, received.part_number
        if request.getHeader(b"x-amz-copy-source") is not None:
            return await self._upload_part_copy(request, upload, number)
        body = received.upload
        part = await self.store.multipart.upload_part(upload, number, body.writer, body.checksums)
        request.setHeader(b"ETag", part.quoted_etag.encode())
        checksum_headers(request, part.checksums)
        send_empty(request)

    async def _upload_part_copy(self, request, upload, number):
        source_bucket, source_key = copy_source(request.getHeader(b"x-amz-copy-source"))
        # Opened now, so the bytes copied are those of the version checked here.
        source, body = self.store.open_object(source_bucket, source_key)
        try:
            require(request, source.acl, acls.READ)
            check_conditions(lower_headers(request), source, prefix="x-amz-copy-source-")
            start, length = copy_source_range(request.getHeaderText(b"x-amz-copy-source-range"), source.size)
            if length > MAX_PART_SIZE:
                raise InvalidRequest(
                    "The specified copy source is larger than the maximum allowable size for a copy source: "
                    f"{MAX_PART_SIZE}"
                )
            part = await self.store.multipart.copy_part(upload, number, body, start, length)
        finally:
            body.close()
        result = xmlio.element(
            "CopyPartResult",
            xmlio.element("LastModified", iso8601(part.modified)),
            xmlio.element("ETag", part.quoted_etag),
        )
        for algorithm, value in part.checksums.items():
            xmlio.sub(result, CHECKSUM_ELEMENTS[algorithm], value)
        send_xml(request, result)

    # -- CompleteMultipartUpload ---------------------------------------------------

    def receive_complete_multipart_upload(self, request, length):
        bucket = self.store.get_bucket(self.bucket_name)
        require(request, bucket.acl, acls.WRITE)
        self._upload(request)  # NoSuchUpload before the document is read
        return Received.of_document(BufferedBody(COMPLETE_BODY_LIMIT))

    @operation("POST", "uploadId")
    async def complete_multipart_upload(self, request):
        requested = parse_complete(request.received.document_bytes())
        info = await self.store.multipart.complete(
            arg(request, "uploadId", ""),
            self.bucket_name,
            self.key,
            requested,
            expected_size=_stated_size(request),
            expected_checksum=_stated_checksum(request),
        )
        scheme = "https" if request.isSecure() else "http"
        host = request.getHeaderText(b"Host", "")
        result = xmlio.element(
            "CompleteMultipartUploadResult",
            xmlio.element("Location", f"{scheme}://{host}{request.path.decode('latin-1')}"),
            xmlio.element("Bucket", self.bucket_name),
            xmlio.element("Key", self.key),
            xmlio.element("ETag", info.quoted_etag),
        )
        for algorithm, value in info.checksums.items():
            xmlio.sub(result, CHECKSUM_ELEMENTS[algorithm], value)
            xmlio.sub(result, "ChecksumType", checksum_type(value))
        send_xml(request, result)

    # -- AbortMultipartUpload / ListParts ------------------------------------------

    @operation("DELETE", "uploadId")
    async def abort_multipart_upload(self, request):
        bucket = self.store.get_bucket(self.bucket_name)
        upload = self._upload(request)
        self._initiator_or_owner(request, bucket, upload)
        await self.store.multipart.abort(upload.id, self.bucket_name, self.key)
        send_empty(request, 204)

    @operation("GET", "uploadId")
    async def list_parts(self, request):
        bucket = self.store.get_bucket(self.bucket_name)
        upload = self._upload(request)
        self._initiator_or_owner(request, bucket, upload)
        max_parts = _count_argument(request, "max-parts", MAX_LISTED, maximum=MAX_LISTED)
        marker = _count_argument(request, "part-number-marker", 0)
        page = await self.store.multipart.list_parts(upload, marker, max_parts)
        credentials = self.app.credentials
        root = xmlio.element("ListPartsResult")
        xmlio.sub(root, "Bucket", self.bucket_name)
        text_element(root, "Key", self.key)
        xmlio.sub(root, "UploadId", upload.id)
        _initiator_element(root, upload, credentials)
        owner_element(root, upload.owner, credentials)
        xmlio.sub(root, "StorageClass", "STANDARD")
        xmlio.sub(root, "PartNumberMarker", str(marker))
        xmlio.sub(root, "NextPartNumberMarker", str(page.next_marker))
        xmlio.sub(root, "MaxParts", str(max_parts))
        xmlio.sub(root, "IsTruncated", _bool(page.truncated))
        if upload.checksum_algorithm:
            xmlio.sub(root, "ChecksumAlgorithm", upload.checksum_algorithm)
            xmlio.sub(root, "ChecksumType", upload.checksum_type)
        for part in page.parts:
            element = xmlio.sub(root, "Part")
            xmlio.sub(element, "PartNumber", str(part.number))
            xmlio.sub(element, "LastModified", iso8601(part.modified))
            xmlio.sub(element, "ETag", part.quoted_etag)
            xmlio.sub(element, "Size", str(part.size))
            for algorithm, value in part.checksums.items():
                xmlio.sub(element, CHECKSUM_ELEMENTS[algorithm], value)
        send_xml(request, root)


# -- ListMultipartUploads (a bucket operation) ---------------------------------------------


async def list_multipart_uploads(store, credentials, request, bucket):
    """The ListMultipartUploadsResult of *bucket* for the request's query."""
    prefix = arg(request, "prefix", "")
    delimiter = arg(request, "delimiter", "")
    key_marker = arg(request, "key-marker", "")
    upload_id_marker = arg(request, "upload-id-marker", "") if key_marker else ""
    max_uploads = _count_argument(request, "max-uploads", MAX_LISTED, maximum=MAX_LISTED)
    enc = encoder_of(request)  # refuses a bad encoding-type before the scan
    page = await store.multipart.list_uploads(bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads)
    root = xmlio.element("ListMultipartUploadsResult")
    xmlio.sub(root, "Bucket", bucket)
    text_element(root, "KeyMarker", enc(key_marker))
    xmlio.sub(root, "UploadIdMarker", upload_id_marker)
    text_element(root, "NextKeyMarker", enc(page.next_key_marker))
    xmlio.sub(root, "NextUploadIdMarker", page.next_upload_id_marker)
    if delimiter:
        text_element(root, "Delimiter", enc(delimiter))
    text_element(root, "Prefix", enc(prefix))
    if arg(request, "encoding-type"):
        xmlio.sub(root, "EncodingType", "url")
    xmlio.sub(root, "MaxUploads", str(max_uploads))
    xmlio.sub(root, "IsTruncated", _bool(page.truncated))
    for upload in page.uploads:
        element = xmlio.sub(root, "Upload")
        text_element(element, "Key", enc(upload.key))
        xmlio.sub(element, "UploadId", upload.id)
        _initiator_element(element, upload, credentials)
        owner_element(element, upload.owner, credentials)
        xmlio.sub(element, "StorageClass", "STANDARD")
        xmlio.sub(element, "Initiated", iso8601(upload.created))
        if upload.checksum_algorithm:
            xmlio.sub(element, "ChecksumAlgorithm", upload.checksum_algorithm)
            xmlio.sub(element, "ChecksumType", upload.checksum_type)
    for common in page.prefixes:
        text_element(xmlio.sub(root, "CommonPrefixes"), "Prefix", enc(common))
    return root


def _initiator_element(parent, upload, credentials):
    if upload.initiator == ANONYMOUS_INITIATOR:
        initiator = xmlio.sub(parent, "Initiator")
        xmlio.sub(initiator, "ID", "anonymous")
        xmlio.sub(initiator, "DisplayName", "anonymous")
        return initiator
    return owner_element(parent, upload.initiator, credentials, tag="Initiator")


def _bool(value):
    return "true" if value else "false"
