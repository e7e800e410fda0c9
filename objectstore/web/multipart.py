"""Multipart uploads on the wire: the operations on ``/bucket/key?uploads|uploadId``.

CreateMultipartUpload, UploadPart (streamed and checked exactly as a
PutObject body is), UploadPartCopy, CompleteMultipartUpload,
AbortMultipartUpload and ListParts live here as a mixin of ObjectResource,
with the bucket's ListMultipartUploads. What their requests carry is read by
web/multipart_input.py, their answers are built by web/multipart_documents.py,
and what the operations do to the store is storage/multipart.py's business.
"""

from objectstore.auth import acl as acls
from objectstore.errors import AccessDenied, InvalidRequest, NoSuchUpload
from objectstore.storage.multipart import MAX_PART_SIZE
from objectstore.web.access import open_readable, require
from objectstore.web.body import BufferedBody
from objectstore.web.conditions import check_conditions
from objectstore.web.multipart_documents import (
    checksum_headers,
    complete_document,
    copy_part_document,
    initiate_document,
    list_parts_document,
    list_uploads_document,
)
from objectstore.web.multipart_input import (
    ANONYMOUS_INITIATOR,
    COMPLETE_BODY_LIMIT,
    copy_source_range,
    parse_complete,
    part_checksum,
    part_number_of,
    parts_query,
    requested_upload_checksum,
    stated_object_checksum,
    stated_object_size,
    uploads_query,
)
from objectstore.web.received import Received
from objectstore.web.resource import arg, operation, send_empty, send_xml
from objectstore.web.upload_input import content_headers, copy_source, lower_headers, no_copy_body


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
        send_xml(request, initiate_document(self.bucket_name, self.key, upload))

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
        source, body = open_readable(request, self.store, source_bucket, source_key)
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
        send_xml(request, copy_part_document(part))

    # -- CompleteMultipartUpload ---------------------------------------------------

    def receive_complete_multipart_upload(self, request, length):
        bucket = self.store.get_bucket(self.bucket_name)
        require(request, bucket.acl, acls.WRITE)
        try:
            self._upload(request)  # NoSuchUpload before the document is read
        except NoSuchUpload:
            # Unless it completed lately: the same Complete again gets the same answer, as on S3.
            if self.store.multipart.completed(arg(request, "uploadId", ""), self.bucket_name, self.key) is None:
                raise
        return Received.of_document(BufferedBody(COMPLETE_BODY_LIMIT))

    @operation("POST", "uploadId")
    async def complete_multipart_upload(self, request):
        requested = parse_complete(request.received.document_bytes())
        info = await self.store.multipart.complete(
            arg(request, "uploadId", ""),
            self.bucket_name,
            self.key,
            requested,
            expected_size=stated_object_size(request),
            expected_checksum=stated_object_checksum(request),
        )
        scheme = "https" if request.isSecure() else "http"
        host = request.getHeaderText(b"Host", "")
        location = f"{scheme}://{host}{request.path.decode('latin-1')}"
        send_xml(request, complete_document(location, self.bucket_name, self.key, info))

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
        query = parts_query(request)
        page = await self.store.multipart.list_parts(upload, query.part_number_marker, query.max_parts)
        send_xml(request, list_parts_document(self.bucket_name, self.key, upload, query, page, self.app.credentials))


# -- ListMultipartUploads (a bucket operation) ---------------------------------------------


async def list_multipart_uploads(store, credentials, request, bucket):
    """The ListMultipartUploadsResult of *bucket* for the request's query."""
    query = uploads_query(request)  # refuses a bad max-uploads or encoding-type before the scan
    page = await store.multipart.list_uploads(
        bucket, query.prefix, query.delimiter, query.key_marker, query.upload_id_marker, query.max_uploads
    )
    return list_uploads_document(bucket, query, page, credentials)
