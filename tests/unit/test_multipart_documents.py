"""The multipart answers (web/multipart_documents.py), built from records in memory and read back from their bytes.

What AWS sends, in its order:
https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPartCopy.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListParts.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html
(encoding-type=url encodes Delimiter, KeyMarker, Prefix, NextKeyMarker and Key).
"""

from lxml import etree
from twisted.web.test.requesthelper import DummyRequest

from objectstore import xmlio
from objectstore.storage.records import ObjectInfo, Part, PartListing, Upload, UploadListing
from objectstore.web.multipart_documents import (
    checksum_headers,
    complete_document,
    copy_part_document,
    initiate_document,
    list_parts_document,
    list_uploads_document,
)
from objectstore.web.multipart_input import PartsQuery, UploadsQuery

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>\n"
# 2010-11-10T20:48:33.250Z
MODIFIED = 1289422113.25


class Credentials:
    """Display names by user id, as auth.credentials.Credentials gives them (the id for an unknown one)."""

    names = {"alice-id": "alice", "owner-id": "owner"}

    def display_name(self, user_id):
        return self.names.get(user_id, user_id)


def wire(root):
    """The answer's bytes, and its root read back from them (what a client sees)."""
    body = xmlio.to_bytes(root)
    assert body.startswith(XML_DECLARATION)
    parsed = etree.fromstring(body)
    assert etree.QName(parsed).namespace == S3_NS
    return body, parsed


def names(element):
    return [etree.QName(child).localname for child in element]


def text(element, path):
    found = element.find("/".join(f"{{{S3_NS}}}{step}" for step in path.split("/")))
    assert found is not None, path
    return found.text or ""


def all_text(element, path):
    return [e.text or "" for e in element.findall("/".join(f"{{{S3_NS}}}{step}" for step in path.split("/")))]


def upload(key="photos/2024/a.jpg", initiator="alice-id", checksum=(None, None), upload_id="up-1", created=MODIFIED):
    return Upload(
        upload_id,
        "media",
        key,
        initiator,
        "owner-id",
        {},
        checksum_algorithm=checksum[0],
        checksum_type=checksum[1],
        created=created,
    )


# -- CreateMultipartUpload, UploadPartCopy, CompleteMultipartUpload ------------------------------------------


def test_initiate_names_the_bucket_key_and_upload():
    body, root = wire(initiate_document("media", "a key", upload()))
    assert (
        body
        == XML_DECLARATION
        + (
            f'<InitiateMultipartUploadResult xmlns="{S3_NS}">'
            "<Bucket>media</Bucket><Key>a key</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>"
        ).encode()
    )


def test_copy_part_result_is_last_modified_then_quoted_etag():
    _, root = wire(copy_part_document(Part(3, 10, "9b2cf535f27731c974343645a3985328", MODIFIED)))
    assert etree.QName(root).localname == "CopyPartResult"
    assert names(root) == ["LastModified", "ETag"]
    assert text(root, "LastModified") == "2010-11-10T20:48:33.250Z"
    assert text(root, "ETag") == '"9b2cf535f27731c974343645a3985328"'


def test_copy_part_result_carries_the_part_checksum():
    _, root = wire(copy_part_document(Part(1, 10, "e", MODIFIED, {"CRC32C": "yZRlqg=="})))
    assert names(root) == ["LastModified", "ETag", "ChecksumCRC32C"]
    assert text(root, "ChecksumCRC32C") == "yZRlqg=="


def test_complete_result_locates_the_object():
    info = ObjectInfo("media", "a key", 15, "3858f62230ac3c915f300c664312c11f-9", MODIFIED, "owner-id", {})
    body, root = wire(complete_document("https://h.example/media/a%20key", "media", "a key", info))
    assert (
        body
        == XML_DECLARATION
        + (
            f'<CompleteMultipartUploadResult xmlns="{S3_NS}">'
            "<Location>https://h.example/media/a%20key</Location><Bucket>media</Bucket><Key>a key</Key>"
            '<ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag></CompleteMultipartUploadResult>'
        ).encode()
    )


def test_complete_result_carries_the_object_checksum_and_its_type():
    composite = ObjectInfo("b", "k", 1, "e-2", MODIFIED, "o", {}, checksums={"SHA256": "c2hh-2"})
    _, root = wire(complete_document("http://h/b/k", "b", "k", composite))
    assert names(root) == ["Location", "Bucket", "Key", "ETag", "ChecksumSHA256", "ChecksumType"]
    assert (text(root, "ChecksumSHA256"), text(root, "ChecksumType")) == ("c2hh-2", "COMPOSITE")
    full = ObjectInfo("b", "k", 1, "e-2", MODIFIED, "o", {}, checksums={"CRC64NVME": "AAAAAAAAAAA="})
    _, root = wire(complete_document("http://h/b/k", "b", "k", full))
    assert (text(root, "ChecksumCRC64NVME"), text(root, "ChecksumType")) == ("AAAAAAAAAAA=", "FULL_OBJECT")


# -- checksum headers (UploadPart, GetObject, HeadObject) ---------------------------------------------------


def test_checksum_headers_name_the_algorithm_and_the_type():
    request = DummyRequest([b""])
    checksum_headers(request, {"CRC32": "AAAAAA==-3"})
    assert request.responseHeaders.getRawHeaders(b"x-amz-checksum-crc32") == [b"AAAAAA==-3"]
    assert request.responseHeaders.getRawHeaders(b"x-amz-checksum-type") == [b"COMPOSITE"]
    request = DummyRequest([b""])
    checksum_headers(request, {"SHA1": "c2hhMQ=="})
    assert request.responseHeaders.getRawHeaders(b"x-amz-checksum-sha1") == [b"c2hhMQ=="]
    assert request.responseHeaders.getRawHeaders(b"x-amz-checksum-type") == [b"FULL_OBJECT"]


def test_no_checksums_no_headers():
    request = DummyRequest([b""])
    checksum_headers(request, {})
    assert list(request.responseHeaders.getAllRawHeaders()) == []


# -- ListParts -----------------------------------------------------------------------------------------


def parts_page(numbers, truncated=False):
    parts = [Part(n, n * 1024, f"{n:032x}", MODIFIED) for n in numbers]
    return PartListing(parts, truncated, parts[-1].number if parts else 0)


def test_list_parts_document_is_aws_one():
    page = parts_page([2, 3], truncated=True)
    body, _ = wire(list_parts_document("media", "a.jpg", upload(), PartsQuery(1, 2), page, Credentials()))
    parts = "".join(
        f"<Part><PartNumber>{n}</PartNumber><LastModified>2010-11-10T20:48:33.250Z</LastModified>"
        f'<ETag>"{n:032x}"</ETag><Size>{n * 1024}</Size></Part>'
        for n in (2, 3)
    )
    assert (
        body
        == XML_DECLARATION
        + (
            f'<ListPartsResult xmlns="{S3_NS}"><Bucket>media</Bucket><Key>a.jpg</Key><UploadId>up-1</UploadId>'
            "<Initiator><ID>alice-id</ID><DisplayName>alice</DisplayName></Initiator>"
            "<Owner><ID>owner-id</ID><DisplayName>owner</DisplayName></Owner>"
            "<StorageClass>STANDARD</StorageClass><PartNumberMarker>1</PartNumberMarker>"
            "<NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
            f"{parts}</ListPartsResult>"
        ).encode()
    )


def test_a_last_page_of_parts_is_not_truncated():
    _, root = wire(list_parts_document("b", "k", upload(), PartsQuery(0, 1000), parts_page([1]), Credentials()))
    assert (text(root, "IsTruncated"), text(root, "NextPartNumberMarker")) == ("false", "1")
    assert (text(root, "PartNumberMarker"), text(root, "MaxParts")) == ("0", "1000")


def test_an_empty_page_of_parts_has_no_part_and_the_marker_as_next():
    page = PartListing([], False, 7)
    _, root = wire(list_parts_document("b", "k", upload(), PartsQuery(7, 1000), page, Credentials()))
    assert "Part" not in names(root)
    assert (text(root, "PartNumberMarker"), text(root, "NextPartNumberMarker")) == ("7", "7")


def test_list_parts_of_an_upload_with_a_checksum_names_it_and_each_part_value():
    page = PartListing([Part(1, 5, "e", MODIFIED, {"CRC32": "AAAAAA=="})], False, 1)
    with_crc32 = upload(checksum=("CRC32", "COMPOSITE"))
    _, root = wire(list_parts_document("b", "k", with_crc32, PartsQuery(0, 1000), page, Credentials()))
    assert names(root)[-4:] == ["IsTruncated", "ChecksumAlgorithm", "ChecksumType", "Part"]
    assert (text(root, "ChecksumAlgorithm"), text(root, "ChecksumType")) == ("CRC32", "COMPOSITE")
    assert names(root.find(f"{{{S3_NS}}}Part")) == ["PartNumber", "LastModified", "ETag", "Size", "ChecksumCRC32"]
    assert text(root, "Part/ChecksumCRC32") == "AAAAAA=="


def test_an_anonymous_initiator_is_listed_as_anonymous():
    root = list_parts_document("b", "k", upload(initiator=""), PartsQuery(0, 1000), parts_page([]), Credentials())
    _, root = wire(root)
    assert (text(root, "Initiator/ID"), text(root, "Initiator/DisplayName")) == ("anonymous", "anonymous")
    assert text(root, "Owner/ID") == "owner-id"


def test_a_list_parts_key_with_a_control_character_is_a_character_reference():
    root = list_parts_document("b", "a\x01b", upload(), PartsQuery(0, 1000), parts_page([]), Credentials())
    assert b"<Key>a&#x1;b</Key>" in xmlio.to_bytes(root)


# -- ListMultipartUploads ------------------------------------------------------------------------------


def query(prefix="", delimiter="", key_marker="", upload_id_marker="", max_uploads=1000, url_encoded=False):
    return UploadsQuery(prefix, delimiter, key_marker, upload_id_marker, max_uploads, url_encoded)


def test_an_empty_uploads_listing():
    body, _ = wire(list_uploads_document("media", query(), UploadListing([], [], False), Credentials()))
    assert (
        body
        == XML_DECLARATION
        + (
            f'<ListMultipartUploadsResult xmlns="{S3_NS}"><Bucket>media</Bucket>'
            "<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
            "<NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker>"
            "<Prefix></Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>"
            "</ListMultipartUploadsResult>"
        ).encode()
    )


def test_an_upload_is_listed_as_aws_lists_it():
    page = UploadListing([upload(key="a.jpg")], [], False, "a.jpg", "up-1")
    _, root = wire(list_uploads_document("media", query(), page, Credentials()))
    (entry,) = root.findall(f"{{{S3_NS}}}Upload")
    assert names(entry) == ["Key", "UploadId", "Initiator", "Owner", "StorageClass", "Initiated"]
    assert (text(entry, "Key"), text(entry, "UploadId")) == ("a.jpg", "up-1")
    assert (text(entry, "Initiator/ID"), text(entry, "Initiator/DisplayName")) == ("alice-id", "alice")
    assert (text(entry, "Owner/ID"), text(entry, "Owner/DisplayName")) == ("owner-id", "owner")
    assert (text(entry, "StorageClass"), text(entry, "Initiated")) == ("STANDARD", "2010-11-10T20:48:33.250Z")


def test_an_upload_with_a_checksum_lists_its_algorithm_and_type_last():
    page = UploadListing([upload(checksum=("CRC64NVME", "FULL_OBJECT"))], [], False, "k", "up-1")
    _, root = wire(list_uploads_document("media", query(), page, Credentials()))
    entry = root.find(f"{{{S3_NS}}}Upload")
    assert names(entry)[-2:] == ["ChecksumAlgorithm", "ChecksumType"]
    assert (text(entry, "ChecksumAlgorithm"), text(entry, "ChecksumType")) == ("CRC64NVME", "FULL_OBJECT")


def test_a_truncated_uploads_page_says_where_the_next_starts():
    uploads = [upload(key="a", upload_id="u1"), upload(key="a", upload_id="u2", created=MODIFIED + 1)]
    page = UploadListing(uploads, [], True, "a", "u2")
    ask = query(key_marker="0", upload_id_marker="u0", max_uploads=2)
    _, root = wire(list_uploads_document("media", ask, page, Credentials()))
    assert names(root) == [
        "Bucket",
        "KeyMarker",
        "UploadIdMarker",
        "NextKeyMarker",
        "NextUploadIdMarker",
        "Prefix",
        "MaxUploads",
        "IsTruncated",
        "Upload",
        "Upload",
    ]
    assert (text(root, "KeyMarker"), text(root, "UploadIdMarker")) == ("0", "u0")
    assert (text(root, "NextKeyMarker"), text(root, "NextUploadIdMarker")) == ("a", "u2")
    assert (text(root, "MaxUploads"), text(root, "IsTruncated")) == ("2", "true")
    assert all_text(root, "Upload/UploadId") == ["u1", "u2"]


def test_common_prefixes_follow_the_uploads_and_the_delimiter_is_echoed():
    page = UploadListing([upload(key="top")], ["photos/", "videos/"], False, "videos/", "")
    _, root = wire(list_uploads_document("media", query(delimiter="/"), page, Credentials()))
    assert names(root)[4:] == ["NextUploadIdMarker", "Delimiter", "Prefix", "MaxUploads", "IsTruncated"] + [
        "Upload",
        "CommonPrefixes",
        "CommonPrefixes",
    ]
    assert text(root, "Delimiter") == "/"
    assert all_text(root, "CommonPrefixes/Prefix") == ["photos/", "videos/"]


def test_encoding_type_url_encodes_keys_prefixes_delimiter_and_key_markers_but_not_upload_ids():
    page = UploadListing([upload(key="a b&c/é")], ["d e/"], True, "a b&c/é", "up+1/=")
    ask = query(prefix="a ", delimiter="&", key_marker="a+", upload_id_marker="up+0/=", url_encoded=True)
    _, root = wire(list_uploads_document("media", ask, page, Credentials()))
    assert text(root, "EncodingType") == "url"
    assert names(root).index("EncodingType") == names(root).index("Prefix") + 1
    assert text(root, "Upload/Key") == "a%20b%26c/%C3%A9"
    assert text(root, "KeyMarker") == "a%2B"
    assert text(root, "NextKeyMarker") == "a%20b%26c/%C3%A9"
    assert text(root, "Prefix") == "a%20"
    assert text(root, "Delimiter") == "%26"
    assert all_text(root, "CommonPrefixes/Prefix") == ["d%20e/"]
    assert (text(root, "UploadIdMarker"), text(root, "NextUploadIdMarker")) == ("up+0/=", "up+1/=")


def test_without_encoding_type_keys_are_as_stored_and_no_encoding_type_is_named():
    page = UploadListing([upload(key="a b&c/é")], [], False, "a b&c/é", "up-1")
    body, root = wire(list_uploads_document("media", query(prefix="a "), page, Credentials()))
    assert "EncodingType" not in names(root)
    assert text(root, "Upload/Key") == text(root, "NextKeyMarker") == "a b&c/é"
    assert text(root, "Prefix") == "a "
    assert "<Key>a b&amp;c/é</Key>".encode() in body


def test_an_anonymous_upload_is_listed_as_initiated_by_anonymous():
    page = UploadListing([upload(initiator="")], [], False, "k", "up-1")
    _, root = wire(list_uploads_document("media", query(), page, Credentials()))
    assert (text(root, "Upload/Initiator/ID"), text(root, "Upload/Initiator/DisplayName")) == (
        "anonymous",
        "anonymous",
    )
