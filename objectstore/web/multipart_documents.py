"""What the multipart operations answer: their XML documents, and the checksum headers of a part or object.

Each document is built by a pure function of storage records and the
request's checked query (web/multipart_input.py), so what goes on the wire
can be tested without a server. Elements come in the order AWS sends them.
"""

from typing import TYPE_CHECKING, Optional

from lxml import etree

from objectstore import xmlio
from objectstore.checksums import checksum_type, header_name
from objectstore.storage.records import ObjectInfo, Part, PartListing, Upload, UploadListing
from objectstore.web.formats import iso8601, owner_element
from objectstore.web.listing import key_text, url_encode
from objectstore.web.multipart_input import ANONYMOUS_INITIATOR, CHECKSUM_ELEMENTS, PartsQuery, UploadsQuery

if TYPE_CHECKING:
    from objectstore.auth.credentials import Credentials
    from objectstore.web.request import S3Request

# Only uploads started in S3 Standard exist here.
STORAGE_CLASS = "STANDARD"
# What an anonymous initiator is called in listings.
ANONYMOUS_NAME = "anonymous"


def checksum_headers(request: "S3Request", checksums: dict[str, str]) -> None:
    """``x-amz-checksum-<algorithm>`` and ``x-amz-checksum-type`` of stored checksums."""
    for algorithm, value in checksums.items():
        request.setHeader(header_name(algorithm).encode(), value.encode("ascii"))
        request.setHeader(b"x-amz-checksum-type", checksum_type(value).encode())


def initiate_document(bucket: str, key: str, upload: Upload) -> etree._Element:
    """CreateMultipartUpload's InitiateMultipartUploadResult."""
    root = xmlio.element("InitiateMultipartUploadResult", xmlio.element("Bucket", bucket))
    key_text(root, "Key", key)  # a key may hold characters XML 1.0 cannot carry
    xmlio.sub(root, "UploadId", upload.id)
    return root


def copy_part_document(part: Part) -> etree._Element:
    """UploadPartCopy's CopyPartResult."""
    result = xmlio.element(
        "CopyPartResult",
        xmlio.element("LastModified", iso8601(part.modified)),
        xmlio.element("ETag", part.quoted_etag),
    )
    for algorithm, value in part.checksums.items():
        xmlio.sub(result, CHECKSUM_ELEMENTS[algorithm], value)
    return result


def complete_document(location: str, bucket: str, key: str, info: ObjectInfo) -> etree._Element:
    """CompleteMultipartUpload's CompleteMultipartUploadResult for the object *info* describes."""
    result = xmlio.element(
        "CompleteMultipartUploadResult", xmlio.element("Location", location), xmlio.element("Bucket", bucket)
    )
    key_text(result, "Key", key)
    xmlio.sub(result, "ETag", info.quoted_etag)
    for algorithm, value in info.checksums.items():
        xmlio.sub(result, CHECKSUM_ELEMENTS[algorithm], value)
        xmlio.sub(result, "ChecksumType", checksum_type(value))
    return result


def list_parts_document(
    bucket: str, key: str, upload: Upload, query: PartsQuery, page: PartListing, credentials: "Credentials"
) -> etree._Element:
    """ListParts' ListPartsResult: *page* of *upload*'s parts, as *query* asked for it."""
    root = xmlio.element("ListPartsResult")
    xmlio.sub(root, "Bucket", bucket)
    key_text(root, "Key", key)
    xmlio.sub(root, "UploadId", upload.id)
    initiator_element(root, upload, credentials)
    owner_element(root, upload.owner, credentials)
    xmlio.sub(root, "StorageClass", STORAGE_CLASS)
    xmlio.sub(root, "PartNumberMarker", str(query.part_number_marker))
    xmlio.sub(root, "NextPartNumberMarker", str(page.next_marker))
    xmlio.sub(root, "MaxParts", str(query.max_parts))
    xmlio.sub(root, "IsTruncated", _bool(page.truncated))
    _checksum_kind(root, upload)
    for part in page.parts:
        element = xmlio.sub(root, "Part")
        xmlio.sub(element, "PartNumber", str(part.number))
        xmlio.sub(element, "LastModified", iso8601(part.modified))
        xmlio.sub(element, "ETag", part.quoted_etag)
        xmlio.sub(element, "Size", str(part.size))
        for algorithm, value in part.checksums.items():
            xmlio.sub(element, CHECKSUM_ELEMENTS[algorithm], value)
    return root


def list_uploads_document(
    bucket: str, query: UploadsQuery, page: UploadListing, credentials: "Credentials"
) -> etree._Element:
    """ListMultipartUploads' ListMultipartUploadsResult: *page* of *bucket*'s uploads, as *query* asked for it.

    With encoding-type=url, the keys, prefixes, delimiter and key markers
    are percent-encoded (the upload ids never need it).
    """
    enc = url_encode if query.url_encoded else _as_is
    root = xmlio.element("ListMultipartUploadsResult")
    xmlio.sub(root, "Bucket", bucket)
    key_text(root, "KeyMarker", enc(query.key_marker))
    xmlio.sub(root, "UploadIdMarker", query.upload_id_marker)
    key_text(root, "NextKeyMarker", enc(page.next_key_marker))
    xmlio.sub(root, "NextUploadIdMarker", page.next_upload_id_marker)
    if query.delimiter:
        key_text(root, "Delimiter", enc(query.delimiter))
    key_text(root, "Prefix", enc(query.prefix))
    if query.url_encoded:
        xmlio.sub(root, "EncodingType", "url")
    xmlio.sub(root, "MaxUploads", str(query.max_uploads))
    xmlio.sub(root, "IsTruncated", _bool(page.truncated))
    for upload in page.uploads:
        element = xmlio.sub(root, "Upload")
        key_text(element, "Key", enc(upload.key))
        xmlio.sub(element, "UploadId", upload.id)
        initiator_element(element, upload, credentials)
        owner_element(element, upload.owner, credentials)
        xmlio.sub(element, "StorageClass", STORAGE_CLASS)
        xmlio.sub(element, "Initiated", iso8601(upload.created))
        _checksum_kind(element, upload)
    for common in page.prefixes:
        key_text(xmlio.sub(root, "CommonPrefixes"), "Prefix", enc(common))
    return root


def initiator_element(parent: etree._Element, upload: Upload, credentials: "Credentials") -> etree._Element:
    """``<Initiator>`` of *upload*: its user's ID and DisplayName, or "anonymous" for an anonymous one."""
    if upload.initiator == ANONYMOUS_INITIATOR:
        initiator = xmlio.sub(parent, "Initiator")
        xmlio.sub(initiator, "ID", ANONYMOUS_NAME)
        xmlio.sub(initiator, "DisplayName", ANONYMOUS_NAME)
        return initiator
    return owner_element(parent, upload.initiator, credentials, tag="Initiator")


def _checksum_kind(parent: etree._Element, upload: Upload) -> None:
    """The upload's checksum algorithm and type, when it was created with one."""
    if upload.checksum_algorithm:
        xmlio.sub(parent, "ChecksumAlgorithm", upload.checksum_algorithm)
        xmlio.sub(parent, "ChecksumType", upload.checksum_type)


def _as_is(text: str) -> str:
    return text


def _bool(value: Optional[bool]) -> str:
    return "true" if value else "false"
