"""Bit rot in stored bytes is found, never served: one byte flipped on disk (or in the index) at a time.

For each place bytes live (inline in the index, a blob, a multipart
segment, an image file) one object is damaged and found by a reader, whose
whole GET is cut before its last byte (so boto3 never takes it for
complete), and another is damaged and found by ``objectstore-manage scrub``.
Either way the object is refused from then on (500
XObjectstoreObjectDamaged, to callers allowed to read it; others still get
403), the rest of the bucket is served as before, a DELETE or an overwrite
clears it, and scrub and fsck on the healthy store report nothing.
"""

import os
import sqlite3

import botocore.exceptions
import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.web.client import ResponseFailed
from twisted.web.http import PotentialDataLoss

from tests.conftest import live_server
from tests.functional.test_images import bundle_in_bucket, new_user
from tests.functional.test_manage_live import manage
from tests.helpers import eventually, make_bucket
from tests.imaging import register, wait_settled
from tests.s3http import call, error_code

KiB = 1024
MiB = 1024 * KiB
DAMAGED = "XObjectstoreObjectDamaged"

# The size of each kind's object, and where in it the byte is flipped.
KINDS = {
    "inline": (10 * KiB, 1234),
    "blob": (300 * KiB, 200 * KiB),
    "multipart": (6 * MiB, 5 * MiB + 77),  # in part 2 of 5 MiB + 1 MiB
}


def index_connection(server):
    conn = sqlite3.connect(os.path.join(server.data_dir, "meta.sqlite"), isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def flip_byte(server, bucket, key, offset):
    """Change the stored byte at *offset* of ``bucket/key`` behind the server's back, as bit rot does."""
    conn = index_connection(server)
    try:
        (object_id,) = conn.execute("SELECT id FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
        inline = conn.execute("SELECT data FROM inline_data WHERE object = ?", (object_id,)).fetchone()
        if inline is not None:
            data = bytearray(inline[0])
            data[offset] ^= 0x01
            conn.execute("UPDATE inline_data SET data = ? WHERE object = ?", (bytes(data), object_id))
            return
        start = 0
        for blob, blob_offset, length in conn.execute(
            "SELECT blob, offset, length FROM segments WHERE object = ? ORDER BY seq", (object_id,)
        ).fetchall():
            if start <= offset < start + length:
                flip_file_byte(server.store.files.path(blob), blob_offset + offset - start)
                return
            start += length
        raise AssertionError(f"{bucket}/{key} has no byte {offset}")
    finally:
        conn.close()


def flip_file_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def put(s3, bucket, key, body, multipart):
    if not multipart:
        return s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), 5 * MiB), 1):
        chunk = body[start : start + 5 * MiB]
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    return done["ETag"]


def read_whole(s3, bucket, key):
    """boto3's whole read: the bytes, or the exception that stopped it."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (
        botocore.exceptions.ClientError,
        botocore.exceptions.IncompleteReadError,
        botocore.exceptions.ResponseStreamingError,
    ) as e:
        return e


def scrub(data_dir):
    done = manage(data_dir, "scrub")
    lines = done.stdout.splitlines()
    assert lines and lines[-1].startswith("summary "), done.stdout + done.stderr
    return done.returncode, lines[:-1], lines[-1]


def fsck(data_dir):
    done = manage(data_dir, "fsck")
    return done.returncode, done.stdout.splitlines()[:-1]


async def object_refused(server, path, keys=None):
    """The codes of GET and HEAD of *path* now."""
    options = {} if keys is None else {"keys": keys}
    got, content = await call(server, "GET", path, **options)
    head, _ = await call(server, "HEAD", path, **options)
    return got.code, error_code(content) if content else None, head.code


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest_twisted.ensureDeferred
async def test_a_flipped_byte_is_found_by_a_read_or_by_scrub_and_never_served(tmp_path, kind):
    size, offset = KINDS[kind]
    async with live_server(tmp_path, scrub_rate=0) as server:
        await make_bucket(server, "rot")
        s3 = server.boto3()
        bodies = {key: os.urandom(size) for key in ("read-victim", "scrub-victim", "bystander")}
        for key, body in bodies.items():
            await server.blocking(put, s3, "rot", key, body, kind == "multipart")
        mallory = server.create_user("mallory")
        await server.settled()  # committed blobs moved home from tmp/, where flip_byte finds them

        # A healthy store: nothing to report.
        code, findings, summary = await server.blocking(scrub, server.data_dir)
        assert (code, findings) == (0, []), summary
        assert "objects=3 " in summary and f"bytes={3 * size} " in summary and "damaged=0 " in summary
        assert await server.blocking(fsck, server.data_dir) == (0, [])

        flip_byte(server, "rot", "read-victim", offset)
        flip_byte(server, "rot", "scrub-victim", offset)

        # A reader finds it, and never gets the rotten bytes as whole: a small object is
        # checked before its first byte goes, and answered 500; a streamed one is cut short.
        cut = await server.blocking(read_whole, s3, "rot", "read-victim")
        assert isinstance(cut, Exception), "a damaged object was served whole"
        if kind == "inline":
            assert isinstance(cut, botocore.exceptions.ClientError) and cut.response["Error"]["Code"] == DAMAGED
        else:
            assert not isinstance(cut, botocore.exceptions.ClientError), cut
        # The very next GET is refused, even before the mark is in the index.
        got, content = await call(server, "GET", "/rot/read-victim")
        assert (got.code, error_code(content)) == (500, DAMAGED)
        # Marked as the read failed: refused from then on, to whoever may read it.
        await eventually(
            lambda: (
                server.store.index.reader()
                .execute("SELECT damage FROM objects WHERE key = 'read-victim'")
                .fetchone()[0]
                is not None
            )
        )
        assert await object_refused(server, "/rot/read-victim") == (500, DAMAGED, 500)
        assert await object_refused(server, "/rot/read-victim", keys=mallory) == (403, "AccessDenied", 403)

        # scrub finds the other (and reports the first as already quarantined); exit status 3.
        code, findings, summary = await server.blocking(scrub, server.data_dir)
        what = "its bytes" if kind != "multipart" else "part 2"
        assert code == 3, findings
        assert sorted(line.split(" what=")[0] for line in findings) == [
            "damaged-object rot/scrub-victim",
            "quarantined-object rot/read-victim",
        ]
        assert all(f'what="{what}' in line for line in findings), findings
        assert "damaged=1 quarantined=1 " in summary, summary
        assert await object_refused(server, "/rot/scrub-victim") == (500, DAMAGED, 500)
        # A whole copy of a damaged object is refused too, and makes nothing.
        response, content = await call(server, "PUT", "/rot/copy", headers={"x-amz-copy-source": "/rot/scrub-victim"})
        assert (response.code, error_code(content)) == (500, DAMAGED)
        assert (await call(server, "HEAD", "/rot/copy"))[0].code == 404

        # The rest of the bucket is served as before.
        assert await server.blocking(read_whole, s3, "rot", "bystander") == bodies["bystander"]

        # A DELETE, or an overwrite, clears it.
        assert (await call(server, "DELETE", "/rot/read-victim"))[0].code == 204
        fresh = os.urandom(size)
        await server.blocking(put, s3, "rot", "scrub-victim", fresh, kind == "multipart")
        assert await server.blocking(read_whole, s3, "rot", "scrub-victim") == fresh
        await server.settled()
        code, findings, summary = await server.blocking(scrub, server.data_dir)
        assert (code, findings) == (0, []), summary
        assert await server.blocking(fsck, server.data_dir) == (0, [])


@pytest_twisted.ensureDeferred
async def test_a_ranged_read_has_the_background_scrub_read_the_object_whole(tmp_path):
    async with live_server(tmp_path, scrub_rate=100 * MiB) as server:
        await make_bucket(server, "rot")
        s3 = server.boto3()
        body = os.urandom(300 * KiB)
        await server.blocking(put, s3, "rot", "ranged", body, False)
        await server.settled()
        flip_byte(server, "rot", "ranged", 250 * KiB)
        # A range that misses the flipped byte is served (its bytes are as written) ...
        got = await server.blocking(s3.get_object, Bucket="rot", Key="ranged", Range="bytes=0-1023")
        assert got["Body"].read() == body[:1024]
        # ... and the object is read whole in the background, found damaged, and refused.
        await eventually(
            lambda: (
                server.store.index.reader().execute("SELECT damage FROM objects WHERE key = 'ranged'").fetchone()[0]
                is not None
            ),
            timeout=20,
        )
        assert await object_refused(server, "/rot/ranged") == (500, DAMAGED, 500)


@pytest_twisted.ensureDeferred
async def test_a_flipped_byte_in_an_image_file_cuts_its_download_and_scrub_reports_it(tmp_path):
    async with live_server(tmp_path, scrub_rate=0) as server:
        alice = await new_user(server, "alice")
        bob = await new_user(server, "bob")
        location, _, image_path = await bundle_in_bucket(server, alice, tmp_path, 2 * MiB)
        response, answer = await register(server, location, alice.keys)
        assert response.code == 200, answer
        image_id = answer["imageId"]
        assert (await wait_settled(server, image_id, alice.keys))["imageState"] == "available"

        code, findings, summary = await server.blocking(scrub, server.data_dir)
        assert (code, findings) == (0, []) and "images=1 " in summary, summary
        assert await server.blocking(fsck, server.data_dir) == (0, [])

        flip_file_byte(os.path.join(server.data_dir, "images", image_id, "image"), MiB + 5)
        # The download stops before its end: treq sees the connection lost, not a whole body.
        # (treq: the body's Content-Length was never reached.)
        with pytest.raises(ResponseFailed) as cut:
            await call(server, "GET", f"/_images/{image_id}", keys=alice.keys)
        assert cut.value.reasons[0].check(PotentialDataLoss, ConnectionLost, ConnectionDone), cut.value.reasons
        await eventually(lambda: server.site.resource.registrar.get(image_id).damage is not None)
        response, content = await call(server, "GET", f"/_images/{image_id}", keys=alice.keys)
        assert (response.code, error_code(content)) == (500, DAMAGED)
        # Its visibility is checked first: a private image stays hidden from others.
        response, content = await call(server, "GET", f"/_images/{image_id}", keys=bob.keys)
        assert response.code == 403, content

        code, findings, summary = await server.blocking(scrub, server.data_dir)
        assert code == 3
        assert [line.split(" what=")[0] for line in findings] == [f"quarantined-image {image_id}"]


@pytest_twisted.ensureDeferred
async def test_scrub_finds_a_flipped_byte_in_an_image_file_before_any_download(tmp_path):
    async with live_server(tmp_path, scrub_rate=0) as server:
        alice = await new_user(server, "alice")
        location, _, _ = await bundle_in_bucket(server, alice, tmp_path, 1 * MiB)
        _, answer = await register(server, location, alice.keys)
        image_id = answer["imageId"]
        assert (await wait_settled(server, image_id, alice.keys))["imageState"] == "available"
        flip_file_byte(os.path.join(server.data_dir, "images", image_id, "image"), 0)

        code, findings, _ = await server.blocking(scrub, server.data_dir)
        assert (code, findings) == (3, [f'damaged-image {image_id} what="its file fails the checksum recorded"'])
        response, content = await call(server, "GET", f"/_images/{image_id}", keys=alice.keys)
        assert (response.code, error_code(content)) == (500, DAMAGED)
        # Deregistering it takes it (and its file) away; the store is healthy again.
        response, _ = await call(server, "DELETE", f"/_images/?image_id={image_id}", keys=alice.keys)
        assert response.code in (200, 204)
        await task.deferLater(reactor, 0.2, lambda: None)
        code, findings, _ = await server.blocking(scrub, server.data_dir)
        assert (code, findings) == (0, [])
