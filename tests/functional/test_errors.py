"""Errors: one S3 XML document, the right status, a request id, and nothing leaked.

Faults are injected into the live server (a store method or the credentials
lookup raising, the blob writer running out of space) to check that the
unexpected becomes InternalError and a full disk becomes StorageFull.
"""

import errno
import os
import socket
import types

import pytest
import pytest_twisted
import treq
from lxml import etree
from twisted.internet import defer, threads
from twisted.logger import formatEvent, globalLogPublisher

from objectstore.errors import NoSuchKey
from objectstore.storage import blobs
from objectstore.web.request import S3Request
from tests.helpers import client_error_response, eventually, refused, unchanged
from tests.s3http import call, header, signed_headers

MiB = 1024**2


def error_fields(content):
    root = etree.fromstring(content)
    assert root.tag == "Error"
    return {child.tag: child.text for child in root}


def assert_no_leak(content, server):
    """An error body says nothing of the server's insides."""
    for secret in (b"Traceback", b'File "', b"RuntimeError", b"object at 0x", server.data_dir.encode()):
        assert secret not in content


@pytest.fixture
def log_events():
    """Every event logged while the test runs."""
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


# -- the document ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_error_document_has_code_message_resource_and_request_id(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")

    response, content = await call(server, "GET", f"/{bucket_name}/missing/key")

    assert response.code == 404
    assert header(response, "Content-Type") == "application/xml"
    fields = error_fields(content)
    assert fields["Code"] == "NoSuchKey"
    assert fields["Message"]
    assert fields["Resource"] == f"/{bucket_name}/missing/key"
    assert fields["RequestId"] == header(response, "x-amz-request-id")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/{bucket}/object", 200),
        ("GET", "/{bucket}", 200),
        ("GET", "/{bucket}/missing", 404),
        ("HEAD", "/{bucket}/missing", 404),
        ("DELETE", "/no-such-bucket-here", 404),
        ("GET", "/", 200),
    ],
)
@pytest_twisted.ensureDeferred
async def test_every_response_carries_a_fresh_request_id(server, bucket_name, method, path, status):
    await call(server, "PUT", f"/{bucket_name}")

    first, _ = await call(server, method, path.format(bucket=bucket_name))
    second, _ = await call(server, method, path.format(bucket=bucket_name))

    assert first.code == status
    assert header(first, "x-amz-request-id")
    assert header(first, "x-amz-request-id") != header(second, "x-amz-request-id")


# -- operations we do not have -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "query"),
    [("GET", "inventory"), ("PUT", "replication"), ("GET", "analytics"), ("DELETE", "metrics")],
)
@pytest_twisted.ensureDeferred
async def test_unknown_bucket_subresource_is_not_implemented(server, bucket_name, method, query):
    await call(server, "PUT", f"/{bucket_name}")
    await refused(server, "NotImplemented", call(server, method, f"/{bucket_name}?{query}"), 501)


@pytest_twisted.ensureDeferred
async def test_boto3_sees_not_implemented_for_inventory(server, bucket_name):
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name)

    response = await server.blocking(
        client_error_response, s3.get_bucket_inventory_configuration, Bucket=bucket_name, Id="x"
    )

    assert response["Error"]["Code"] == "NotImplemented"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/{bucket}/key"), ("POST", "/{bucket}/key"), ("PATCH", "/{bucket}"), ("OPTIONS", "/"), ("FOO", "/")],
)
@pytest_twisted.ensureDeferred
async def test_unknown_method_is_method_not_allowed(server, bucket_name, method, path):
    await call(server, "PUT", f"/{bucket_name}")
    await call(server, "PUT", f"/{bucket_name}/key", body=b"data")

    request = call(server, method, path.format(bucket=bucket_name), body=b"{}")
    _, content = await refused(server, "MethodNotAllowed", request, 405)

    assert_no_leak(content, server)


# -- the unexpected -------------------------------------------------------------------


def _explode(server):
    def raiser(*args, **kwargs):
        raise RuntimeError(f"disk at {server.data_dir} caught fire")

    return raiser


@pytest_twisted.ensureDeferred
async def test_store_exception_is_internal_error_and_logged(server, bucket_name, monkeypatch, log_events):
    await call(server, "PUT", f"/{bucket_name}")
    monkeypatch.setattr(server.store, "open_object", _explode(server))

    response, content = await refused(server, "InternalError", call(server, "GET", f"/{bucket_name}/key"), 500)

    assert_no_leak(content, server)
    request_id = header(response, "x-amz-request-id")
    logged = [e for e in log_events if "log_failure" in e]
    assert [e["request_id"] for e in logged] == [request_id]
    assert logged[0]["log_failure"].check(RuntimeError)


@pytest_twisted.ensureDeferred
async def test_fault_in_the_metadata_write_of_a_put_stores_nothing(server, bucket_name, monkeypatch, log_events):
    await call(server, "PUT", f"/{bucket_name}")
    await call(server, "PUT", f"/{bucket_name}/key", body=b"old")
    monkeypatch.setattr(server.store, "_replace", _explode(server))

    request = call(server, "PUT", f"/{bucket_name}/key", body=b"new" * 1000)
    _, content = await refused(server, "InternalError", request, 500)

    assert_no_leak(content, server)
    assert server.tmp_files() == []
    monkeypatch.undo()
    _, content = await call(server, "GET", f"/{bucket_name}/key")
    assert content == b"old"


@pytest_twisted.ensureDeferred
async def test_internal_error_log_does_not_carry_the_authorization_header(server, bucket_name, monkeypatch, log_events):
    await call(server, "PUT", f"/{bucket_name}")
    monkeypatch.setattr(server.store, "open_object", _explode(server))

    response, _ = await call(server, "GET", f"/{bucket_name}/key")

    assert response.code == 500
    assert log_events
    text = repr(log_events)
    assert "Signature=" not in text
    assert server.admin_keys[1] not in text


@pytest_twisted.ensureDeferred
async def test_fault_while_routing_a_get_is_internal_error(server, bucket_name, monkeypatch, log_events):
    await call(server, "PUT", f"/{bucket_name}")
    monkeypatch.setattr(server.credentials, "lookup", _explode(server))

    response, content = await refused(server, "InternalError", call(server, "GET", f"/{bucket_name}"), 500)

    assert_no_leak(content, server)
    assert [e["request_id"] for e in log_events if "log_failure" in e] == [header(response, "x-amz-request-id")]


@pytest_twisted.ensureDeferred
async def test_fault_while_routing_a_put_refuses_it_before_the_body(server, bucket_name, monkeypatch):
    await call(server, "PUT", f"/{bucket_name}")
    monkeypatch.setattr(server.credentials, "lookup", _explode(server))

    request = call(server, "PUT", f"/{bucket_name}/key", body=b"x" * 1000)
    _, content = await refused(server, "InternalError", request, 500)

    assert_no_leak(content, server)


# -- a full disk --------------------------------------------------------------------------


class _FullDisk(types.SimpleNamespace):
    """``os`` for the blob module, whose ``write`` (or ``fsync``) fails with ENOSPC on the Nth call."""

    def __init__(self, fail, on_call):
        super().__init__(calls=0)
        self._fail, self._on_call = fail, on_call

    def __getattr__(self, name):
        real = getattr(os, name)
        if name != self._fail:
            return real

        def faulty(*args):
            self.calls += 1
            if self.calls >= self._on_call:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args)

        return faulty


@pytest.mark.parametrize(("fail", "on_call"), [("open", 1), ("write", 3), ("fsync", 1)])
@pytest_twisted.ensureDeferred
async def test_disk_full_is_storage_full_and_stores_nothing(server, bucket_name, monkeypatch, fail, on_call):
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="key", Body=b"old")
    async with unchanged(server):
        # No spare temp files: the upload must create its own, where the disk is full.
        monkeypatch.setattr(server.store.files, "_spares_wanted", 0)
        server.store.files.drop_spares()
        monkeypatch.setattr(blobs, "os", _FullDisk(fail, on_call))

        response = await server.blocking(
            client_error_response, s3.put_object, Bucket=bucket_name, Key="key", Body=os.urandom(MiB)
        )

        assert response["ResponseMetadata"]["HTTPStatusCode"] == 507
        assert response["Error"]["Code"] == "XObjectstoreStorageFull"
        monkeypatch.undo()  # the disk is back before the snapshot reads it
        assert server.tmp_files() == []
    got = await server.blocking(s3.get_object, Bucket=bucket_name, Key="key")
    assert got["Body"].read() == b"old"


# -- a client that hangs up ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_client_gone_before_the_answer_is_not_logged_as_an_error(server, bucket_name, monkeypatch, log_events):
    await call(server, "PUT", f"/{bucket_name}")
    entered, gate, lost = defer.Deferred(), defer.Deferred(), defer.Deferred()
    real_put, real_lost = server.store.put_object, S3Request.connectionLost

    async def slow_put(*args, **kwargs):
        entered.callback(None)
        await gate
        return await real_put(*args, **kwargs)

    def connection_lost(request, reason):
        real_lost(request, reason)
        lost.callback(None)

    monkeypatch.setattr(server.store, "put_object", slow_put)
    monkeypatch.setattr(S3Request, "connectionLost", connection_lost)
    url = f"{server.url}/{bucket_name}/key"
    head = f"PUT /{bucket_name}/key HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: 4\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in signed_headers("PUT", url, body=b"data").items())
    sock = await threads.deferToThread(socket.create_connection, ("127.0.0.1", server.port))
    sock.sendall(head.encode() + b"\r\ndata")

    await entered
    sock.close()
    await lost
    gate.callback(None)
    await eventually(lambda: server.store.get_object(bucket_name, "key") is not None, exceptions=(NoSuchKey,))

    assert [e for e in log_events if "log_failure" in e] == []


@pytest_twisted.ensureDeferred
async def test_access_log_does_not_record_presigned_signatures(server, bucket_name, log_events):
    server.site.access_log = "-"  # as with --access-log -
    s3 = server.boto3(signature_version="s3v4")
    await server.blocking(s3.create_bucket, Bucket=bucket_name)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"abc")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket_name, "Key": "k"})
    signature = url.rsplit("X-Amz-Signature=", 1)[1]

    response = await treq.get(url, persistent=False)
    await treq.content(response)

    assert response.code == 200
    logged = " ".join(formatEvent(e) for e in log_events)
    assert f"/{bucket_name}/k" in logged  # the request was logged...
    assert signature not in logged  # ...without the signature that grants access


@pytest_twisted.ensureDeferred
async def test_access_log_is_off_by_default_and_writes_to_a_file_when_asked(server, bucket_name, log_events, tmp_path):
    await call(server, "PUT", f"/{bucket_name}")
    assert f"PUT /{bucket_name}" not in " ".join(formatEvent(e) for e in log_events)

    from twisted.web.test.requesthelper import DummyChannel

    from objectstore.web.site import S3Site

    path = tmp_path / "access.log"
    site = S3Site(server.site.resource, access_log=str(path))
    site.startFactory()
    try:
        request = S3Request(DummyChannel())
        request.method, request.uri, request.clientproto = b"GET", b"/x?X-Amz-Signature=secret", b"HTTP/1.1"
        request.code, request.sentLength = 200, 0
        site.log(request)
    finally:
        site.stopFactory()
    line = path.read_text()
    assert '"GET /x?X-Amz-Signature=' in line and "secret" not in line
