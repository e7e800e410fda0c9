"""Multipart uploads: parts kept as blobs, completed into an object without copying a byte.

An upload is a row of ``uploads``; each part a row of ``parts`` naming a
blob of its own, written, synced and published exactly as an object's is
(see store.py): the part's row commits after its blob's fdatasync, and the
blob moves home after the commit. Uploading a part number again replaces
the row, and the blob it named becomes garbage.

Completing is one transaction: the parts chosen become the segments of the
object, which replaces the key's previous one; the upload and its part rows
go, and the parts left out become garbage. Readers see the old object or
the new one, whole, and a crash on either side of the commit leaves one of
them. Aborting (or expiring) an upload drops its rows and its blobs.
"""

import json
import secrets
import sqlite3
import time
from collections.abc import Sequence
from typing import Optional

from twisted.internet.defer import Deferred

from objectstore.checksums import b64digest, new_checksum
from objectstore.errors import (
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
)
from objectstore.index.database import AfterCommit
from objectstore.storage import rows
from objectstore.storage.composite import FULL_OBJECT, composite_checksum, composite_etag, full_object_crc
from objectstore.storage.contract import BodyReader
from objectstore.storage.disk import Disk
from objectstore.storage.listing import prefix_end
from objectstore.storage.records import ObjectInfo, Part, PartListing, RequestedPart, Segment, Upload, UploadListing
from objectstore.storage.writer import ObjectWriter, copy_body

MIN_PART_SIZE = 5 * 1024**2
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000
# An object completed from parts may reach 5 TiB (one sent whole: 5 GiB, see web/body.py).
MAX_COMPLETED_SIZE = 5 * 1024**4
# A part is a blob however small, even empty, so every part is one segment
# of the object it completes (GET ?partNumber= finds it by its index).
PART_INLINE_LIMIT = -1
# How long a completed upload's record is kept, for a Complete sent again (see complete).
COMPLETED_KEPT = 24 * 3600
# Sorts after every upload id: "any upload of this key" in a listing position.
_AFTER_ANY_ID = chr(0x10FFFF)

_UPLOAD_COLUMNS = (
    "id, bucket, key, initiator, owner, acl, headers, metadata, checksum_algorithm, checksum_type, created"
)


def new_upload_id(now: float) -> str:
    """A random upload id that starts with its creation time, so ids of one key sort oldest first."""
    return f"{int(now * 1_000_000):014x}{secrets.token_urlsafe(24)}"


def check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PARTS:
        raise InvalidArgument(
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=str(number),
        )


class Multipart:
    """The multipart verbs of the disk backend (``contract.MultipartUploads``), beside Store on the same Disk."""

    def __init__(self, disk: Disk) -> None:
        self._disk = disk

    # -- uploads -----------------------------------------------------------

    async def create(
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
    ) -> Upload:
        """Start an upload of ``bucket/key``; *checksum*: (algorithm, type) its parts carry, or Nones."""
        now = time.time()
        algorithm, kind = checksum
        upload = Upload(new_upload_id(now), bucket, key, initiator, owner, acl, headers, metadata, algorithm, kind, now)

        def create(conn):
            rows.require_bucket(conn, bucket)
            conn.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.id,
                    bucket,
                    key,
                    initiator,
                    owner,
                    json.dumps(acl),
                    json.dumps(headers),
                    json.dumps(metadata),
                    algorithm,
                    kind,
                    now,
                ),
            )
            return upload

        return await self._disk.write_with_room(create)

    def get(self, upload_id: str, bucket: str, key: str) -> Upload:
        """The upload *upload_id* of ``bucket/key`` (a point lookup); NoSuchUpload if there is none."""
        return _upload_of(self._disk.reader(), upload_id, bucket, key)

    def completed(self, upload_id: str, bucket: str, key: str) -> Optional[ObjectInfo]:
        """The object upload *upload_id* lately completed into ``bucket/key``, while the key holds it; else None."""
        return completed_object(self._disk.reader(), upload_id, bucket, key)

    async def abort(self, upload_id: str, bucket: str, key: str) -> None:
        def abort(conn):
            _upload_of(conn, upload_id, bucket, key)
            return AfterCommit(None, self._disk.discard(self.drop_uploads(conn, [upload_id])))

        await self._disk.write(abort)

    async def expire(self, max_age: float, now: Optional[float] = None) -> int:
        """Abort every upload started more than *max_age* seconds before *now*; how many there were."""
        cutoff = (time.time() if now is None else now) - max_age

        def sweep(conn):
            ids = [i for (i,) in conn.execute("SELECT id FROM uploads WHERE created < ?", (cutoff,))]
            forget_completed(conn, (time.time() if now is None else now) - COMPLETED_KEPT)
            return AfterCommit(len(ids), self._disk.discard(self.drop_uploads(conn, ids)))

        return await self._disk.write(sweep)

    def drop_uploads(self, conn: sqlite3.Connection, upload_ids: list[str]) -> list[str]:
        """Delete uploads and their parts (in a write); the blobs that are garbage now."""
        return drop_uploads(conn, upload_ids)

    def drop_bucket_uploads(self, conn: sqlite3.Connection, bucket: str) -> list[str]:
        """Delete every upload of *bucket* (in the write deleting it); the blobs that are garbage now."""
        ids = [upload_id for (upload_id,) in conn.execute("SELECT id FROM uploads WHERE bucket = ?", (bucket,))]
        conn.execute("DELETE FROM completed_uploads WHERE bucket = ?", (bucket,))
        return self.drop_uploads(conn, ids)

    # -- parts -------------------------------------------------------------

    def new_part_writer(self, size: Optional[int] = None) -> ObjectWriter:
        """A writer for a part's bytes; *size*, the length it declares: StorageFull if it would cross the reserve."""
        return self._disk.new_writer(PART_INLINE_LIMIT, size)

    async def upload_part(self, upload: Upload, number: int, writer: ObjectWriter, checksums: dict) -> Part:
        """Record what *writer* received as part *number* of *upload*, replacing any part of that number."""
        try:
            check_part_number(number)
        except BaseException:
            writer.abort()
            raise
        return await self._record_part(upload, number, writer, checksums)

    async def copy_part(self, upload: Upload, number: int, body: BodyReader, start: int, length: int) -> Part:
        """Part *number* of *upload* made of *length* bytes from *start* of an opened object *body*.

        The copy runs in a pool thread, hashed (and checksummed with the
        upload's algorithm) on the way.
        """
        check_part_number(number)
        claim = self._disk.space.claim(length)
        try:
            writer, checksums = await self._disk.in_thread(
                _copy_range, self._disk.files, body, start, length, upload, claim
            )
        except BaseException:
            claim.dropped()
            raise
        return await self._record_part(upload, number, writer, checksums)

    async def _record_part(self, upload, number, writer, checksums):
        try:
            if writer.blob is None:
                writer.write(b"")  # an empty part still gets its (empty) blob
        except BaseException:
            writer.abort()
            raise
        blob, crc32 = writer.blob, writer.crc32
        part = Part(number, writer.size, writer.md5.hexdigest(), time.time(), dict(checksums))

        def record(conn):
            # The upload may have been completed or aborted while the part arrived.
            _upload_of(conn, upload.id, upload.bucket, upload.key)
            old = conn.execute("SELECT blob FROM parts WHERE upload = ? AND number = ?", (upload.id, number)).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO parts (upload, number, blob, size, etag, checksum, modified, crc32)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (upload.id, number, blob, part.size, part.etag, json.dumps(part.checksums), part.modified, crc32),
            )
            replaced = [old[0]] if old else []
            rows.mark_garbage(conn, replaced)
            return self._disk.publish(part, [blob], replaced)

        try:
            # The blob is synced in the batch that commits its row, as an object's is.
            recorded = await self._disk.write(record, prepare=writer.sync)
        except BaseException:
            writer.abort()
            raise
        writer.published()
        return recorded

    def list_parts(self, upload: Upload, marker: int = 0, max_parts: int = 1000) -> "Deferred[PartListing]":
        """A Deferred PartListing of *upload*'s parts numbered above *marker*."""

        def scan():
            conn = self._disk.reader()
            _upload_of(conn, upload.id, upload.bucket, upload.key)
            rows = conn.execute(
                "SELECT number, size, etag, modified, checksum FROM parts WHERE upload = ? AND number > ?"
                " ORDER BY number LIMIT ?",
                (upload.id, marker, max_parts + 1),
            ).fetchall()
            parts = [Part(n, size, etag, modified, json.loads(c)) for n, size, etag, modified, c in rows[:max_parts]]
            return PartListing(parts, len(rows) > max_parts, parts[-1].number if parts else marker)

        return self._disk.in_thread(scan)

    def list_uploads(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 1000,
    ) -> "Deferred[UploadListing]":
        """A Deferred UploadListing of *bucket*'s uploads in progress, by key then age."""

        def scan():
            conn = self._disk.reader()
            rows.require_bucket(conn, bucket)
            return list_uploads(conn, bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads)

        return self._disk.in_thread(scan)

    # -- completing --------------------------------------------------------

    async def complete(
        self,
        upload_id: str,
        bucket: str,
        key: str,
        requested: Sequence[RequestedPart],
        expected_size: Optional[int] = None,
        expected_checksum: Optional[tuple] = None,
    ) -> ObjectInfo:
        """Make the *requested* parts (RequestedPart, in order) the object ``bucket/key``; its ObjectInfo.

        *expected_size* (x-amz-mp-object-size) and *expected_checksum*
        (``(algorithm, value)`` of the whole object), when given, must
        match what the parts make.

        The same Complete sent again after it succeeded (a client retrying
        an answer it lost) gets the same object, as on S3, for a day
        (COMPLETED_KEPT) and while the key still holds that object;
        NoSuchUpload otherwise.
        """

        def complete(conn):
            try:
                upload = _upload_of(conn, upload_id, bucket, key)
            except NoSuchUpload:
                info = completed_object(conn, upload_id, bucket, key, requested)
                if info is None:
                    raise
                _check_expectations(info, expected_size, expected_checksum)
                return info
            stored, crc_of = {}, {}
            for number, blob, size, etag, checksum, crc32 in conn.execute(
                "SELECT number, blob, size, etag, checksum, crc32 FROM parts WHERE upload = ?", (upload_id,)
            ):
                stored[number] = (blob, size, etag, json.loads(checksum))
                crc_of[blob] = crc32  # NULL for a part uploaded before CRCs were kept
            chosen = choose_parts(upload, requested, stored)
            info = ObjectInfo(
                bucket=bucket,
                key=key,
                size=sum(size for _, size, _, _ in chosen),
                etag=composite_etag([etag for _, _, etag, _ in chosen]),
                modified=time.time(),
                owner=upload.owner,
                acl=upload.acl,
                headers=upload.headers,
                metadata=upload.metadata,
                checksums=object_checksums(upload, chosen),
                segments=tuple(Segment(blob, 0, size, crc_of[blob]) for blob, size, _, _ in chosen),
            )
            _check_expectations(info, expected_size, expected_checksum)
            replaced = rows.swap_object_row(conn, info)
            used = {blob for blob, _, _, _ in chosen}
            unused = [blob for blob, _, _, _ in stored.values() if blob not in used]
            conn.execute("DELETE FROM parts WHERE upload = ?", (upload_id,))
            conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
            conn.execute(
                "INSERT OR REPLACE INTO completed_uploads (id, bucket, key, etag, modified, parts, completed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (upload_id, bucket, key, info.etag, info.modified, _parts_named(requested), info.modified),
            )
            rows.mark_garbage(conn, unused)
            # The parts' blobs are home already: each part's own commit moved it.
            return AfterCommit(info, self._disk.discard(replaced + unused))

        return await self._disk.write_with_room(complete)


def completed_object(
    conn: sqlite3.Connection, upload_id: str, bucket: str, key: str, requested: Optional[Sequence[RequestedPart]] = None
) -> Optional[ObjectInfo]:
    """The object upload *upload_id* completed into ``bucket/key``, if the key still holds it; else None.

    With *requested*, only if the Complete names the same parts (numbers and
    ETags) as the one that completed it.
    """
    row = conn.execute(
        "SELECT etag, modified, parts FROM completed_uploads WHERE id = ? AND bucket = ? AND key = ?",
        (upload_id, bucket, key),
    ).fetchone()
    if row is None or (requested is not None and _parts_named(requested) != row[2]):
        return None
    try:
        info = rows.lookup_object(conn, rows.OBJECT_WITH_SEGMENTS, bucket, key)[0]
    except (NoSuchKey, NoSuchBucket):
        return None
    return info if (info.etag, info.modified) == (row[0], row[1]) else None


def forget_completed(conn: sqlite3.Connection, before: float) -> None:
    conn.execute("DELETE FROM completed_uploads WHERE completed < ?", (before,))


def _parts_named(requested: Sequence[RequestedPart]) -> str:
    return json.dumps([[part.number, part.etag] for part in requested])


def drop_uploads(conn: sqlite3.Connection, upload_ids: list[str]) -> list[str]:
    """Delete uploads and their parts, in the caller's write; the blobs that are garbage now.

    A function of the connection alone, so that ``objectstore-manage fsck``
    (storage/fsck.py), which has no Disk, drops an upload as abort does.
    """
    blobs: list = []
    for upload_id in upload_ids:
        blobs.extend(b for (b,) in conn.execute("SELECT blob FROM parts WHERE upload = ?", (upload_id,)))
    ids = [(upload_id,) for upload_id in upload_ids]
    conn.executemany("DELETE FROM parts WHERE upload = ?", ids)
    conn.executemany("DELETE FROM uploads WHERE id = ?", ids)
    rows.mark_garbage(conn, blobs)
    return blobs


def choose_parts(upload: Upload, requested: Sequence[RequestedPart], stored: dict) -> list[tuple]:
    """The stored parts a Complete names, in order, as (blob, size, etag, checksums); or AWS's refusal.

    *stored*: part number -> (blob, size, etag, checksums). A number named
    again in a row is the same part sent again (s3-tests'
    test_multipart_resend_first_finishes_last: the client lists each answer
    it got): its last entry counts. Numbers going down are InvalidPartOrder.
    """
    previous = 0
    for part in requested:
        check_part_number(part.number)
        if part.number < previous:
            raise InvalidPartOrder(UploadId=upload.id)
        previous = part.number
    # The last entry of each number: one not followed by another of its number.
    following = [*requested[1:], None]
    requested = [p for p, after in zip(requested, following, strict=True) if not after or after.number != p.number]
    chosen = []
    for part in requested:
        found = stored.get(part.number)
        if found is None or found[2] != part.etag or not _same_checksums(part.checksums, found[3]):
            raise InvalidPart(UploadId=upload.id, PartNumber=str(part.number), ETag=part.etag)
        chosen.append(found)
    for part, (_, size, etag, _) in zip(requested[:-1], chosen[:-1], strict=True):
        if size < MIN_PART_SIZE:
            raise EntityTooSmall(
                ProposedSize=str(size), MinSizeAllowed=str(MIN_PART_SIZE), PartNumber=str(part.number), ETag=etag
            )
    total = sum(size for _, size, _, _ in chosen)
    if total > MAX_COMPLETED_SIZE:
        raise EntityTooLarge(ProposedSize=str(total), MaxSizeAllowed=str(MAX_COMPLETED_SIZE))
    return chosen


def _same_checksums(stated, stored):
    """Does every checksum a Complete states for a part match the part's own?"""
    return all(stored.get(algorithm) == value for algorithm, value in stated.items())


def object_checksums(upload: Upload, chosen: list[tuple]) -> dict:
    """``{algorithm: value}`` of the completed object, from its parts' (empty without an algorithm)."""
    algorithm = upload.checksum_algorithm
    if algorithm is None:
        return {}
    values = [checksums.get(algorithm) for _, _, _, checksums in chosen]
    if None in values:
        raise InvalidRequest(
            f"The upload was created using a {algorithm.lower()} checksum. The complete request must include "
            "the checksum for each part. It was missing for part "
            f"{values.index(None) + 1} in the request."
        )
    if upload.checksum_type == FULL_OBJECT:
        lengths = [size for _, size, _, _ in chosen]
        return {algorithm: full_object_crc(algorithm, list(zip(values, lengths, strict=True)))}
    return {algorithm: composite_checksum(algorithm, values)}


def _check_expectations(info, expected_size, expected_checksum):
    if expected_size is not None and expected_size != info.size:
        raise InvalidRequest(
            f"The provided 'x-amz-mp-object-size' header value {expected_size} does not match what was "
            f"computed: {info.size}"
        )
    if expected_checksum is not None:
        algorithm, value = expected_checksum
        computed = info.checksums.get(algorithm)
        # A composite value may be stated with or without its "-N".
        if computed is None or value.partition("-")[0] != computed.partition("-")[0]:
            raise InvalidRequest(f"The {algorithm.lower()} you specified did not match the calculated checksum.")


def _copy_range(files, body, start, length, upload, claim):
    """Copy bytes [start, start + length) of *body* into a new part writer, synced (blocking)."""
    running = None if upload.checksum_algorithm is None else new_checksum(upload.checksum_algorithm)
    window = _Window(body, start, running)
    writer = copy_body(files, window, length, PART_INLINE_LIMIT, claim)
    checksums = {} if running is None else {upload.checksum_algorithm: b64digest(running)}
    return writer, checksums


class _Window:
    """Part of an opened object, read from its own offset 0, checksummed as it is read (in order)."""

    def __init__(self, body, start, checksum):
        self._body = body
        self._start = start
        self._checksum = checksum

    def read(self, offset, length):
        data = self._body.read(self._start + offset, length)
        if self._checksum is not None:
            self._checksum.update(data)
        return data


def _upload_of(conn, upload_id, bucket, key):
    row = conn.execute(
        f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE id = ? AND bucket = ? AND key = ?", (upload_id, bucket, key)
    ).fetchone()
    if row is None:
        raise NoSuchUpload(UploadId=upload_id)
    return _upload(row)


def _upload(row):
    upload_id, bucket, key, initiator, owner, acl, headers, metadata, algorithm, kind, created = row
    return Upload(
        upload_id,
        bucket,
        key,
        initiator,
        owner,
        json.loads(acl),
        json.loads(headers),
        json.loads(metadata),
        algorithm,
        kind,
        created,
    )


def list_uploads(
    conn: sqlite3.Connection,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    key_marker: str = "",
    upload_id_marker: str = "",
    max_uploads: int = 1000,
) -> UploadListing:
    """Uploads of *bucket* after the markers, rolled up into common prefixes by *delimiter*.

    The order is S3's: by key, then oldest first (which is upload id order,
    see new_upload_id). As in S3, ``upload_id_marker`` only counts with a
    ``key_marker``: then uploads of that very key with a greater id come
    first; without one, listing resumes after every upload of the key.
    """
    uploads: list = []
    prefixes: list = []
    if max_uploads <= 0:
        return UploadListing(uploads, prefixes, truncated=False)
    upper = prefix_end(prefix) if prefix else None
    # The scan position: uploads whose (key, id) comes after (low, after_id).
    if key_marker and key_marker >= prefix:
        low, after_id = key_marker, (upload_id_marker or _AFTER_ANY_ID)
    else:
        low, after_id = prefix, ""
    last = ("", "")
    while True:
        jumped = False
        for row in _scan_uploads(conn, bucket, low, after_id, upper):
            key = row[2]
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    if common > key_marker:
                        if len(uploads) + len(prefixes) == max_uploads:
                            return UploadListing(uploads, prefixes, True, *last)
                        prefixes.append(common)
                        last = (common, "")
                    end = prefix_end(common)
                    if end is None:
                        return UploadListing(uploads, prefixes, False, *last)
                    low, after_id, jumped = end, "", True
                    break
            if len(uploads) + len(prefixes) == max_uploads:
                return UploadListing(uploads, prefixes, True, *last)
            upload = _upload(row)
            uploads.append(upload)
            last = (upload.key, upload.id)
        if not jumped:
            return UploadListing(uploads, prefixes, False, *last)


def _scan_uploads(conn, bucket, low, after_id, upper):
    sql = f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE bucket = ? AND (key > ? OR (key = ? AND id > ?))"
    args = [bucket, low, low, after_id]
    if upper is not None:
        sql += " AND key < ?"
        args.append(upper)
    return conn.execute(sql + " ORDER BY key, id", args)
