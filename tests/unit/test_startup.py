"""What fails once twistd has started the service: a CannotServe, logged in full and printed as one line."""

import socket

import pytest
from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.logger import LogLevel, globalLogPublisher

from objectstore.config import Config
from objectstore.listeners import Listener, parse_endpoint
from objectstore.service import build
from objectstore.startup import CannotServe, check_data_dir, report_cannot_serve


@pytest.fixture
def taken_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def test_a_listener_on_a_taken_port_raises_cannot_serve_with_the_fix(taken_port):
    description = f"tcp:{taken_port}:interface=127.0.0.1"
    listener = Listener(description, parse_endpoint(description, reactor), Factory())
    with pytest.raises(CannotServe) as caught:
        listener.privilegedStartService()
    assert str(caught.value).startswith(f"cannot listen on 127.0.0.1:{taken_port}: the address is already in use")
    assert "--listen" in str(caught.value)
    assert listener.port is None


def test_a_listener_names_its_url_once_it_listens():
    listener = Listener("tcp:0:interface=127.0.0.1", parse_endpoint("tcp:0:interface=127.0.0.1", reactor), Factory())
    listener.startService()
    try:
        assert listener.url == f"http://127.0.0.1:{listener.port.getHost().port}"
    finally:
        listener.stopService()


def test_the_server_logs_cannot_serve_in_full_and_creates_nothing(tmp_path, taken_port):
    data_dir = tmp_path / "data"
    config = Config(listen=(f"tcp:{taken_port}:interface=127.0.0.1",), data_dir=str(data_dir), fsync=False)
    server, _, _ = build(config, reactor)
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        with pytest.raises(CannotServe):
            server.privilegedStartService()
    finally:
        globalLogPublisher.removeObserver(events.append)
    critical = [e for e in events if e.get("log_level") == LogLevel.critical]
    assert [e["problem"] for e in critical] == [
        f"cannot listen on 127.0.0.1:{taken_port}: the address is already in use; stop the server using it "
        "(`ss -ltnp` shows which) or choose another port with --listen"
    ]
    assert not data_dir.exists()


def test_cannot_serve_is_printed_as_one_line_and_other_errors_go_to_the_previous_hook(capsys):
    seen = []
    hook = report_cannot_serve(lambda *exc_info: seen.append(exc_info[1]))
    hook(CannotServe, CannotServe("cannot open the index in /srv/x: disk I/O error"), None)
    assert capsys.readouterr().err == "objectstore: cannot open the index in /srv/x: disk I/O error\n"
    other = ValueError("a bug")
    hook(ValueError, other, None)
    assert seen == [other]


def test_a_data_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "data").write_text("")
    with pytest.raises(SystemExit) as caught:
        check_data_dir(str(tmp_path / "data"))
    assert (
        str(caught.value.code)
        == f"objectstore: the data dir {tmp_path / 'data'} is not a folder; choose a folder with --data-dir"
    )
