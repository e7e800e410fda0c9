"""Starting the installed server wrongly: one line naming the problem and the fix, and nothing created.

Each case runs the commands a person types (``objectstore``, ``twistd -n
objectstore``, and the README's daemonised ``twistd objectstore``) in a
fresh folder, and checks the exit status, that stderr is a single line
beginning ``objectstore:``, that no key pair is printed, and that neither
the data dir nor a pid file was left behind.
"""

import os
import re
import socket
import sqlite3
import subprocess

import pytest

from objectstore import __version__
from objectstore.index.schema import LATEST_VERSION
from tests.installed import clean_env, command, start_server, stop, wait_until_serving

FORMS = {
    "foreground": lambda tmp: [command("objectstore")],
    "twistd -n": lambda tmp: [command("twistd"), "-n", "--pidfile=", "objectstore"],
    "daemonised": lambda tmp: [
        command("twistd"),
        "--logfile",
        str(tmp / "twistd.log"),
        "--pidfile",
        str(tmp / "twistd.pid"),
        "objectstore",
    ],
}


def run(tmp_path, form, *options, data_dir=None):
    data_dir = data_dir or tmp_path / "data"
    argv = [*FORMS[form](tmp_path), "--data-dir", str(data_dir), *options]
    return subprocess.run(argv, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)


def one_line(result, status=1):
    """The single stderr line of a refused start, after checking it is one and nothing else was said."""
    assert result.returncode == status, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("objectstore: "), lines
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stdout.lower(), result.stdout
    return lines[0]


def assert_nothing_created(tmp_path):
    assert not (tmp_path / "data").exists(), sorted(os.listdir(tmp_path / "data"))
    assert not (tmp_path / "twistd.pid").exists()


@pytest.fixture
def taken_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("form", FORMS)
def test_a_taken_port_is_one_line_and_creates_nothing(tmp_path, form, taken_port):
    result = run(tmp_path, form, "--listen", f"tcp:{taken_port}:interface=127.0.0.1")
    line = one_line(result)
    assert f"cannot listen on 127.0.0.1:{taken_port}: the address is already in use" in line
    assert "--listen" in line  # the fix
    assert_nothing_created(tmp_path)


@pytest.mark.parametrize(
    "endpoint, says",
    [
        ("tcp:notaport", "the port 'notaport' is not a number"),
        ("tpc:3333", "--listen 'tpc:3333' is not an endpoint"),
        ("tcp:3333:interfce=127.0.0.1", "unknown parameter 'interfce'"),
        ("tcp:3333:interface=no.such.host.invalid", "no such interface address"),
        ("tcp:70000", "port 70000 is out of range"),
        ("ssl:3443:privateKey=missing.pem:certKey=missing.pem", "missing.pem: No such file or directory"),
    ],
)
def test_a_malformed_listen_endpoint_is_one_line_and_creates_nothing(tmp_path, endpoint, says):
    line = one_line(run(tmp_path, "daemonised", "--listen", endpoint))
    assert says in line
    assert_nothing_created(tmp_path)


def test_a_data_dir_in_use_is_one_line_naming_the_server_using_it(tmp_path):
    first, log_path = start_server(tmp_path, clean_env())
    try:
        wait_until_serving(log_path, first)
        before = sorted(os.listdir(tmp_path / "data"))
        for form in FORMS:
            line = one_line(run(tmp_path, form, "--listen", "tcp:0:interface=127.0.0.1"))
            assert f"the data dir {tmp_path / 'data'} is in use by another objectstore (pid {first.pid})" in line
            assert "another --data-dir" in line
            assert sorted(os.listdir(tmp_path / "data")) == before
        assert not (tmp_path / "twistd.pid").exists()
        assert first.poll() is None  # the first server is undisturbed
    finally:
        stop(first)


def test_an_index_that_is_not_a_database_is_one_line_and_left_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "meta.sqlite").write_bytes(b"this is not an SQLite file, it was overwritten\n")
    line = one_line(run(tmp_path, "daemonised", "--listen", "tcp:0:interface=127.0.0.1"))
    assert f"the index {data / 'meta.sqlite'} is not an SQLite database" in line
    assert sorted(os.listdir(data)) == ["meta.sqlite"]
    assert (data / "meta.sqlite").read_bytes().startswith(b"this is not")


def test_a_data_dir_from_a_newer_release_is_one_line_and_left_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    index = sqlite3.connect(data / "meta.sqlite")
    index.execute("CREATE TABLE from_the_future (x)")
    index.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    index.commit()
    index.close()
    before = (data / "meta.sqlite").read_bytes()
    for form in FORMS:
        line = one_line(run(tmp_path, form, "--listen", "tcp:0:interface=127.0.0.1"))
        assert f"was written by a newer objectstore (schema version {LATEST_VERSION + 1}" in line
    manage = subprocess.run(
        [command("objectstore-manage"), "--data-dir", str(data), "user", "list"],
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert manage.returncode != 0 and "was written by a newer objectstore" in manage.stderr
    assert sorted(os.listdir(data)) == ["meta.sqlite"]
    assert (data / "meta.sqlite").read_bytes() == before


@pytest.mark.parametrize(
    "text, says",
    [
        ("[objectstor]\nregion = eu-west-1\n", "[objectstor]"),
        ("[objectstore]\nfsync = maybe\n", "fsync = maybe"),
        ("[objectstore]\nregoin = eu-west-1\n", "regoin"),
        ("region = eu-west-1\n", "begin the file with [objectstore]"),
        ("[objectstore]\nregion eu-west-1\n", "line 2: not a 'name = value' setting"),
        ("[objectstore]\nregion = a\nregion = b\n", "option 'region' in section 'objectstore' already exists"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_setting_without_the_help(tmp_path, text, says):
    config = tmp_path / "objectstore.conf"
    config.write_text(text)
    for form in FORMS:
        line = one_line(run(tmp_path, form, "--config", str(config)))
        assert str(config) in line and says in line, line
        assert_nothing_created(tmp_path)


def test_a_bad_command_line_is_one_line_with_exit_status_2(tmp_path):
    line = one_line(run(tmp_path, "foreground", "--no-such-option"), status=2)
    assert "no-such-option" in line and "objectstore --help" in line
    line = one_line(run(tmp_path, "daemonised", "--multipart-expiry", "soon"), status=1)
    assert "--multipart-expiry soon" in line
    assert_nothing_created(tmp_path)


def test_help_and_version_describe_objectstore(tmp_path):
    help_text = subprocess.run(
        [command("objectstore"), "--help"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True
    )
    assert help_text.returncode == 0
    assert help_text.stdout.startswith("Usage: objectstore [options]")
    for option in ("--listen", "--data-dir", "--config", "--region", "--strict-region", "--version"):
        assert option in help_text.stdout
    version = subprocess.run(
        [command("objectstore"), "--version"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True
    )
    assert version.returncode == 0
    assert re.fullmatch(rf"objectstore {re.escape(__version__)} \(Twisted \S+, Python \S+\)\n", version.stdout)
    assert_nothing_created(tmp_path)


def test_the_serving_line_names_url_data_dir_backend_and_credentials(tmp_path):
    process, log_path = start_server(tmp_path, clean_env())
    try:
        port = wait_until_serving(log_path, process)
        text = log_path.read_text()
        data = tmp_path / "data"
        assert (
            f"objectstore {__version__} serving S3 on http://127.0.0.1:{port}/ (data dir {data}, "
            f"embedded backend: blob files + SQLite index; admin keys: {data / 'admin.credentials'})"
        ) in text
        assert "Starting factory" not in text
    finally:
        stop(process)
