"""What multipart requests' queries, headers and CompleteMultipartUpload bodies become (web/multipart_input.py).

In memory, with a DummyRequest: no store, no socket. The errors are AWS's:
https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPartCopy.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListParts.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html
"""

import base64
import hashlib
import zlib

import pytest
from twisted.web.test.requesthelper import DummyRequest

from objectstore.errors import InvalidArgument, InvalidPartOrder, InvalidRequest, MalformedXML
from objectstore.storage.multipart import MAX_PARTS, choose_parts
from objectstore.storage.records import RequestedPart, Upload
from objectstore.web.multipart_input import (
    COMPLETE_BODY_LIMIT,
    ComputedChecksum,
    PartsQuery,
    UploadsQuery,
    copy_source_range,
    count_argument,
    parse_complete,
    part_checksum,
    part_number_of,
    parts_query,
    requested_upload_checksum,
    stated_object_checksum,
    stated_object_size,
    uploads_query,
)
from objectstore.web.request import S3Request

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class Request(DummyRequest):
    """A request with a query and headers, read the way S3Request reads them."""

    getHeaderText = S3Request.getHeaderText

    def __init__(self, query=None, headers=None):
        super().__init__([b""])
        for name, value in (query or {}).items():
            values = value if isinstance(value, list) else [value]
            self.args[name.encode()] = [v.encode() for v in values]
        for name, value in (headers or {}).items():
            self.requestHeaders.setRawHeaders(name.encode(), [value.encode("latin-1")])


def refusal(error_type, call, *args):
    """The S3 error *call* raises: of *error_type*, whose code and status are AWS's."""
    with pytest.raises(error_type) as caught:
        call(*args)
    assert caught.value.code == error_type.code
    return caught.value


def complete_body(parts, root="CompleteMultipartUpload", ns=None):
    xmlns = f' xmlns="{ns}"' if ns else ""
    inner = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in parts)
    return f"<{root}{xmlns}>{inner}</{root}>".encode()


def upload(checksum_algorithm=None, checksum_type=None):
    return Upload("up-1", "b", "k", "o", "o", {}, checksum_algorithm=checksum_algorithm, checksum_type=checksum_type)


# -- partNumber ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, number", [("1", 1), ("10000", 10000), ("42", 42), ("007", 7)])
def test_part_numbers_1_to_10000_are_read(text, number):
    assert part_number_of(Request({"partNumber": text})) == number


@pytest.mark.parametrize("text", ["0", "10001", "999999", "-1", "one", "", "1.0", " 1", "+1", "\u0661", "1e3"])
def test_part_numbers_outside_1_to_10000_are_invalid_argument(text):
    error = refusal(InvalidArgument, part_number_of, Request({"partNumber": text}))
    assert error.status == 400
    assert error.message == "Part number must be an integer between 1 and 10000, inclusive"
    assert error.details["ArgumentName"] == "partNumber"
    assert error.details["ArgumentValue"] == text


def test_a_missing_part_number_is_refused_when_required_and_none_when_optional():
    error = refusal(InvalidArgument, part_number_of, Request())
    assert error.details == {"ArgumentName": "partNumber", "ArgumentValue": ""}
    assert part_number_of(Request(), required=False) is None
    # Present but bad is refused even where a part number is optional (GetObject).
    refusal(InvalidArgument, part_number_of, Request({"partNumber": "0"}), False)


def test_the_last_part_number_in_the_query_wins():
    assert part_number_of(Request({"partNumber": ["3", "5"]})) == 5


# -- CompleteMultipartUpload body ------------------------------------------------------------------------


def test_complete_parts_come_out_as_given_with_etag_quotes_optional():
    body = (
        f'<CompleteMultipartUpload xmlns="{S3_NS}">\n'
        '  <Part><PartNumber> 1 </PartNumber><ETag>"aaa"</ETag></Part>\n'
        "  <Part><ETag>bbb</ETag><PartNumber>2</PartNumber></Part>\n"
        "  <!-- a comment is no part -->\n"
        "  <Part><PartNumber>3</PartNumber><ETag> &quot;ccc&quot; </ETag></Part>\n"
        "</CompleteMultipartUpload>"
    ).encode()
    assert parse_complete(body) == [RequestedPart(1, "aaa"), RequestedPart(2, "bbb"), RequestedPart(3, "ccc")]


def test_complete_part_checksums_are_read_by_algorithm():
    body = (
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag>"
        b"<ChecksumCRC32> AAAAAA== </ChecksumCRC32><ChecksumSHA256>c2hh</ChecksumSHA256>"
        b"<ChecksumCRC64NVME>bnZtZQ==</ChecksumCRC64NVME><ChecksumMD5>ignored</ChecksumMD5>"
        b"</Part></CompleteMultipartUpload>"
    )
    (part,) = parse_complete(body)
    assert part.checksums == {"CRC32": "AAAAAA==", "SHA256": "c2hh", "CRC64NVME": "bnZtZQ=="}


def test_out_of_order_parts_parse_and_are_invalid_part_order_at_complete():
    for numbers in ([2, 1], [2, 2, 1], [1, 3, 2]):
        requested = parse_complete(complete_body([(n, f"e{n}") for n in numbers]))
        assert [p.number for p in requested] == numbers
        error = refusal(InvalidPartOrder, choose_parts, upload(), requested, {})
        assert (error.status, error.details) == (400, {"UploadId": "up-1"})


def test_part_numbers_out_of_range_parse_and_are_invalid_argument_at_complete():
    # A 13-digit number is not refused as malformed: it is out of range, as AWS says at Complete.
    requested = parse_complete(complete_body([(1, "a"), (123456789012, "b"), (-4, "c")]))
    assert [p.number for p in requested] == [1, MAX_PARTS + 1, -4]
    for part in requested[1:]:
        error = refusal(InvalidArgument, choose_parts, upload(), [part], {})
        assert error.details["ArgumentName"] == "partNumber"


def test_more_than_10000_parts_are_refused_at_complete():
    requested = parse_complete(complete_body([(n, "e") for n in range(1, MAX_PARTS + 2)]))
    assert len(requested) == MAX_PARTS + 1
    error = refusal(InvalidArgument, choose_parts, upload(), requested, {})
    assert error.details == {"ArgumentName": "partNumber", "ArgumentValue": str(MAX_PARTS + 1)}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<CompleteMultipartUpload><Part>",  # cut short
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",  # no parts
        b"<CompleteMultipartUpload/>",
        complete_body([(1, "e")], root="CompleteUpload"),
        complete_body([(1, "e")], root="Part"),
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part><Other/>"
        b"</CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",  # no ETag
        b"<CompleteMultipartUpload><Part><ETag>e</ETag></Part></CompleteMultipartUpload>",  # no PartNumber
        complete_body([("", "e")]),
        complete_body([("one", "e")]),
        complete_body([("1.5", "e")]),
        complete_body([("--1", "e")]),
        complete_body([("0x1", "e")]),
        complete_body([("\u0661", "e")]),
        b"<CompleteMultipartUpload><Part><PartNumber><n>1</n></PartNumber><ETag>e</ETag></Part>"
        b"</CompleteMultipartUpload>",
    ],
)
def test_bad_complete_documents_are_malformed_xml(body):
    error = refusal(MalformedXML, parse_complete, body)
    assert error.status == 400
    assert error.message == MalformedXML.message


@pytest.mark.parametrize(
    "body",
    [
        # Entity expansion ("billion laughs") and external entities never reach lxml.
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&b;</ETag></Part>"
        b"</CompleteMultipartUpload>",
        b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&x;</ETag></Part>"
        b"</CompleteMultipartUpload>",
    ],
)
def test_complete_documents_with_a_dtd_are_malformed_xml(body):
    refusal(MalformedXML, parse_complete, body)


def test_a_complete_document_over_4_mib_is_refused_unparsed_and_one_at_the_limit_is_read():
    document = complete_body([(1, "e")])
    at_limit = document + b" " * (COMPLETE_BODY_LIMIT - len(document))
    assert len(at_limit) == COMPLETE_BODY_LIMIT
    assert parse_complete(at_limit) == [RequestedPart(1, "e")]
    error = refusal(MalformedXML, parse_complete, at_limit + b" ")
    assert error.message == "The XML you provided was larger than the maximum allowed size."


# -- x-amz-copy-source-range ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, size, expected",
    [
        (None, 10, (0, 10)),
        (None, 0, (0, 0)),
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=0-9", 10, (0, 10)),
        ("bytes=9-9", 10, (9, 1)),
        ("bytes=2-4", 10, (2, 3)),
        (" bytes=2-4 ", 10, (2, 3)),
    ],
)
def test_copy_source_ranges_are_start_and_length(header, size, expected):
    assert copy_source_range(header, size) == expected


@pytest.mark.parametrize("header, size", [("bytes=5-10", 10), ("bytes=10-10", 10), ("bytes=3-2", 10), ("bytes=0-0", 0)])
def test_copy_source_ranges_outside_the_source_are_invalid_argument(header, size):
    error = refusal(InvalidArgument, copy_source_range, header, size)
    assert error.status == 400
    assert error.message == f"Range specified is not valid for source object of size: {size}"
    assert error.details == {"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": header}


@pytest.mark.parametrize(
    "header",
    ["bytes=-3", "bytes=3-", "bytes=0-1,3-4", "bytes=a-b", "items=0-1", "Bytes=0-1", "0-1", "bytes 0-1", "bytes=", ""]
    + ["bytes=\u0660-\u0661", "bytes=+0-1"],
)
def test_malformed_copy_source_ranges_are_invalid_argument(header):
    error = refusal(InvalidArgument, copy_source_range, header, 100)
    assert error.message.startswith("The x-amz-copy-source-range value must be of the form bytes=first-last")
    assert error.details == {"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": header}


# -- checksums: CreateMultipartUpload, UploadPart, Complete ---------------------------------------------------


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({}, (None, None)),
        ({"x-amz-checksum-algorithm": "CRC32"}, ("CRC32", "COMPOSITE")),
        ({"x-amz-checksum-algorithm": " crc32c "}, ("CRC32C", "COMPOSITE")),
        ({"x-amz-checksum-algorithm": "SHA256"}, ("SHA256", "COMPOSITE")),
        ({"x-amz-checksum-algorithm": "CRC64NVME"}, ("CRC64NVME", "FULL_OBJECT")),
        ({"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "full_object"}, ("CRC32", "FULL_OBJECT")),
        ({"x-amz-checksum-algorithm": "SHA1", "x-amz-checksum-type": "COMPOSITE"}, ("SHA1", "COMPOSITE")),
    ],
)
def test_an_upload_checksum_is_an_algorithm_and_a_type(headers, expected):
    assert requested_upload_checksum(Request(headers=headers)) == expected


@pytest.mark.parametrize(
    "headers, message",
    [
        (
            {"x-amz-checksum-type": "COMPOSITE"},
            "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
        ),
        ({"x-amz-checksum-algorithm": "MD5"}, "Checksum algorithm provided is unsupported."),
        ({"x-amz-checksum-algorithm": ""}, "Checksum algorithm provided is unsupported."),
        (
            {"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "PARTIAL"},
            "Value for x-amz-checksum-type header is invalid.",
        ),
        (
            {"x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-type": "FULL_OBJECT"},
            "The FULL_OBJECT checksum type cannot be used with the sha256 algorithm.",
        ),
        (
            {"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "COMPOSITE"},
            "The COMPOSITE checksum type cannot be used with the crc64nvme algorithm.",
        ),
    ],
)
def test_bad_upload_checksums_are_invalid_request(headers, message):
    error = refusal(InvalidRequest, requested_upload_checksum, Request(headers=headers))
    assert error.message.startswith(message)


def test_a_part_of_an_upload_without_an_algorithm_is_checked_with_what_it_declares():
    declared = ComputedChecksum("SHA1")
    assert part_checksum(upload(), declared) is declared
    assert part_checksum(upload(), None) is None


def test_a_part_declaring_nothing_gets_the_upload_algorithm_computed():
    checksum = part_checksum(upload("CRC32", "COMPOSITE"), None)
    assert isinstance(checksum, ComputedChecksum)
    assert checksum.trailer is None
    checksum.update(b"hello ")
    checksum.update(b"world")
    crc = zlib.crc32(b"hello world").to_bytes(4, "big")
    assert checksum.verify() == {"CRC32": base64.b64encode(crc).decode()}


def test_a_part_declaring_the_upload_algorithm_keeps_its_declaration_and_another_is_refused():
    declared = ComputedChecksum("SHA256")
    assert part_checksum(upload("SHA256", "COMPOSITE"), declared) is declared
    error = refusal(InvalidRequest, part_checksum, upload("CRC32", "COMPOSITE"), declared)
    assert error.message == (
        "Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type: sha256"
    )


def test_computed_sha256_is_base64_of_the_digest():
    checksum = ComputedChecksum("SHA256")
    checksum.update(b"abc")
    assert checksum.verify() == {"SHA256": base64.b64encode(hashlib.sha256(b"abc").digest()).decode()}


def test_the_whole_object_checksum_stated_at_complete():
    assert stated_object_checksum(Request()) is None
    assert stated_object_checksum(Request(headers={"x-amz-checksum-crc32": " AAAAAA==-3 "})) == ("CRC32", "AAAAAA==-3")
    assert stated_object_checksum(Request(headers={"x-amz-checksum-sha256": "c2hh"})) == ("SHA256", "c2hh")
    with pytest.raises(InvalidRequest, match="Expecting a single x-amz-checksum- header"):
        stated_object_checksum(Request(headers={"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha256": "c2hh"}))


@pytest.mark.parametrize("text, size", [("0", 0), ("15", 15), (" 15 ", 15), ("5497558138880", 5 * 1024**4)])
def test_the_whole_object_size_stated_at_complete(text, size):
    assert stated_object_size(Request(headers={"x-amz-mp-object-size": text})) == size


@pytest.mark.parametrize("text", ["-1", "x", "1.5", "", "+1", "0x10"])
def test_a_bad_whole_object_size_is_invalid_request(text):
    error = refusal(InvalidRequest, stated_object_size, Request(headers={"x-amz-mp-object-size": text}))
    assert error.message == "Value for x-amz-mp-object-size header is invalid."


def test_no_whole_object_size_is_none():
    assert stated_object_size(Request()) is None


# -- ListParts and ListMultipartUploads queries ---------------------------------------------------------


def test_list_parts_defaults_to_1000_parts_from_the_first():
    assert parts_query(Request()) == PartsQuery(part_number_marker=0, max_parts=1000)


def test_list_parts_query_is_capped_at_1000_parts():
    query = parts_query(Request({"max-parts": "5000", "part-number-marker": "7"}))
    assert query == PartsQuery(part_number_marker=7, max_parts=1000)
    assert parts_query(Request({"max-parts": "0"})).max_parts == 0
    assert parts_query(Request({"part-number-marker": "2147483647"})).part_number_marker == 2**31 - 1


@pytest.mark.parametrize("name", ["max-parts", "part-number-marker"])
@pytest.mark.parametrize("text", ["-1", "x", "", "1.0", "2147483648", "\u0661"])
def test_bad_list_parts_counts_are_invalid_argument(name, text):
    error = refusal(InvalidArgument, parts_query, Request({name: text}))
    assert error.message == f"Argument {name} must be an integer between 0 and 2147483647"
    assert error.details == {"ArgumentName": name, "ArgumentValue": text}


def test_max_parts_is_refused_before_part_number_marker():
    error = refusal(InvalidArgument, parts_query, Request({"max-parts": "x", "part-number-marker": "y"}))
    assert error.details["ArgumentName"] == "max-parts"


def test_count_argument_without_maximum_is_uncapped():
    assert count_argument(Request({"n": "123456"}), "n", 5) == 123456
    assert count_argument(Request(), "n", 5) == 5
    assert count_argument(Request({"n": "123456"}), "n", 5, maximum=10) == 10


def test_list_uploads_defaults():
    assert uploads_query(Request()) == UploadsQuery("", "", "", "", 1000, False)


def test_list_uploads_query_is_echoed_as_given():
    query = uploads_query(
        Request(
            {
                "prefix": "a/b ",
                "delimiter": "/",
                "key-marker": "a/b c",
                "upload-id-marker": "id-9",
                "max-uploads": "2",
                "encoding-type": "url",
            }
        )
    )
    assert query == UploadsQuery("a/b ", "/", "a/b c", "id-9", 2, True)
    assert uploads_query(Request({"max-uploads": "1001"})).max_uploads == 1000


def test_upload_id_marker_is_ignored_without_key_marker():
    # "If key-marker is not specified, the upload-id-marker parameter is ignored."
    assert uploads_query(Request({"upload-id-marker": "id-9"})).upload_id_marker == ""


@pytest.mark.parametrize("encoding", ["url", "URL", "Url"])
def test_encoding_type_url_in_any_case_asks_for_encoded_keys(encoding):
    assert uploads_query(Request({"encoding-type": encoding})).url_encoded is True


@pytest.mark.parametrize("encoding", ["", "gzip", "base64"])
def test_other_encoding_types_are_invalid_argument(encoding):
    error = refusal(InvalidArgument, uploads_query, Request({"encoding-type": encoding}))
    assert error.message == "Invalid Encoding Method specified in Request"
    assert error.details == {"ArgumentName": "encoding-type", "ArgumentValue": encoding}


def test_max_uploads_is_refused_before_encoding_type():
    error = refusal(InvalidArgument, uploads_query, Request({"max-uploads": "-1", "encoding-type": "gzip"}))
    assert error.details == {"ArgumentName": "max-uploads", "ArgumentValue": "-1"}
