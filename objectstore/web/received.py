"""Received: what an operation decided before its body arrived, handed to it once the body is in.

An S3 operation runs in two steps (see resource.py): its ``receive_*``
step runs as soon as the headers are in, checks what can refuse the
request before a byte of the body is read, and says where the body goes;
the operation itself runs once the body is complete. Whatever the first
step found out (the upload's ACL and headers, the multipart upload a part
belongs to) reaches the second in this one object, ``request.received``,
not in attributes hung on the Twisted request.
"""

from dataclasses import dataclass
from typing import Optional

from objectstore.bodysink import BodySink
from objectstore.storage.records import Upload
from objectstore.web.body import BufferedBody, UploadBody


@dataclass
class Received:
    # What the arriving bytes are written to: the document or upload below,
    # or an aws-chunked decoder in front of it (a signed SHA-256 check may
    # still be put in front of this one, see S3Request.gotLength).
    sink: BodySink
    # A small body (an XML document, a form) kept for the operation to parse.
    document: Optional[BufferedBody] = None
    # An object's or part's bytes, streamed into a storage writer.
    upload: Optional[UploadBody] = None
    # What an upload or copy asked for in its headers.
    acl: Optional[dict] = None
    headers: Optional[dict] = None
    metadata: Optional[dict] = None
    # An UploadPart's upload and part number.
    multipart_upload: Optional[Upload] = None
    part_number: Optional[int] = None

    @classmethod
    def of_document(cls, document: BufferedBody, **decided) -> "Received":
        """A body kept whole in memory (capped by *document*) for the operation to read."""
        return cls(sink=document, document=document, **decided)

    def document_bytes(self) -> bytes:
        """The small body as received (b"" when the body went elsewhere)."""
        return b"" if self.document is None else self.document.value()
