"""The installed ``twistd objectstore``, run as a user runs it."""

import re
import subprocess
import sys
import time

import pytest

from tests.installed import clean_env, command, start_server, stop, wait_until_serving

ADMIN = ("AKIDDAEMONTEST000001", "daemon-secret-0000000000000000000000001")


@pytest.fixture
def daemon(tmp_path):
    process, log_path = start_server(
        tmp_path, clean_env(OBJECTSTORE_ACCESS_KEY=ADMIN[0], OBJECTSTORE_SECRET_KEY=ADMIN[1])
    )
    try:
        yield wait_until_serving(log_path, process), log_path, tmp_path
    finally:
        stop(process)


def test_plugin_is_found_from_the_installed_package(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import objectstore, twisted.plugins.objectstore_plugin as p; "
            "print(objectstore.__file__); print(p.objectstore.tapname)",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "site-packages" in out[0] or "dist-packages" in out[0], out
    assert out[1] == "objectstore"
    help_text = subprocess.run(
        [command("twistd"), "--help"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True
    ).stdout
    assert "objectstore" in help_text


def test_twistd_objectstore_serves_put_and_get(daemon):
    import boto3

    port, _, _ = daemon
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=ADMIN[0],
        aws_secret_access_key=ADMIN[1],
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="daemon-bucket")
    s3.put_object(Bucket="daemon-bucket", Key="k", Body=b"from the daemon")
    assert s3.get_object(Bucket="daemon-bucket", Key="k")["Body"].read() == b"from the daemon"


def test_first_start_without_keys_generates_and_stores_admin_credentials(tmp_path):
    data = tmp_path / "data"
    process, log_path = start_server(tmp_path, clean_env())
    try:
        wait_until_serving(log_path, process)
        saved = data / "admin.credentials"
        assert oct(saved.stat().st_mode & 0o777) == "0o600"
        access_key = re.search(r"aws_access_key_id = (\S+)", saved.read_text()).group(1)
        # The log file is written by another process: give it a moment to flush.
        deadline = time.monotonic() + 10
        while access_key not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert access_key in log_path.read_text()
        assert oct((data / "meta.sqlite").stat().st_mode & 0o777) == "0o600"
    finally:
        stop(process)
