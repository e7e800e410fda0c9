"""A full disk never wedges the store: a real server on a small tmpfs, filled through the API.

Writes are refused (XObjectstoreStorageFull, 507) once they would cross the
free-space reserve (--min-free-space), inline objects as well as blobs, and
change nothing; deletes still commit, and the room they free takes writes
again, without a restart. The tests mount their own tmpfs (they run as root);
a test that cannot mount one fails.
"""

import contextlib
import os
import subprocess
from unittest.mock import ANY

import pytest_twisted

from objectstore.storage.space import Reserve
from tests.conftest import live_server
from tests.functional.test_http_edge import exchange, request_head
from tests.helpers import refused, unchanged
from tests.imaging import UserKeys, list_images, make_bundle, register, upload_bundle, wait_settled
from tests.s3http import call, error_code

MiB = 1024**2
DISK = "32m"
RESERVE = 4 * MiB
FULL = ("XObjectstoreStorageFull", 507)


@contextlib.contextmanager
def tmpfs(path, size=DISK):
    """A tmpfs of *size* mounted at *path* for the block."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs at {path}: {mounted.stderr.decode().strip()}"
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)]).returncode != 0:
            # Still busy (a test that failed with the server's files open): detach it, and fail.
            subprocess.run(["umount", "--lazy", str(path)], check=True)
            raise AssertionError(f"{path} was still in use when unmounted")


@contextlib.asynccontextmanager
async def server_on_small_disk(tmp_path, reserve=RESERVE):
    with tmpfs(tmp_path / "disk") as disk:
        async with live_server(disk, min_free_space=Reserve(reserve), fsync=False) as server:
            yield server


def free_bytes(server):
    stat = os.statvfs(server.data_dir)
    return stat.f_bavail * stat.f_frsize


async def put(server, bucket, key, size):
    response, content = await call(server, "PUT", f"/{bucket}/{key}", body=os.urandom(size))
    return response.code, content


async def fill(server, bucket, prefix, size, most=5000):
    """PUT objects of *size* bytes until one is refused; the keys stored, and the refusal (code, status)."""
    keys = []
    for n in range(most):
        key = f"{prefix}-{n:05}"
        status, content = await put(server, bucket, key, size)
        if status != 200:
            return keys, (error_code(content), status)
        keys.append(key)
    raise AssertionError(f"{most} objects of {size} bytes fitted on a {DISK} disk")


async def filled(server, bucket):
    """Fill the disk with big (blob) objects, then small (inline) ones; the keys of both."""
    response, _ = await call(server, "PUT", f"/{bucket}")
    assert response.code in (200, 409)  # made, or made before (200 again in us-east-1, as on AWS)
    big, refusal = await fill(server, bucket, "big", MiB)
    assert refusal == FULL
    assert len(big) >= 16
    small, refusal = await fill(server, bucket, "small", 16 * 1024)
    assert refusal == FULL
    return big, small


def crowd(server):
    """Another program fills the filesystem until only half the reserve is free (the store's writes cannot)."""
    stat = os.statvfs(server.data_dir)
    with open(os.path.join(server.data_dir, "..", "someone-else"), "ab") as f:
        f.write(b"\0" * (stat.f_bavail * stat.f_frsize - RESERVE // 2))
    server.store.disk.space.resample()


@pytest_twisted.ensureDeferred
async def test_a_full_disk_refuses_writes_and_deletes_make_room_for_them_again_without_a_restart(tmp_path, bucket_name):
    async with server_on_small_disk(tmp_path) as server:
        big, small = await filled(server, bucket_name)

        # Small objects stopped too (they go into the index): the reserve is still free.
        assert free_bytes(server) >= RESERVE // 2
        s3 = server.boto3()
        await server.blocking(s3.delete_object, Bucket=bucket_name, Key=big[0])
        deleted = await server.blocking(
            s3.delete_objects,
            Bucket=bucket_name,
            Delete={"Objects": [{"Key": key} for key in big[1:4] + small]},
        )
        assert sorted(d["Key"] for d in deleted["Deleted"]) == sorted(big[1:4] + small)
        assert deleted.get("Errors", []) == []
        await server.settled()

        status, _ = await put(server, bucket_name, "again", 2 * MiB)
        assert status == 200
        got = await server.blocking(lambda: s3.get_object(Bucket=bucket_name, Key="again")["Body"].read())
        assert len(got) == 2 * MiB
        listed = await server.blocking(s3.list_objects_v2, Bucket=bucket_name)
        assert listed["KeyCount"] == len(big) - 4 + 1


@pytest_twisted.ensureDeferred
async def test_a_write_refused_for_want_of_room_changes_nothing(tmp_path, bucket_name):
    async with server_on_small_disk(tmp_path) as server:
        big, _ = await filled(server, bucket_name)
        # 64 KiB: more than the small objects' fill left; then anything, below the reserve.
        for body in (os.urandom(64 * 1024), os.urandom(MiB), b"x" * 100):
            if len(body) == 100:
                crowd(server)
            request = call(server, "PUT", f"/{bucket_name}/{big[0]}", body=body)
            _, content = await refused(server, FULL[0], request, FULL[1], settle=True)
            assert b"kept free so that deletes always have room" in content
            assert b"--min-free-space 4M" in content
        assert server.tmp_files() == []


@pytest_twisted.ensureDeferred
async def test_a_put_that_would_cross_the_reserve_is_refused_before_its_body(tmp_path, bucket_name):
    async with server_on_small_disk(tmp_path) as server:
        response, _ = await call(server, "PUT", f"/{bucket_name}")
        assert response.code == 200
        room = free_bytes(server) - RESERVE
        head = request_head(
            server, "PUT", f"/{bucket_name}/too-big", {"Content-Length": str(room + MiB), "Expect": "100-continue"}
        )

        answer = await server.blocking(exchange, server.port, head)

        assert answer.status == 507 and error_code(answer.body) == FULL[0]
        assert b"100 Continue" not in answer.data and answer.closed
        status, _ = await put(server, bucket_name, "fits", room - MiB)
        assert status == 200


@pytest_twisted.ensureDeferred
async def test_a_chunked_upload_is_stopped_as_it_crosses_the_reserve(tmp_path, bucket_name):
    async with server_on_small_disk(tmp_path) as server:
        response, _ = await call(server, "PUT", f"/{bucket_name}")
        assert response.code == 200
        await fill(server, bucket_name, "big", MiB)
        room = free_bytes(server) - RESERVE
        payload = os.urandom(room + 2 * MiB)
        chunks = b"".join(b"%x\r\n" % len(piece) + piece + b"\r\n" for piece in _pieces(payload, 64 * 1024))
        head = request_head(server, "PUT", f"/{bucket_name}/streamed", {"Transfer-Encoding": "chunked"})

        answer = await server.blocking(exchange, server.port, head, chunks + b"0\r\n\r\n")

        assert answer.status == 507 and error_code(answer.body) == FULL[0]
        response, _ = await call(server, "HEAD", f"/{bucket_name}/streamed")
        assert response.code == 404
        await server.settled()
        assert server.tmp_files() == []
        assert free_bytes(server) >= RESERVE - 64 * 1024


def _pieces(data, size):
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest_twisted.ensureDeferred
async def test_below_the_reserve_every_write_verb_is_refused_and_every_delete_verb_commits(tmp_path, bucket_name):
    async with server_on_small_disk(tmp_path) as server:
        s3 = server.boto3()
        response, _ = await call(server, "PUT", f"/{bucket_name}")
        assert response.code == 200
        upload = await server.blocking(s3.create_multipart_upload, Bucket=bucket_name, Key="multi")
        upload_id = upload["UploadId"]
        part = await server.blocking(
            s3.upload_part, Bucket=bucket_name, Key="multi", UploadId=upload_id, PartNumber=1, Body=b"p" * MiB
        )
        big, small = await filled(server, bucket_name)
        crowd(server)  # below the reserve now: even the writes of rows only are refused
        source = {"Bucket": bucket_name, "Key": big[0]}
        writes = {
            "CreateBucket": lambda: s3.create_bucket(Bucket=bucket_name + "-other"),
            "PutBucketAcl": lambda: s3.put_bucket_acl(Bucket=bucket_name, ACL="public-read"),
            "PutObject": lambda: s3.put_object(Bucket=bucket_name, Key="new", Body=b"tiny"),
            "PutObjectAcl": lambda: s3.put_object_acl(Bucket=bucket_name, Key=small[0], ACL="public-read"),
            "CopyObject": lambda: s3.copy_object(Bucket=bucket_name, Key="copy", CopySource=source),
            "CreateMultipartUpload": lambda: s3.create_multipart_upload(Bucket=bucket_name, Key="other"),
            "UploadPart": lambda: s3.upload_part(
                Bucket=bucket_name, Key="multi", UploadId=upload_id, PartNumber=2, Body=b"q" * MiB
            ),
            "UploadPartCopy": lambda: s3.upload_part_copy(
                Bucket=bucket_name, Key="multi", UploadId=upload_id, PartNumber=2, CopySource=source
            ),
            "CompleteMultipartUpload": lambda: s3.complete_multipart_upload(
                Bucket=bucket_name,
                Key="multi",
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            ),
        }
        for name, write in writes.items():
            error = await refused(server, FULL[0], write, FULL[1], settle=True)
            assert "minimum free drive threshold" in error["Error"]["Message"], name

        await server.blocking(s3.abort_multipart_upload, Bucket=bucket_name, Key="multi", UploadId=upload_id)
        await server.blocking(
            s3.delete_objects, Bucket=bucket_name, Delete={"Objects": [{"Key": key} for key in big + small]}
        )
        await server.blocking(s3.delete_bucket, Bucket=bucket_name)
        await server.settled()
        await server.blocking(s3.create_bucket, Bucket=bucket_name)


def zero_image(path, size):
    """An image of *size* zero bytes: its bundle is a few KiB, whatever the size."""
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


@pytest_twisted.ensureDeferred
async def test_an_image_that_would_cross_the_reserve_is_refused_at_registration(tmp_path):
    async with server_on_small_disk(tmp_path) as server:
        keys = server.create_user("alice")
        alice = UserKeys(keys, server.user_id("alice"), "alice")
        s3 = server.boto3(alice.keys)
        await server.blocking(s3.create_bucket, Bucket="bundles")
        locations = {}
        for name, size in (("huge", 40 * MiB), ("small", MiB)):
            image = zero_image(tmp_path / name, size)
            result = await server.blocking(make_bundle, server, alice, image, str(tmp_path / f"bundle-{name}"))
            locations[name] = await server.blocking(upload_bundle, s3, "bundles", result, f"{name}/")

        async with unchanged(server, settle=True):
            response, answer = await register(server, locations["huge"], alice.keys)
            assert (response.code, answer) == (507, FULL[0])

        response, answer = await register(server, locations["small"], alice.keys)
        assert response.code == 200, answer
        assert (await wait_settled(server, answer["imageId"], alice.keys))["imageState"] == "available"
        assert await list_images(server, alice.keys) == {answer["imageId"]: ANY}
