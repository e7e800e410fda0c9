"""ObjectResource: operations on ``/bucket/key``."""

from objectstore import xmlio
from objectstore.auth import acl as acls
from objectstore.checksums import requested_checksum
from objectstore.errors import (
    EntityTooLarge,
    InvalidArgument,
    InvalidPartNumber,
    InvalidRequest,
    MalformedACLError,
    MalformedTrailerError,
    MissingContentLength,
    NoSuchKey,
    ObjectDamaged,
    OperationAborted,
)
from objectstore.web.access import open_readable, require
from objectstore.web.acl_input import ACL_BODY_LIMIT, acl_from_headers, acl_headers, requested_policy
from objectstore.web.awschunked import AwsChunkedDecoder, decoded_length, is_aws_chunked
from objectstore.web.body import MAX_OBJECT_SIZE, BufferedBody, TrailerChecksum, UploadBody, parse_content_md5
from objectstore.web.conditions import NotModified, check_conditions, parse_range
from objectstore.web.formats import MetadataHeaders, acl_document, http_date, iso8601
from objectstore.web.multipart import MultipartOperations
from objectstore.web.multipart_documents import checksum_headers
from objectstore.web.multipart_input import part_number_of
from objectstore.web.received import Received
from objectstore.web.request import STAMP_HEADERS
from objectstore.web.resource import S3Resource, arg, client_gone, operation, send_empty, send_xml
from objectstore.web.streaming import BodyProducer
from objectstore.web.upload_input import (
    META_PREFIX,
    content_headers,
    copy_source,
    is_chunked,
    lower_headers,
    metadata_header,
    no_copy_body,
)
from objectstore.web.versions import require_null_version

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
# GET's response-* parameters and the header each overrides.
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
MAX_COPY_SOURCE_SIZE = 5 * 1024**3
# PutObjectAcl tries again when the object changes under it; a key overwritten this often gives up.
PUT_ACL_ATTEMPTS = 3
# GET answers up to this many bytes are written at once, without a producer.
SMALL_ANSWER = 64 * 1024


class ObjectResource(MultipartOperations, S3Resource):
    resource_type = "OBJECT"

    def __init__(self, app, bucket, key):
        super().__init__(app)
        self.bucket_name = self.named_bucket = bucket
        self.key = key

    def prepare(self, request, length):
        # ?versionId=null names the object itself; any other id names nothing (see web/versions.py).
        require_null_version(request)
        super().prepare(request, length)

    # -- PUT: upload or copy -----------------------------------------------

    def receive_put_object(self, request, length):
        """Everything that can refuse an upload is checked here, before its body."""
        bucket = self.store.get_bucket(self.bucket_name)
        require(request, bucket.acl, acls.WRITE)
        acl = self._canned_acl(request, bucket)
        headers, metadata = content_headers(request)
        if request.getHeader(b"x-amz-copy-source") is not None:
            return Received.of_document(no_copy_body(), acl=acl, headers=headers, metadata=metadata)
        received = self._receive_upload_body(request, length, self.store.new_writer)
        received.acl, received.headers, received.metadata = acl, headers, metadata
        return received

    def _receive_upload_body(self, request, length, new_writer, checksum_for=None):
        """Where an upload's body (a PutObject's, an UploadPart's) goes: ``received.upload``, maybe behind a decoder.

        Everything the headers can refuse is refused here, before the body:
        no length, too large (5 GiB, for an object as for a part), a
        malformed Content-MD5 or checksum declaration. *new_writer* makes
        the storage writer, once nothing else can refuse (it refuses, StorageFull,
        a size the free-space reserve cannot take); *checksum_for* may
        replace the RequestChecksum the headers declare (or None) with the
        one to compute.
        """
        if length is None and not is_chunked(request):
            raise MissingContentLength()
        framed = is_aws_chunked(request)
        size = decoded_length(request) if framed else length
        if size is not None and size > MAX_OBJECT_SIZE:
            raise EntityTooLarge(ProposedSize=size, MaxSizeAllowed=MAX_OBJECT_SIZE)
        md5 = parse_content_md5(request.getHeaderText(b"Content-MD5"))
        checksum = requested_checksum(lower_headers(request))
        if checksum is not None and checksum.trailer is not None and not framed:
            # Only an aws-chunked body has a trailer to carry the announced checksum.
            raise MalformedTrailerError()
        if checksum_for is not None:
            checksum = checksum_for(checksum)
        # The declared size is claimed now: a body the free-space reserve has no room for is not read.
        upload = UploadBody(new_writer(size=size), content_md5=md5, checksum=checksum)
        if framed:
            observers = [*request.auth.chunk_observers(), TrailerChecksum(checksum)]
            return Received(AwsChunkedDecoder(upload, decoded_length=size, observers=observers), upload=upload)
        return Received(upload, upload=upload)

    def _canned_acl(self, request, bucket):
        """The ACL an upload or copy asks for (x-amz-acl or x-amz-grant-*); private if none."""
        # An anonymous upload (to a public-read-write bucket) belongs to the bucket's owner.
        owner = request.caller.user.id if request.caller.user else bucket.owner
        asked = acl_from_headers(acl_headers(request), owner, self.app.credentials, bucket_owner=bucket.owner)
        return asked or acls.canned("private", owner)

    @operation("PUT")
    async def put_object(self, request):
        if request.getHeader(b"x-amz-copy-source") is not None:
            return await self.copy_object(request)
        received = request.received
        info = await self.store.put_object(
            self.bucket_name,
            self.key,
            received.upload.writer,
            owner=received.acl["owner"],
            acl=received.acl,
            headers=received.headers,
            metadata=received.metadata,
            checksums=received.upload.checksums,
        )
        request.setHeader(b"ETag", info.quoted_etag.encode())
        _checksum_headers(request, info)
        send_empty(request)

    async def copy_object(self, request):
        source_bucket, source_key = copy_source(request.getHeader(b"x-amz-copy-source"))
        # Opened now, so the bytes copied are those of the version checked here.
        source, body = open_readable(request, self.store, source_bucket, source_key)
        try:
            info = await self._copy(request, source, body)
        finally:
            body.close()
        send_xml(
            request,
            xmlio.element(
                "CopyObjectResult",
                xmlio.element("LastModified", iso8601(info.modified)),
                xmlio.element("ETag", info.quoted_etag),
            ),
        )

    async def _copy(self, request, source, body):
        source_bucket, source_key = source.bucket, source.key
        require(request, source.acl, acls.READ)
        check_conditions(lower_headers(request), source, prefix="x-amz-copy-source-")
        if source.size > MAX_COPY_SOURCE_SIZE:
            raise InvalidRequest(
                f"The specified copy source is larger than the maximum allowable size for a copy source: "
                f"{MAX_COPY_SOURCE_SIZE}"
            )
        directive = request.getHeaderText(b"x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise InvalidArgument(
                "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive", ArgumentValue=directive
            )
        if (source_bucket, source_key) == (self.bucket_name, self.key) and directive != "REPLACE":
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without "
                "changing the object's metadata, storage class, website redirect location or encryption attributes."
            )
        if directive == "REPLACE":
            headers, metadata = request.received.headers, request.received.metadata
        else:
            headers, metadata = source.headers, source.metadata
        acl = request.received.acl
        return await self.store.copy_object(
            source, body, self.bucket_name, self.key, owner=acl["owner"], acl=acl, headers=headers, metadata=metadata
        )

    # -- GET / HEAD --------------------------------------------------------

    @operation("GET")
    async def get_object(self, request):
        self._read(request, with_body=True)

    @operation("HEAD")
    async def head_object(self, request):
        self._read(request, with_body=False)

    # ?partNumber=N reads part N of a multipart object (all of any other, as its part 1).
    @operation("GET", "partNumber")
    async def get_object_part(self, request):
        self._read(request, with_body=True)

    @operation("HEAD", "partNumber")
    async def head_object_part(self, request):
        self._read(request, with_body=False)

    def _read(self, request, with_body):
        try:
            if with_body:
                info, body = open_readable(request, self.store, self.bucket_name, self.key)
            else:
                info, body = self.store.get_object(self.bucket_name, self.key), None
        except NoSuchKey:
            # As AWS: a caller who may not list the bucket learns nothing of which keys exist.
            require(request, self.store.get_bucket(self.bucket_name).acl, acls.READ)
            raise
        try:
            span = _answer_headers(request, info)
        except BaseException:
            _close(body)
            raise
        if body is None or span is None or span[1] < span[0]:
            # Nothing to stream (HEAD, 304, an empty object): the blobs were opened for nothing.
            _close(body)
            request.finish()
            return
        if span[1] - span[0] < SMALL_ANSWER:
            _answer_at_once(request, body, *span)
            return
        BodyProducer(request, body, *span).start()

    # -- DELETE --------------------------------------------------------------

    @operation("DELETE")
    async def delete_object(self, request):
        bucket = self.store.get_bucket(self.bucket_name)
        require(request, bucket.acl, acls.WRITE)
        await self.store.delete_object(self.bucket_name, self.key)
        send_empty(request, 204)

    # -- ACL -------------------------------------------------------------------

    @operation("GET", "acl")
    async def get_acl(self, request):
        info = self.store.get_object(self.bucket_name, self.key)
        require(request, info.acl, acls.READ_ACP)
        send_xml(request, acl_document(info.acl, self.app.credentials))

    def receive_put_acl(self, request, length):
        # Refused before the document is read when the caller may not change the ACL.
        info = self.store.get_object(self.bucket_name, self.key)
        require(request, info.acl, acls.WRITE_ACP)
        content_md5 = parse_content_md5(request.getHeaderText(b"Content-MD5"))
        return Received.of_document(BufferedBody(ACL_BODY_LIMIT, too_large=MalformedACLError, content_md5=content_md5))

    @operation("PUT", "acl")
    async def put_acl(self, request):
        bucket = self.store.get_bucket(self.bucket_name)
        for _ in range(PUT_ACL_ATTEMPTS):
            # Decided against one version of the object, and applied only to that version.
            info = self.store.get_object(self.bucket_name, self.key)
            require(request, info.acl, acls.WRITE_ACP)
            acl = requested_policy(request, info.owner, self.app.credentials, bucket_owner=bucket.owner)
            if await self.store.set_object_acl(self.bucket_name, self.key, acl, expected=info):
                send_empty(request)
                return
        raise OperationAborted()


def _answer_at_once(request, body, start, end):
    """Send bytes [start, end] of a small answer now (and close *body*).

    A producer would take another reactor turn and a cooperator task to
    send what fits in one write. Like BodyProducer, a blob shorter than its
    record cuts the connection rather than let a short body pass for whole;
    but bytes found damaged here are answered with ObjectDamaged, since
    nothing is sent yet (a producer's stream is cut instead).
    """
    try:
        chunks, offset = [], start
        while offset <= end:
            try:
                data = body.read(offset, end + 1 - offset)
            except ObjectDamaged:
                _drop_object_headers(request)
                raise
            if not data:
                request.channel.transport.abortConnection()
                return
            chunks.append(data)
            offset += len(data)
    finally:
        body.close()
    if client_gone(request):
        return
    request.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    request.finish()


def _drop_object_headers(request):
    """Take back the object's headers (metadata, encoding, length...) so an error can answer in their place."""
    for name, _ in list(request.responseHeaders.getAllRawHeaders()):
        if name.lower() not in STAMP_HEADERS:
            request.responseHeaders.removeHeader(name)
    request.setResponseCode(200)


def _answer_headers(request, info):
    """Status and headers of a GET or HEAD; the (first, last) bytes to send, or None for a 304.

    The object's own headers are set last: an error answer (412, 416)
    must not carry its Content-Encoding or metadata onto an XML document.
    """
    require(request, info.acl, acls.READ)
    if info.damage is not None:
        raise ObjectDamaged()  # a HEAD's answer (a GET's object is refused as it is opened)
    checksum_mode = _checksum_mode(request)
    part = part_number_of(request, required=False)
    if part is not None and request.getHeader(b"Range") is not None:
        raise InvalidRequest("Cannot specify both Range header and partNumber query parameter")
    try:
        check_conditions(lower_headers(request), info)
    except NotModified:
        request.setResponseCode(304)
        _validators(request, info)
        return None
    wanted = parse_range(request.getHeaderText(b"Range"), info.size) if part is None else _part_span(info, part)
    if part is not None and info.part_count is not None:
        request.setHeader(b"x-amz-mp-parts-count", b"%d" % info.part_count)
    if wanted is None:
        start, end = 0, info.size - 1
    else:
        start, end = wanted
        # An empty part has no byte range to name: it is answered as a 200 of no bytes.
        if end >= start:
            request.setResponseCode(206)
            request.setHeader(b"Content-Range", b"bytes %d-%d/%d" % (start, end, info.size))
    request.setHeader(b"Content-Length", b"%d" % (end - start + 1))
    _describe(request, info)
    if checksum_mode and (start, end) == (0, info.size - 1):
        # A checksum describes the whole object: a range that is less gets none.
        _checksum_headers(request, info)
    return start, end


def _part_span(info, number):
    """The (first, last) bytes of part *number*; an empty part's last byte is before its first.

    An object uploaded whole is its own single part.
    """
    count = info.part_count or 1
    if number > count:
        error = InvalidPartNumber(PartNumberRequested=str(number), ActualPartCount=str(count))
        error.headers = {"Content-Range": f"bytes */{info.size}"}
        raise error
    if info.part_count is None:
        return 0, info.size - 1
    start = sum(segment.length for segment in info.segments[: number - 1])
    return start, start + info.segments[number - 1].length - 1


def _validators(request, info):
    request.setHeader(b"ETag", info.quoted_etag.encode())
    request.setHeader(b"Last-Modified", http_date(info.modified).encode())


def _describe(request, info):
    """The headers of a GET or HEAD that serves the object."""
    if info.metadata:
        # S3 sends metadata names lower-case; Twisted would capitalise them.
        request.responseHeaders = MetadataHeaders(dict(request.responseHeaders.getAllRawHeaders()))
    _validators(request, info)
    request.setHeader(b"Accept-Ranges", b"bytes")
    headers = {"content-type": DEFAULT_CONTENT_TYPE, **info.headers}
    for name, value in headers.items():
        request.setHeader(name.encode(), value.encode("utf-8"))
    for name, value in info.metadata.items():
        request.setHeader((META_PREFIX + name).encode(), metadata_header(value))
    for parameter, header in RESPONSE_OVERRIDES.items():
        value = arg(request, parameter)
        if value is not None:
            request.setHeader(header.encode(), value.encode("utf-8"))


def _checksum_mode(request):
    """Does a GET or HEAD ask for the object's checksums (``x-amz-checksum-mode: ENABLED``)?"""
    mode = request.getHeaderText(b"x-amz-checksum-mode")
    if mode is None:
        return False
    if mode.strip().upper() != "ENABLED":
        raise InvalidRequest("Value for x-amz-checksum-mode header is invalid.")
    return True


def _checksum_headers(request, info):
    """``x-amz-checksum-<algorithm>`` and ``x-amz-checksum-type`` of the object's checksums."""
    checksum_headers(request, info.checksums)


def _close(body):
    if body is not None:
        body.close()
