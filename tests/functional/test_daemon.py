"""The installed ``twistd objectstore``, run as a user runs it."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

ADMIN = ("AKIDDAEMONTEST000001", "daemon-secret-0000000000000000000000001")


def _twistd():
    twistd = shutil.which("twistd") or os.path.join(os.path.dirname(sys.executable), "twistd")
    if not os.path.exists(twistd):
        pytest.fail("twistd is not installed: run the README's install command")
    return twistd


def _clean_env(**extra):
    """The environment minus anything that would let the repo shadow the installed package."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


def _wait_for_port(log_path, process, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with open(log_path, encoding="utf-8", errors="replace") as f:
            # The line a person would paste: logged once the store is open and the port listens.
            match = re.search(r"serving S3 on http://127\.0\.0\.1:(\d+)/", f.read())
        if match:
            return int(match.group(1))
        time.sleep(0.05)
    with open(log_path, encoding="utf-8", errors="replace") as f:
        pytest.fail("twistd objectstore did not start:\n" + f.read())


def _start(tmp_path, env):
    """`twistd -n objectstore` on a free port, started outside the source tree: (process, log path)."""
    log_path = tmp_path / "twistd.log"
    command = [_twistd(), "-n", "--pidfile=", "objectstore", "--listen", "tcp:0:interface=127.0.0.1"]
    command += ["--data-dir", str(tmp_path / "data")]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
    return process, log_path


def _stop(process):
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def daemon(tmp_path):
    process, log_path = _start(tmp_path, _clean_env(OBJECTSTORE_ACCESS_KEY=ADMIN[0], OBJECTSTORE_SECRET_KEY=ADMIN[1]))
    try:
        yield _wait_for_port(log_path, process), log_path, tmp_path
    finally:
        _stop(process)


def test_plugin_is_found_from_the_installed_package(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import objectstore, twisted.plugins.objectstore_plugin as p; "
            "print(objectstore.__file__); print(p.objectstore.tapname)",
        ],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "site-packages" in out[0] or "dist-packages" in out[0], out
    assert out[1] == "objectstore"
    help_text = subprocess.run(
        [_twistd(), "--help"], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True
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
    process, log_path = _start(tmp_path, _clean_env())
    try:
        _wait_for_port(log_path, process)
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
        _stop(process)
