"""Typed results of storage operations."""

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Bucket:
    name: str
    owner: str
    created: float
    region: str
    acl: dict


@dataclass(frozen=True)
class Segment:
    """A run of bytes of an object: ``length`` bytes of blob ``blob`` from ``offset``."""

    blob: str
    offset: int
    length: int
    # zlib's CRC32 of those bytes, recorded when they were written; None if
    # written before CRCs were kept (see storage/integrity.py).
    crc32: Optional[int] = None


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str  # hex digest, without quotes
    modified: float
    owner: str
    acl: dict
    # Content-Type, Content-Encoding, ... as the client sent them.
    headers: dict = field(default_factory=dict)
    # x-amz-meta-* without the prefix, lower-cased names.
    metadata: dict = field(default_factory=dict)
    checksums: dict = field(default_factory=dict)
    segments: tuple = ()
    # Why its stored bytes were found damaged (None: they never were); a
    # damaged object is refused to readers (see storage/integrity.py).
    damage: Optional[str] = None

    @property
    def quoted_etag(self) -> str:
        return f'"{self.etag}"'

    @property
    def part_count(self) -> Optional[int]:
        """How many parts a multipart object was completed from; None for one uploaded whole.

        A multipart ETag ends in ``-N`` (see storage/multipart.py), and each
        of its N parts is one of its segments.
        """
        _, dash, count = self.etag.rpartition("-")
        return int(count) if dash else None


@dataclass(frozen=True)
class Upload:
    """A multipart upload in progress: the object it will make, once completed."""

    id: str
    bucket: str
    key: str
    # The user who created it ("" for an anonymous caller) and the object's owner to be.
    initiator: str
    owner: str
    acl: dict
    headers: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    # The additional checksum its parts carry (CRC32, SHA256, ...) and how
    # the object's is made of them (COMPOSITE or FULL_OBJECT); None for none.
    checksum_algorithm: Optional[str] = None
    checksum_type: Optional[str] = None
    created: float = 0.0


@dataclass(frozen=True)
class Part:
    """A part uploaded to a multipart upload."""

    number: int
    size: int
    etag: str  # hex MD5, without quotes
    modified: float
    checksums: dict = field(default_factory=dict)

    @property
    def quoted_etag(self) -> str:

        return f'"{self.etag}"'


@dataclass(frozen=True)
class RequestedPart:
    """A part a CompleteMultipartUpload names: its number, ETag and any checksum it states."""

    number: int
    etag: str  # without quotes
    checksums: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PartListing:
    parts: list
    truncated: bool
    # The number of the last part listed: where the next page starts.
    next_marker: int = 0


@dataclass(frozen=True)
class UploadListing:
    uploads: list
    prefixes: list
    truncated: bool
    # Where the next page starts: the last key (or common prefix) listed, and the last upload id.
    next_key_marker: str = ""
    next_upload_id_marker: str = ""


@dataclass(frozen=True)
class ListEntry:
    key: str
    size: int
    etag: str
    modified: float
    owner: str


@dataclass(frozen=True)
class Listing:
    entries: list
    prefixes: list
    truncated: bool
    # The last key or prefix returned: where the next page starts.
    last: Optional[str] = None
