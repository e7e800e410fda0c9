"""objectstore-manage backup beside a server under writes, restored and served: nothing acknowledged before is lost.

A boto3 writer in a thread of its own PUTs new keys, overwrites and deletes
them and makes multipart uploads, one after another, for the whole test,
and records when each operation began and was answered. The backup runs in
its own process meanwhile. Whatever the backup's moment was, it lies after
the backup began; so every key's value as of then (the last answered
operation before it) is in the restored copy unless a later operation on
the key (one begun before the backup ended) replaced it. And every object
of the copy reads back whole, with the ETag its writer was answered with.
"""

import hashlib
import json
import os
import random
import re
import shutil
import tarfile
import threading
import time
from dataclasses import dataclass, field

import pytest_twisted
from twisted.internet import reactor, task

from objectstore.backup import MARKER
from tests.conftest import live_server
from tests.functional.test_manage_live import manage
from tests.functional.test_upgrade import FIXTURES
from tests.helpers import make_bucket
from tests.upgrade import Served, snapshot

KiB = 1024
MiB = 1024 * KiB
BUCKET = "load"
ABSENT = None
# How long the writer runs before the backup begins, and how many of its operations are answered by then.
WARM_UP_SECONDS = 1.5
WARM_UP_OPS = 40


@dataclass
class Op:
    key: str
    value: object  # (sha256, etag) of what it wrote, or ABSENT for a delete
    began: float
    answered: float


@dataclass
class Writer:
    """One thread of blocking boto3 calls; its operations in the order they were answered."""

    s3: object
    ops: list = field(default_factory=list)
    error: list = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    rng: random.Random = field(default_factory=lambda: random.Random(15))

    def run(self):
        try:
            n = 0
            while not self.stop.is_set():
                self.step(n)
                n += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error.append(e)

    def live_keys(self):
        state = {}
        for op in self.ops:
            state[op.key] = op.value
        return [key for key, value in state.items() if value is not ABSENT]

    def step(self, n):
        keys = self.live_keys()
        roll = self.rng.random()
        began = time.monotonic()
        if keys and roll < 0.2:
            key = self.rng.choice(keys)
            value = self.put(key)
        elif keys and roll < 0.35:
            key = self.rng.choice(keys)
            self.s3.delete_object(Bucket=BUCKET, Key=key)
            value = ABSENT
        elif roll < 0.45:
            key = f"mp-{n}"
            value = self.multipart(key)
        else:
            key = f"key-{n}"
            value = self.put(key)
        self.ops.append(Op(key, value, began, time.monotonic()))

    def put(self, key):
        # Inline (in the index) or in a blob of its own.
        body = os.urandom(self.rng.choice([1 * KiB, 100 * KiB, 300 * KiB]))
        etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]
        assert etag == f'"{hashlib.md5(body).hexdigest()}"'
        return hashlib.sha256(body).hexdigest(), etag

    def multipart(self, key):
        parts = [os.urandom(5 * MiB), os.urandom(50 * KiB)] if self.rng.random() < 0.2 else [os.urandom(80 * KiB)]
        upload = self.s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        done = []
        for number, body in enumerate(parts, 1):
            etag = self.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=body)["ETag"]
            done.append({"PartNumber": number, "ETag": etag})
        answer = self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )
        return hashlib.sha256(b"".join(parts)).hexdigest(), answer["ETag"]


def allowed_values(ops, began, ended):
    """key -> (its value when the backup began, the values a backup may hold instead)."""
    at_start = {}
    later = {}
    for op in ops:
        if op.answered < began:
            at_start[op.key] = op.value
        elif op.began <= ended:
            later.setdefault(op.key, set()).add(op.value)
    return at_start, later


async def sleep(seconds):
    await task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_backup_under_write_load_restores_every_object_answered_before_it_began(tmp_path):
    dest = str(tmp_path / "backup")
    async with live_server(tmp_path / "source") as server:
        await make_bucket(server, BUCKET)
        s3 = server.boto3()
        # An upload left in progress before the backup: its part must come back with it.
        pending = await server.blocking(s3.create_multipart_upload, Bucket=BUCKET, Key="pending")
        part = await server.blocking(
            s3.upload_part, Bucket=BUCKET, Key="pending", UploadId=pending["UploadId"], PartNumber=1, Body=b"p" * 999
        )
        writer = Writer(server.boto3())
        thread = threading.Thread(target=writer.run, name="backup-test-writer")
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while (time.monotonic() - writer.ops[0].began if writer.ops else 0) < WARM_UP_SECONDS or len(
                writer.ops
            ) < WARM_UP_OPS:
                assert not writer.error and time.monotonic() < deadline, writer.error
                await sleep(0.05)
            began = time.monotonic()
            done = await server.blocking(manage, server.data_dir, "backup", dest)
            ended = time.monotonic()
            answered_during = sum(1 for op in writer.ops if began < op.answered < ended)
        finally:
            writer.stop.set()
            await server.blocking(thread.join)
        assert not writer.error, writer.error
        assert done.returncode == 0, done.stdout + done.stderr
    # Writes went on while the backup ran (it held none of them up for long).
    assert answered_during > 0
    assert re.fullmatch(r"backup objects=\d+ blobs=\d+ images=0 bytes=\d+ dest=\S+\n", done.stdout), done.stdout
    assert re.search(r"^backup: \d+/\d+ files, \d+ MiB$", done.stderr, re.M), done.stderr
    marker = json.loads(open(os.path.join(dest, MARKER)).read())

    restored = tmp_path / "restored"
    back = manage(str(restored / "data"), "restore", dest)
    assert back.returncode == 0, back.stderr
    at_start, later = allowed_values(writer.ops, began, ended)
    async with live_server(restored) as again:
        s3 = again.boto3()
        listed = await server.blocking(list_keys, s3)
        assert len(listed) == marker["objects"]
        checked_exactly = 0
        for key, value in at_start.items():
            options = {value} | later.get(key, set())
            if value is not ABSENT and ABSENT not in options:
                assert key in listed, f"{key}, answered before the backup began, is not in it"
            if key not in later:
                checked_exactly += 1
                assert (key in listed) == (value is not ABSENT), key
        # Every object in the copy reads back whole, as one of its writers wrote it.
        for key in listed:
            found = await server.blocking(read_whole, s3, key)
            options = ({at_start[key]} if key in at_start else set()) | later.get(key, set())
            assert found in options, f"{key} holds bytes no write answered with"
        assert checked_exactly >= WARM_UP_OPS // 2
        # The upload in progress completes with its part from the backup (the writer's, if one was
        # in flight at the backup's moment, are there too).
        uploads = await server.blocking(s3.list_multipart_uploads, Bucket=BUCKET)
        assert pending["UploadId"] in [u["UploadId"] for u in uploads.get("Uploads", [])]
        await server.blocking(
            s3.complete_multipart_upload,
            Bucket=BUCKET,
            Key="pending",
            UploadId=pending["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        body = await server.blocking(lambda: s3.get_object(Bucket=BUCKET, Key="pending")["Body"].read())
        assert body == b"p" * 999


def list_keys(s3):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys += [entry["Key"] for entry in page.get("Contents", [])]
    return set(keys)


def read_whole(s3, key):
    answer = s3.get_object(Bucket=BUCKET, Key=key)
    body = answer["Body"].read()
    assert len(body) == answer["ContentLength"]
    if "-" not in answer["ETag"]:
        assert answer["ETag"] == f'"{hashlib.md5(body).hexdigest()}"', key
    return hashlib.sha256(body).hexdigest(), answer["ETag"]


def test_a_backup_of_an_earlier_releases_data_dir_restores_and_is_served_as_it_was(tmp_path):
    """The index stays at the old schema version through backup and restore; the server upgrades it at start."""
    name = "0.1.0-unversioned"
    with tarfile.open(FIXTURES / f"{name}.tar.gz") as tar:
        tar.extractall(tmp_path / "old", filter="data")
    recorded = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    done = manage(str(tmp_path / "old" / "data"), "backup", str(tmp_path / "backup"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "backup" / MARKER).read_text())["schema_version"] == 0
    shutil.rmtree(tmp_path / "old")  # nothing of the original is left to lean on
    back = manage(str(tmp_path / "restored"), "restore", str(tmp_path / "backup"))
    assert back.returncode == 0, back.stderr
    served = Served(tmp_path / "restored", tmp_path / "served.log")
    try:
        assert snapshot(served, recorded["keys"]) == recorded["snapshot"]
    finally:
        served.stop()
