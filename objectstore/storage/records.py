"""Typed results of storage operations."""

from dataclasses import dataclass, field


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

    @property
    def quoted_etag(self):
        return f'"{self.etag}"'


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
    last: str = None
