"""objectstore-manage fsck in its own process beside a running server: no false damage under writes, no repair."""

import os

import pytest_twisted
from twisted.internet.defer import ensureDeferred

from tests.conftest import live_server
from tests.functional.test_manage_live import manage
from tests.helpers import make_bucket, unchanged
from tests.s3http import call

KiB = 1024


async def write_load(server, rounds):
    """Overwrites, deletes and multipart uploads of blob-sized objects, one after another, until *rounds* are done."""
    s3 = server.boto3()
    for n in range(rounds):
        response, _ = await call(server, "PUT", f"/load/key-{n % 5}", body=os.urandom(100 * KiB))
        assert response.code == 200
        if n % 3 == 0:
            await call(server, "DELETE", f"/load/key-{(n + 1) % 5}")
        if n % 4 == 0:
            upload = await server.blocking(s3.create_multipart_upload, Bucket="load", Key=f"mp-{n}")
            await server.blocking(
                s3.upload_part, Bucket="load", Key=f"mp-{n}", UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 99
            )


@pytest_twisted.ensureDeferred
async def test_fsck_beside_a_server_under_write_load_reports_no_damage(tmp_path):
    async with live_server(tmp_path) as server:
        await make_bucket(server, "load")
        # The load runs in the reactor while each fsck runs in its own process.
        running = ensureDeferred(write_load(server, 300))
        checks = 0
        while not running.called or checks < 2:
            done = await server.blocking(manage, server.data_dir, "fsck")
            assert (done.returncode, done.stdout.splitlines()[:-1]) == (0, []), done.stdout + done.stderr
            assert done.stdout.splitlines()[-1].startswith("summary ")
            checks += 1
        await running


@pytest_twisted.ensureDeferred
async def test_repair_is_refused_beside_a_running_server_and_changes_nothing(tmp_path):
    async with live_server(tmp_path) as server:
        await make_bucket(server, "bucket")
        response, _ = await call(server, "PUT", "/bucket/k", body=os.urandom(100 * KiB))
        assert response.code == 200
        await server.settled()
        async with unchanged(server, settle=True):
            refused = await server.blocking(manage, server.data_dir, "fsck", "--repair")
        assert (refused.returncode, refused.stdout) == (1, "")
        assert refused.stderr == (
            f"objectstore-manage: {server.data_dir} is already served by another objectstore (pid {os.getpid()}): "
            "stop it before fsck --repair (fsck without --repair may run beside it)\n"
        )
