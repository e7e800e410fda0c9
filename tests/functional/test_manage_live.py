"""objectstore-manage in its own process, beside a server running on the same data folder.

The server holds the folder's lock and caches looked-up keys for
``Credentials.CACHE_SECONDS``: a new key must work at its first use, a
deleted one must stop working once that time is up.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest_twisted
from botocore.exceptions import ClientError
from twisted.internet import reactor, task

from objectstore.auth.credentials import Credentials
from tests.conftest import live_server
from tests.helpers import unchanged

REPO = Path(__file__).resolve().parents[2]
# How long past the cache time a deleted key may still pass (scheduling slack).
SLACK_SECONDS = 3.0


def manage(data_dir, *argv):
    """``python -m objectstore.manage --data-dir DATA_DIR ARGV`` from the source tree (blocking)."""
    return subprocess.run(
        [sys.executable, "-m", "objectstore.manage", "--data-dir", data_dir, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def run_manage(server, *argv):
    """Run a command that must succeed; its name=value output as a dict."""
    done = await server.blocking(manage, server.data_dir, *argv)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


async def refused_within(server, s3, seconds):
    """Poll with *s3* until the server refuses its key; the seconds that took."""
    start = time.monotonic()
    while True:
        try:
            await server.blocking(s3.list_buckets)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidAccessKeyId"
            return time.monotonic() - start
        assert time.monotonic() - start < seconds, "the deleted key still works"
        await task.deferLater(reactor, 0.1, lambda: None)


@pytest_twisted.ensureDeferred
async def test_keys_created_beside_the_running_server_work_at_their_first_use(tmp_path):
    async with live_server(tmp_path) as server:
        carol = await run_manage(server, "user", "create", "carol")
        s3 = server.boto3((carol["access_key"], carol["secret_key"]))
        await server.blocking(s3.create_bucket, Bucket="carols")
        listed = await server.blocking(s3.list_buckets)
        assert [b["Name"] for b in listed["Buckets"]] == ["carols"]
        assert listed["Owner"]["ID"] == carol["id"]

        # A second pair for a user the server has already looked up (and cached).
        second = await run_manage(server, "key", "create", "carol")
        s3_second = server.boto3((second["access_key"], second["secret_key"]))
        listed = await server.blocking(s3_second.list_buckets)
        assert [b["Name"] for b in listed["Buckets"]] == ["carols"]


@pytest_twisted.ensureDeferred
async def test_a_key_deleted_beside_the_running_server_stops_working_within_seconds(tmp_path):
    async with live_server(tmp_path) as server:
        carol = await run_manage(server, "user", "create", "carol")
        second = await run_manage(server, "key", "create", "carol")
        s3 = server.boto3((carol["access_key"], carol["secret_key"]))
        await server.blocking(s3.list_buckets)  # the server now trusts the key for a while

        await run_manage(server, "key", "delete", carol["access_key"])
        await refused_within(server, s3, Credentials.CACHE_SECONDS + SLACK_SECONDS)
        # The user's other key is untouched.
        s3_second = server.boto3((second["access_key"], second["secret_key"]))
        assert (await server.blocking(s3_second.list_buckets))["Owner"]["ID"] == carol["id"]


@pytest_twisted.ensureDeferred
async def test_a_user_owning_a_bucket_is_kept_and_once_deleted_its_keys_stop_working(tmp_path):
    async with live_server(tmp_path) as server:
        dave = await run_manage(server, "user", "create", "dave")
        s3 = server.boto3((dave["access_key"], dave["secret_key"]))
        await server.blocking(s3.create_bucket, Bucket="daves")

        async with unchanged(server):
            refused = await server.blocking(manage, server.data_dir, "user", "delete", "dave")
            assert (refused.returncode, refused.stdout) == (1, "")
            assert "still owns 1 bucket(s): daves" in refused.stderr
        await server.blocking(s3.list_buckets)  # still a user

        await server.blocking(s3.delete_bucket, Bucket="daves")
        await run_manage(server, "user", "delete", "dave")
        await refused_within(server, s3, Credentials.CACHE_SECONDS + SLACK_SECONDS)
