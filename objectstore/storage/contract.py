"""The storage contract: the verbs web/ and registry/ call, whatever backend serves them.

Today the disk store (storage/store.py) is the one implementation; the
distributed backend (PostgreSQL index, Ceph RADOS data) will be the second.
Both must pass tests/contract/, which is written against these protocols only.

What every implementation promises (docs/architecture.md, "The storage contract"):

- a write's Deferred fires once it is committed and durable; readers see
  the old object or the new one, never a mix;
- a read, listing or delete issued after an answered write sees it;
- a body opened before an overwrite or delete reads the old bytes to its end;
- a refused write (an S3Error) changes nothing;
- writes are refused (StorageFull) rather than fill the disk: a free-space
  reserve is kept for deletes, which are never refused for want of room.

Errors are the S3Errors of objectstore.errors: NoSuchBucket, NoSuchKey,
BucketNotEmpty, BucketAlreadyExists / BucketAlreadyOwnedByYou, NoSuchUpload,
InvalidPart, InvalidPartOrder, EntityTooSmall...

Reads that the disk store answers from memory or one indexed SQLite lookup
(``get_bucket``, ``get_object``, ``open_object``, ``multipart.get``, ``multipart.completed``) are
plain calls, as they cost less than a thread hop. A backend whose reads
cross the network must not block the reactor: for it these become
awaitable, and callers await them (the contract suite already accepts
either, see tests/contract/conftest.py ``settle``).
"""

from typing import Any, Awaitable, Iterable, Optional, Protocol, Sequence, runtime_checkable

from objectstore.bodysink import BodySink
from objectstore.storage.records import (
    Bucket,
    Listing,
    ObjectInfo,
    PartListing,
    RequestedPart,
    Upload,
    UploadListing,
)
from objectstore.storage.space import Claim


@runtime_checkable
class BodyReader(Protocol):
    """An opened object's bytes: read any range, then close (releasing what pins the bytes)."""

    def read(self, offset: int, length: int) -> bytes:
        """Up to *length* bytes from *offset*: maybe fewer (a multipart object's reads stop at
        a part's end), b"" only past the end. Callers loop, as with a file's read()."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class UploadWriter(BodySink, Protocol):
    """Receives an upload's bytes as they arrive (the last sink of a body, see BodySink); ``size`` follows them.

    ``finish`` says every byte is in; the writer is then handed to
    ``put_object`` / ``upload_part``, which publish it. ``abort`` drops it.
    """

    size: int


@runtime_checkable
class MultipartUploads(Protocol):
    """Multipart uploads in progress, and completing them into objects."""

    def create(
        self,
        bucket: str,
        key: str,
        *,
        initiator: str,
        owner: str,
        acl: dict,
        headers: dict,
        metadata: dict,
        checksum: tuple = (None, None),
    ) -> Awaitable[Upload]: ...

    def get(self, upload_id: str, bucket: str, key: str) -> Upload: ...

    # The object an upload lately completed into, while the key holds it (else None): the same
    # Complete sent again answers it, as on S3.
    def completed(self, upload_id: str, bucket: str, key: str) -> Optional[ObjectInfo]: ...

    def new_part_writer(self, size: Optional[int] = None) -> UploadWriter: ...

    def upload_part(self, upload: Upload, number: int, writer: UploadWriter, checksums: dict) -> Awaitable[Any]: ...

    def copy_part(self, upload: Upload, number: int, body: BodyReader, start: int, length: int) -> Awaitable[Any]: ...

    def list_parts(self, upload: Upload, marker: int = 0, max_parts: int = 1000) -> Awaitable[PartListing]: ...

    def list_uploads(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 1000,
    ) -> Awaitable[UploadListing]: ...

    def complete(
        self,
        upload_id: str,
        bucket: str,
        key: str,
        requested: Sequence[RequestedPart],
        expected_size: Optional[int] = None,
        expected_checksum: Optional[tuple] = None,
    ) -> Awaitable[ObjectInfo]: ...

    def abort(self, upload_id: str, bucket: str, key: str) -> Awaitable[None]: ...

    def expire(self, max_age: float, now: Optional[float] = None) -> Awaitable[int]: ...


@runtime_checkable
class ObjectStore(Protocol):
    """Buckets and objects, S3-shaped."""

    multipart: MultipartUploads

    # -- life cycle (blocking: before the reactor serves, and after) --------
    def start(self) -> None: ...

    def close(self) -> None: ...

    # -- buckets ------------------------------------------------------------
    def get_bucket(self, name: str) -> Bucket: ...

    def list_buckets(self, owner: Optional[str] = None) -> list: ...

    def create_bucket(self, name: str, owner: str, region: str, acl: dict) -> Awaitable[Bucket]: ...

    def delete_bucket(self, name: str) -> Awaitable[None]: ...

    def set_bucket_acl(self, name: str, acl: dict) -> Awaitable[None]: ...

    def get_bucket_tags(self, name: str) -> Optional[list[tuple[str, str]]]: ...

    def set_bucket_tags(self, name: str, tags: Optional[list[tuple[str, str]]]) -> Awaitable[None]: ...

    # -- objects ------------------------------------------------------------
    def get_object(self, bucket: str, key: str) -> ObjectInfo: ...

    def open_object(self, bucket: str, key: str) -> tuple: ...

    def new_writer(self, inline_limit: Optional[int] = None, size: Optional[int] = None) -> UploadWriter:
        """A writer for an upload of *size* bytes (None: not declared); StorageFull before any byte if they
        would not leave the free-space reserve."""
        ...

    def claim_space(self, size: int = 0) -> Claim:
        """Room for *size* bytes written beside the store's own (an image); StorageFull if there is none."""
        ...

    def put_object(
        self,
        bucket: str,
        key: str,
        writer: UploadWriter,
        *,
        owner: str,
        acl: dict,
        headers: dict,
        metadata: dict,
        checksums: dict,
    ) -> Awaitable[ObjectInfo]: ...

    def copy_object(
        self,
        source: ObjectInfo,
        body: BodyReader,
        bucket: str,
        key: str,
        *,
        owner: str,
        acl: dict,
        headers: dict,
        metadata: dict,
    ) -> Awaitable[ObjectInfo]: ...

    def set_object_acl(self, bucket: str, key: str, acl: dict, expected: ObjectInfo) -> Awaitable[bool]: ...

    def delete_object(self, bucket: str, key: str) -> Awaitable[None]: ...

    def delete_objects(self, bucket: str, keys: Iterable[str], quick: bool = False) -> Awaitable[None]: ...

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", after: str = "", max_keys: int = 1000
    ) -> Awaitable[Listing]: ...
