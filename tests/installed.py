"""The installed commands (twistd, objectstore…), run as a user runs them: outside the source tree."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest


def command(name: str) -> str:
    """The path of an installed console script, next to this Python's if not on PATH."""
    path = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        pytest.fail(f"{name} is not installed: run the README's install command")
    return path


def clean_env(**extra: str) -> dict:
    """The environment minus anything that would let the repo shadow the installed package."""
    # Nor the admin keys of the shell running the tests.
    hidden = ("PYTHONPATH", "OBJECTSTORE_ACCESS_KEY", "OBJECTSTORE_SECRET_KEY")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    env.update(extra)
    return env


def wait_until_serving(log_path, process, timeout: float = 20) -> int:
    """The port a server started with tcp:0 serves on, read from the line it logs once it serves."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        if os.path.exists(log_path):
            with open(log_path, encoding="utf-8", errors="replace") as f:
                # The line a person would paste: logged once the store is open and the port listens.
                match = re.search(r"serving S3 on http://127\.0\.0\.1:(\d+)/", f.read())
            if match:
                return int(match.group(1))
        time.sleep(0.05)
    text = open(log_path, encoding="utf-8", errors="replace").read() if os.path.exists(log_path) else "(no log)"
    pytest.fail("twistd objectstore did not start:\n" + text)


def start_server(tmp_path, env, *options: str):
    """`twistd -n objectstore` on a free port, started outside the source tree: (process, log path)."""
    log_path = tmp_path / "twistd.log"
    argv = [command("twistd"), "-n", "--pidfile=", "objectstore", "--listen", "tcp:0:interface=127.0.0.1"]
    argv += ["--data-dir", str(tmp_path / "data"), *options]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
    return process, log_path


def stop(process) -> None:
    process.terminate()
    process.wait(timeout=20)
