"""The rows of buckets and objects: the SQL that reads and writes them, on a connection it is given.

Every function here runs inside a caller's read or write transaction, so
that a verb (store.py, multipart.py) composes several into one commit.
Objects' bytes are inline_data rows or blobs named by segments rows; a
blob that loses its last reference gets a ``garbage`` row in the same
transaction (see disk.py for when it is unlinked).
"""

import json
import sqlite3
from typing import Optional

from objectstore.errors import BucketAlreadyExists, BucketAlreadyOwnedByYou, BucketNotEmpty, NoSuchBucket, NoSuchKey
from objectstore.storage.records import Bucket, ObjectInfo, Segment

_OBJECT_COLUMNS = "id bucket key size etag modified owner acl headers metadata checksums damage".split()
_SEGMENT_COLUMNS = "s.blob, s.offset, s.length, s.crc32"
# An object's row with one line per segment (one line with NULLs if it has none).
OBJECT_WITH_SEGMENTS = (
    f"SELECT {', '.join('o.' + c for c in _OBJECT_COLUMNS)}, {_SEGMENT_COLUMNS}"
    " FROM objects o LEFT JOIN segments s ON s.object = o.id WHERE o.bucket = ? AND o.key = ? ORDER BY s.seq"
)
# The same, plus the bytes of an object kept inline and their CRC32 (NULLs for one in blobs).
OBJECT_WITH_BYTES = (
    f"SELECT {', '.join('o.' + c for c in _OBJECT_COLUMNS)}, {_SEGMENT_COLUMNS}, d.data, d.crc32"
    " FROM objects o LEFT JOIN segments s ON s.object = o.id LEFT JOIN inline_data d ON d.object = o.id"
    " WHERE o.bucket = ? AND o.key = ? ORDER BY s.seq"
)
_SEGMENT_WIDTH = 4
_BUCKET_COLUMNS = "name, owner, created, region, acl"

# -- buckets -------------------------------------------------------------------


def bucket_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is not None


def require_bucket(conn: sqlite3.Connection, name: str) -> None:
    """NoSuchBucket unless *name* is a bucket."""
    if not bucket_exists(conn, name):
        raise NoSuchBucket(BucketName=name)


def read_bucket(conn: sqlite3.Connection, name: str) -> Optional[Bucket]:
    row = conn.execute(f"SELECT {_BUCKET_COLUMNS} FROM buckets WHERE name = ?", (name,)).fetchone()
    return None if row is None else _bucket(row)


def read_buckets(conn: sqlite3.Connection, owner: Optional[str] = None) -> list[Bucket]:
    """Every bucket (of *owner*, if given), by name."""
    sql = f"SELECT {_BUCKET_COLUMNS} FROM buckets"
    args: tuple = ()
    if owner is not None:
        sql += " WHERE owner = ?"
        args = (owner,)
    return [_bucket(r) for r in conn.execute(sql + " ORDER BY name", args)]


def bucket_names_owned_by(conn: sqlite3.Connection, owner: str) -> list[str]:
    """The names of *owner*'s buckets, read on *conn*: for another package's transaction (deleting a user)."""
    return [name for (name,) in conn.execute("SELECT name FROM buckets WHERE owner = ? ORDER BY name", (owner,))]


def insert_bucket(conn: sqlite3.Connection, bucket: Bucket) -> None:
    conn.execute(
        f"INSERT INTO buckets ({_BUCKET_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        (bucket.name, bucket.owner, bucket.created, bucket.region, json.dumps(bucket.acl)),
    )


def _bucket(row: tuple) -> Bucket:
    name, owner, created, region, acl = row
    return Bucket(name, owner, created, region, json.loads(acl))


# -- objects -------------------------------------------------------------------


def lookup_object(conn: sqlite3.Connection, statement: str, bucket: str, key: str) -> tuple[ObjectInfo, tuple]:
    """The object's record by *statement* (OBJECT_WITH_...), and the columns it adds; NoSuchBucket or NoSuchKey.

    Row and segments come from one statement, so from one snapshot: an
    overwrite or delete committing meanwhile cannot leave us a row whose
    segments are already gone.
    """
    rows = conn.execute(statement, (bucket, key)).fetchall()
    if not rows:
        require_bucket(conn, bucket)
        raise NoSuchKey(Key=key)
    columns = len(_OBJECT_COLUMNS)
    segments = [r[columns : columns + _SEGMENT_WIDTH] for r in rows if r[columns] is not None]
    return _object(rows[0][:columns], segments), rows[0][columns + _SEGMENT_WIDTH :]


def swap_object_row(conn: sqlite3.Connection, info: ObjectInfo, data: Optional[tuple[bytes, int]] = None) -> list[str]:
    """Put *info*'s row (and segments, or inline *data*: bytes, CRC32) in place of its key's; the blobs that were
    the old object's.

    Few statements, as each costs the writer thread a round of GIL
    hand-offs with the reactor. A new key (the common case) is one
    INSERT, which also checks that the bucket exists; only if that
    inserts nothing is there an old row to remove (or no bucket).
    """
    row = (
        info.bucket,
        info.key,
        info.size,
        info.etag,
        info.modified,
        info.owner,
        _json(info.acl),
        _json(info.headers),
        _json(info.metadata),
        _json(info.checksums),
        info.bucket,
    )
    replaced = []
    if not _insert_object_row(conn, info, row, data):
        replaced = remove_object_row(conn, info.bucket, info.key)
        if not _insert_object_row(conn, info, row, data):
            raise NoSuchBucket(BucketName=info.bucket)
    return replaced


def _insert_object_row(
    conn: sqlite3.Connection, info: ObjectInfo, row: tuple, data: Optional[tuple[bytes, int]]
) -> bool:
    """Insert *row* (*info*'s), its bytes or segments; False if its key has a row or its bucket is gone."""
    cursor = conn.execute(
        "INSERT INTO objects (bucket, key, size, etag, modified, owner, acl, headers, metadata, checksums)"
        " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM buckets WHERE name = ?)"
        " ON CONFLICT (bucket, key) DO NOTHING",
        row,
    )
    if cursor.rowcount != 1:
        return False
    object_id = cursor.lastrowid
    if data is not None:
        conn.execute("INSERT INTO inline_data (object, data, crc32) VALUES (?, ?, ?)", (object_id, *data))
    if info.segments:
        conn.executemany(
            "INSERT INTO segments (object, seq, blob, offset, length, crc32) VALUES (?, ?, ?, ?, ?, ?)",
            [(object_id, i, s.blob, s.offset, s.length, s.crc32) for i, s in enumerate(info.segments)],
        )
    return True


def rewrite_object_row(conn: sqlite3.Connection, info: ObjectInfo) -> ObjectInfo:
    """Give the key's row *info*'s metadata, keeping its bytes; NoSuchKey if it has none."""
    cur = conn.execute(
        "UPDATE objects SET modified = ?, owner = ?, acl = ?, headers = ?, metadata = ? WHERE bucket = ? AND key = ?",
        (
            info.modified,
            info.owner,
            json.dumps(info.acl),
            json.dumps(info.headers),
            json.dumps(info.metadata),
            info.bucket,
            info.key,
        ),
    )
    if cur.rowcount == 0:
        raise NoSuchKey(Key=info.key)
    return info


def remove_object_row(conn: sqlite3.Connection, bucket: str, key: str) -> list[str]:
    """Delete a key's row; the blobs it referenced, now garbage."""
    row = conn.execute("SELECT id FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
    if row is None:
        return []
    blobs = [b for (b,) in conn.execute("SELECT blob FROM segments WHERE object = ?", row)]
    if blobs:
        conn.execute("DELETE FROM segments WHERE object = ?", row)
        mark_garbage(conn, blobs)
    else:
        conn.execute("DELETE FROM inline_data WHERE object = ?", row)
    conn.execute("DELETE FROM objects WHERE id = ?", row)
    return blobs


def mark_damaged(conn: sqlite3.Connection, info: ObjectInfo, what: str) -> bool:
    """Record that *info*'s bytes are damaged, if it is still its key's object; whether it was.

    Matched by ETag and modification time, not by id: an id freed by a
    delete may be given to a later object, which is not the damaged one.
    """
    cursor = conn.execute(
        "UPDATE objects SET damage = ? WHERE bucket = ? AND key = ? AND etag = ? AND modified = ? AND damage IS NULL",
        (what, info.bucket, info.key, info.etag, info.modified),
    )
    return cursor.rowcount == 1


def objects_after(conn: sqlite3.Connection, last_id: int, limit: int) -> list[tuple[int, str, str]]:
    """``(id, bucket, key)`` of up to *limit* objects with ids above *last_id*, by id: a scrub's page."""
    return conn.execute(
        "SELECT id, bucket, key FROM objects WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)
    ).fetchall()


def record_crcs(conn: sqlite3.Connection, info: ObjectInfo, crcs: list[tuple[Optional[Segment], int]]) -> None:
    """Fill in the CRC32s a scrub computed for rows from before CRCs: ``(segment, crc)``, None for inline bytes.

    Each only where none is recorded yet, and for a segment only while a
    row still names that run of that blob (blob ids are never reused, so
    those bytes are the ones read).
    """
    for segment, crc in crcs:
        if segment is not None:
            conn.execute(
                "UPDATE segments SET crc32 = ? WHERE blob = ? AND offset = ? AND length = ? AND crc32 IS NULL",
                (crc, segment.blob, segment.offset, segment.length),
            )
        else:
            conn.execute(
                "UPDATE inline_data SET crc32 = ? WHERE crc32 IS NULL AND object ="
                " (SELECT id FROM objects WHERE bucket = ? AND key = ? AND etag = ? AND modified = ?)",
                (crc, info.bucket, info.key, info.etag, info.modified),
            )


def read_scrub_progress(conn: sqlite3.Connection, name: str) -> Optional[tuple[str, float]]:
    """``(position, pass_started)`` of the scrub called *name*, or None if it never ran."""
    row = conn.execute("SELECT position, pass_started FROM scrub_progress WHERE name = ?", (name,)).fetchone()
    return None if row is None else (row[0], row[1])


def save_scrub_progress(conn: sqlite3.Connection, name: str, position: str, pass_started: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO scrub_progress (name, position, pass_started) VALUES (?, ?, ?)",
        (name, position, pass_started),
    )


def mark_garbage(conn: sqlite3.Connection, blobs: list[str]) -> None:
    """Record that *blobs* are referenced no more, so that recovery unlinks them if the unlink is lost to a crash."""
    conn.executemany("INSERT OR IGNORE INTO garbage (blob) VALUES (?)", [(b,) for b in blobs])


def blob_is_referenced(conn: sqlite3.Connection, blob: str) -> bool:
    """Is *blob* an object's segment or an upload's part?"""
    return bool(
        conn.execute("SELECT 1 FROM segments WHERE blob = ?", (blob,)).fetchone()
        or conn.execute("SELECT 1 FROM parts WHERE blob = ?", (blob,)).fetchone()
    )


def referenced_blobs(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """Every blob the index references, once each, with the size it must have at least.

    An object's segments need ``offset + length`` bytes of their blob (a
    copied object shares its source's blobs, so the longest need counts);
    an upload's part needs its size. Read in one statement, so that the
    caller's transaction (a backup's snapshot) sees one moment. Tables the
    index does not have yet (a folder from before versions) reference nothing.
    """
    present = _tables(conn)
    needs = []
    if "segments" in present:
        needs.append("SELECT blob, offset + length AS need FROM segments")
    if "parts" in present:
        needs.append("SELECT blob, size AS need FROM parts")
    if not needs:
        return []
    statement = f"SELECT blob, MAX(need) FROM ({' UNION ALL '.join(needs)}) GROUP BY blob ORDER BY blob"
    return [(blob, need) for blob, need in conn.execute(statement).fetchall()]


def object_totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """How many objects the index holds, and their bytes (what a backup's marker records)."""
    if "objects" not in _tables(conn):
        return 0, 0
    count, size = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects").fetchone()
    return count, size


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _object(row: tuple, segments: list) -> ObjectInfo:
    _, bucket, key, size, etag, modified, owner, acl, headers, metadata, checksums, damage = row
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=size,
        etag=etag,
        modified=modified,
        owner=owner,
        acl=json.loads(acl),
        headers=json.loads(headers),
        metadata=json.loads(metadata),
        checksums=json.loads(checksums),
        segments=tuple(Segment(*s) for s in segments),
        damage=damage,
    )


def _json(value: object) -> str:
    # Most objects carry no headers, metadata or checksums: no encoder for "{}".
    return "{}" if value == {} else json.dumps(value)


# -- changes that check what they change -----------------------------------------


def create_bucket_row(conn: sqlite3.Connection, bucket: Bucket) -> None:
    """Insert *bucket*; BucketAlreadyOwnedByYou or BucketAlreadyExists if its name is taken."""
    row = conn.execute("SELECT owner FROM buckets WHERE name = ?", (bucket.name,)).fetchone()
    if row is not None:
        if row[0] == bucket.owner:
            raise BucketAlreadyOwnedByYou(BucketName=bucket.name)
        raise BucketAlreadyExists(BucketName=bucket.name)
    insert_bucket(conn, bucket)


def delete_bucket_row(conn: sqlite3.Connection, name: str) -> None:
    """Delete an empty bucket's row; NoSuchBucket or BucketNotEmpty."""
    require_bucket(conn, name)
    if conn.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
        raise BucketNotEmpty(BucketName=name)
    conn.execute("DELETE FROM bucket_tags WHERE bucket = ?", (name,))
    conn.execute("DELETE FROM buckets WHERE name = ?", (name,))


def update_bucket_acl(conn: sqlite3.Connection, name: str, acl: dict) -> None:
    cur = conn.execute("UPDATE buckets SET acl = ? WHERE name = ?", (json.dumps(acl), name))
    if cur.rowcount == 0:
        raise NoSuchBucket(BucketName=name)


def read_bucket_tags(conn: sqlite3.Connection, name: str) -> Optional[list[tuple[str, str]]]:
    """The bucket's tag set, in the order it was given; None if it has none (NoSuchBucket if no bucket)."""
    row = conn.execute("SELECT tags FROM bucket_tags WHERE bucket = ?", (name,)).fetchone()
    if row is None:
        require_bucket(conn, name)
        return None
    return [(key, value) for key, value in json.loads(row[0])]


def write_bucket_tags(conn: sqlite3.Connection, name: str, tags: Optional[list[tuple[str, str]]]) -> None:
    """Replace the bucket's tag set with *tags* (None: remove it)."""
    require_bucket(conn, name)
    if tags is None:
        conn.execute("DELETE FROM bucket_tags WHERE bucket = ?", (name,))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO bucket_tags (bucket, tags) VALUES (?, ?)",
            (name, json.dumps([list(t) for t in tags])),
        )


def update_object_acl(conn: sqlite3.Connection, bucket: str, key: str, acl: dict, expected: ObjectInfo) -> bool:
    """Give the key *acl* if its row is still *expected*'s (compare and set); whether it was."""
    cur = conn.execute(
        "UPDATE objects SET acl = ?"
        " WHERE bucket = ? AND key = ? AND modified = ? AND etag = ? AND owner = ? AND acl = ?",
        (json.dumps(acl), bucket, key, expected.modified, expected.etag, expected.owner, json.dumps(expected.acl)),
    )
    if cur.rowcount:
        return True
    if conn.execute("SELECT 1 FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone() is None:
        require_bucket(conn, bucket)
        raise NoSuchKey(Key=key)
    return False


# -- recovery ----------------------------------------------------------------------


def garbage_blobs(conn: sqlite3.Connection) -> list[str]:
    """The blobs whose unlink an earlier run may not have finished."""
    return [blob for (blob,) in conn.execute("SELECT blob FROM garbage").fetchall()]


def clear_garbage(conn: sqlite3.Connection) -> None:
    """Forget every garbage row: once their blobs are unlinked (at start-up, before serving)."""
    conn.execute("DELETE FROM garbage")
