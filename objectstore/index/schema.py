"""The index's schema: one home for every package's tables, built by numbered migrations.

The index (meta.sqlite) holds the tables of storage (buckets, objects and
their bytes, uploads), auth (users, access keys, certificates) and the image
registry. Its version is SQLite's ``PRAGMA user_version``: 0 for an empty
file, or for a data dir written before versions were kept (those hold a
subset of version 1's tables, every one created ``IF NOT EXISTS``), then the
number of the last migration applied.

At start-up ``migrate`` applies the missing migrations in one transaction
(all or none, the version set with them) and refuses an index from a newer
release, which this code cannot know how to read. Changing the schema means
appending a migration here, never editing one that has shipped, and
extending tests/functional/test_upgrade.py with a fixture made by the
release before (see tests/upgrade.py).
"""

import sqlite3
import struct
from dataclasses import dataclass


class SchemaTooNew(Exception):
    """The index was written by a newer release than this one."""

    def __init__(self, path: str, found: int):
        self.path = path
        self.found = found
        super().__init__(
            f"the index {path} was written by a newer objectstore (schema version {found}; this release reads "
            f"up to {LATEST_VERSION}); run that release or a later one, or restore a backup"
        )


@dataclass(frozen=True)
class Migration:
    version: int
    purpose: str
    script: str

    def statements(self):
        """The script's statements, one at a time: executescript() would commit the transaction first."""
        statement = ""
        for line in self.script.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                yield statement.strip()
                statement = ""
        if statement.strip() and not statement.strip().startswith("--"):
            raise ValueError(f"migration {self.version} ends in an incomplete statement: {statement!r}")


# Every table of the releases before versions were kept.
_BASELINE = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    region TEXT NOT NULL,
    acl TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified REAL NOT NULL,
    owner TEXT NOT NULL,
    acl TEXT NOT NULL,
    headers TEXT NOT NULL,
    metadata TEXT NOT NULL,
    checksums TEXT NOT NULL,
    UNIQUE (bucket, key)
);
CREATE TABLE IF NOT EXISTS segments (
    object INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    blob TEXT NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    PRIMARY KEY (object, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS segments_by_blob ON segments (blob);
-- The bytes of small objects (see storage/writer.py), apart from the rows
-- so that listings do not wade through them.
CREATE TABLE IF NOT EXISTS inline_data (
    object INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
-- Blobs no row references any more, to unlink; kept so a crash between the
-- commit and the unlink leaves no orphan that needs a disk walk to find.
CREATE TABLE IF NOT EXISTS garbage (blob TEXT PRIMARY KEY) WITHOUT ROWID;
-- Multipart uploads in progress: what the object will be once completed
-- (storage/multipart.py). Ids start with the creation time in hex, so
-- (key, id) is S3's listing order: by key, then oldest first.
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiator TEXT NOT NULL,
    owner TEXT NOT NULL,
    acl TEXT NOT NULL,
    headers TEXT NOT NULL,
    metadata TEXT NOT NULL,
    checksum_algorithm TEXT,
    checksum_type TEXT,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, id);
CREATE INDEX IF NOT EXISTS uploads_by_age ON uploads (created);
-- The parts uploaded so far, each a blob of its own; completing the upload
-- makes them the segments of the object without copying a byte.
CREATE TABLE IF NOT EXISTS parts (
    upload TEXT NOT NULL,
    number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    checksum TEXT NOT NULL,
    modified REAL NOT NULL,
    PRIMARY KEY (upload, number)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS parts_by_blob ON parts (blob);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
) WITHOUT ROWID;
-- Registered machine images (objectstore/registry/); an image's file is
-- images/<id>/image in the data folder, there only once it is available.
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    type TEXT NOT NULL,
    architecture TEXT,
    kernel_id TEXT,
    ramdisk_id TEXT,
    block_devices TEXT NOT NULL,
    is_public INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    size INTEGER,
    sha1 TEXT,
    signature_verified INTEGER NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS images_by_owner ON images (owner);
-- Certificates users bundle images with: a manifest signed with the key of
-- one of its uploader's certificates counts as verified.
CREATE TABLE IF NOT EXISTS user_certificates (
    user_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    pem TEXT NOT NULL,
    added REAL NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_keys (
    access_key TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    created REAL NOT NULL
) WITHOUT ROWID;
"""

# Which package reads and writes each table; the others go through its functions
# (tests/unit/test_schema.py checks the sources keep to it).
TABLE_OWNERS = {
    "buckets": "storage",
    "objects": "storage",
    "segments": "storage",
    "inline_data": "storage",
    "garbage": "storage",
    "uploads": "storage",
    "parts": "storage",
    "users": "auth",
    "access_keys": "auth",
    "user_certificates": "auth",
    "images": "registry",
    "scrub_progress": "storage",
    "completed_uploads": "storage",
    "bucket_tags": "storage",
}

# Checksums to find bit rot by (storage/integrity.py, storage/scrub.py).
_CHECKSUMS = """
-- zlib's CRC32 of each stored run of bytes (an object's segment, its inline
-- bytes, an upload's part), recorded as the bytes are written and checked
-- whenever they are read whole. NULL in rows written before: their check is
-- the MD5 their ETag is, and a scrub fills the CRC in once it has passed.
ALTER TABLE segments ADD COLUMN crc32 INTEGER;
ALTER TABLE inline_data ADD COLUMN crc32 INTEGER;
ALTER TABLE parts ADD COLUMN crc32 INTEGER;
-- Why an object's (an image's) bytes were found damaged; NULL while none
-- has been. A damaged object is refused to readers, never served, until it
-- is deleted or overwritten.
ALTER TABLE objects ADD COLUMN damage TEXT;
ALTER TABLE images ADD COLUMN damage TEXT;
-- The CRC32 of an image's file (images/<id>/image), recorded as it is
-- unpacked; NULL for one unpacked before (a scrub records it then).
ALTER TABLE images ADD COLUMN crc32 INTEGER;
-- How far the background scrubber has gone, so that a restart resumes its
-- pass (storage/scrub.py): where it is ('objects:<id>', 'images:<id>', or
-- 'done') and when the pass began.
CREATE TABLE scrub_progress (
    name TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    pass_started REAL NOT NULL
) WITHOUT ROWID;
"""

# Uploads completed lately, so that a Complete sent again (a client retrying
# an answer it lost) gets the same answer, as on S3 (storage/multipart.py).
# A row names the object the upload made by its key, ETag and modified time:
# once the key holds another object (an overwrite, a delete) the row no
# longer matches and the upload is NoSuchUpload again. Rows older than a day
# go in the hourly sweep. An index upgraded to this version has none: the
# uploads completed before it answer NoSuchUpload, as they did.
_COMPLETED = """
CREATE TABLE completed_uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    modified REAL NOT NULL,
    parts TEXT NOT NULL,
    completed REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX completed_uploads_by_age ON completed_uploads (completed);
CREATE INDEX completed_uploads_by_bucket ON completed_uploads (bucket);
"""

# A bucket's tag set (PutBucketTagging), as JSON [[key, value], ...] in the order given; no row:
# no tag set (NoSuchTagSet). Gone with its bucket.
_BUCKET_TAGS = """
CREATE TABLE bucket_tags (
    bucket TEXT PRIMARY KEY,
    tags TEXT NOT NULL
) WITHOUT ROWID;
"""

MIGRATIONS = (
    Migration(1, "the tables of storage, auth and the image registry", _BASELINE),
    Migration(2, "checksums to find bit rot by, damage marks, and the scrubber's progress", _CHECKSUMS),
    Migration(3, "uploads completed lately, to answer a Complete sent again", _COMPLETED),
    Migration(4, "bucket tag sets", _BUCKET_TAGS),
)
LATEST_VERSION = MIGRATIONS[-1].version


def version_of(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the index on *conn* (autocommit) to LATEST_VERSION in one transaction; returns the version found.

    Raises SchemaTooNew, changing nothing, for an index from a newer release.
    Two processes opening the same index at once (a server and
    objectstore-manage) take turns: the second finds nothing left to do.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = version_of(conn)
        if found > LATEST_VERSION:
            raise SchemaTooNew(path, found)
        for migration in MIGRATIONS:
            if migration.version > found:
                for statement in migration.statements():
                    conn.execute(statement)
        if found != LATEST_VERSION:
            conn.execute(f"PRAGMA user_version = {LATEST_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


# The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
# Where an SQLite file's header keeps user_version (big-endian, 4 bytes).
_USER_VERSION_OFFSET = 60


def version_in_header(header: bytes):
    """The user_version in the first 64 bytes of an SQLite file; None if *header* is shorter or not SQLite's."""
    if len(header) < _USER_VERSION_OFFSET + 4 or not header.startswith(SQLITE_HEADER):
        return None
    return struct.unpack(">I", header[_USER_VERSION_OFFSET : _USER_VERSION_OFFSET + 4])[0]


def refuse_if_newer(path: str) -> None:
    """Raise SchemaTooNew if the file's header says a newer release wrote it (reads 64 bytes; opens nothing)."""
    with open(path, "rb") as f:
        found = version_in_header(f.read(_USER_VERSION_OFFSET + 4))
    if found is not None and found > LATEST_VERSION:
        raise SchemaTooNew(path, found)
