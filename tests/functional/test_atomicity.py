"""Atomic PUTs on a live server: one whole winner, readers never see a mix, no-ops write nothing.

Payloads are made so that any mix of two is detectable: each is one byte
value repeated, with its own length.
"""

import hashlib
import os
import socket

import pytest_twisted
import treq
from twisted.internet import defer, reactor, threads
from twisted.web.client import HTTPConnectionPool

from objectstore.storage.writer import INLINE_LIMIT
from tests.helpers import unchanged
from tests.s3http import call, header, signed_headers

MiB = 1024**2


def payloads(count, base_size=40_000, step=3013):
    """Distinct bodies, the small ones kept inline and the bigger ones in blobs."""
    return [bytes([65 + i]) * (base_size + step * i) for i in range(count)]


def etag_of(data):
    return f'"{hashlib.md5(data).hexdigest()}"'


def blob_files(server):
    return server.blob_files()


async def put(server, bucket, key, body):
    response, _ = await call(server, "PUT", f"/{bucket}/{key}", body=body)
    assert response.code == 200
    return header(response, "ETag")


# -- concurrent writers ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_concurrent_puts_of_one_key_leave_one_whole_winner(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    candidates = payloads(20)

    etags = await defer.gatherResults([defer.ensureDeferred(put(server, bucket_name, "k", p)) for p in candidates])

    assert etags == [etag_of(p) for p in candidates]
    response, content = await call(server, "GET", f"/{bucket_name}/k")
    assert content in candidates
    assert header(response, "ETag") == etag_of(content)
    # The losers' bytes are gone: only the winner's remain, in a blob or inline.
    await server.settled()
    _, rows = server.snapshot()
    if len(content) > INLINE_LIMIT:
        assert (len(blob_files(server)), len(rows["inline_data"])) == (1, 0)
    else:
        assert (len(blob_files(server)), len(rows["inline_data"])) == (0, 1)


@pytest_twisted.ensureDeferred
async def test_reads_during_overwrites_see_whole_versions_only(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    candidates = payloads(24, base_size=100_000)
    await put(server, bucket_name, "k", candidates[0])
    writing = True
    seen = []

    async def write_loop():
        nonlocal writing
        for payload in candidates[1:]:
            await put(server, bucket_name, "k", payload)
        writing = False

    async def read_loop():
        while writing:
            response, content = await call(server, "GET", f"/{bucket_name}/k")
            assert response.code == 200
            seen.append((content, header(response, "ETag")))

    await defer.gatherResults([defer.ensureDeferred(f()) for f in (write_loop, read_loop, read_loop, read_loop)])

    assert len({etag for _, etag in seen}) > 1  # the readers did overlap the overwrites
    for content, etag in seen:
        assert content in candidates
        assert etag == etag_of(content)


def _start_get(port, head, want):
    """Open a GET and read until *want* body bytes arrived; the socket stays open (blocking)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head)
    data = b""
    while data.count(b"\r\n\r\n") == 0 or len(data.partition(b"\r\n\r\n")[2]) < want:
        data += sock.recv(65536)
    return sock, data


def _finish_get(sock, data, length):
    with sock:
        head, _, body = data.partition(b"\r\n\r\n")
        while len(body) < length:
            chunk = sock.recv(1024 * 1024)
            if not chunk:
                break
            body += chunk
    return head, body


@pytest_twisted.ensureDeferred
async def test_get_streaming_the_old_version_reads_it_whole_across_an_overwrite(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    old, new = os.urandom(24 * MiB), os.urandom(3 * MiB)
    await put(server, bucket_name, "big", old)
    (old_blob,) = blob_files(server)
    path = f"/{bucket_name}/big"
    headers = signed_headers("GET", server.url + path)
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"

    sock, data = await threads.deferToThread(_start_get, server.port, head.encode(), MiB)
    await put(server, bucket_name, "big", new)
    await server.settled()
    assert not os.path.exists(old_blob)  # unlinked: only the open handle keeps it readable
    status_line, body = await threads.deferToThread(_finish_get, sock, data, len(old))

    assert status_line.startswith(b"HTTP/1.1 200 ")
    assert body == old
    _, content = await call(server, "GET", path)
    assert content == new


# -- no-ops write nothing (docs/threat-model.md, threat 28) ----------------------------------------


def disk_state(server):
    """Every entry under the data folder (an inode each) with its size."""
    entries = {}
    spares = server.store.files.spare_names()
    for parent, folders, names in os.walk(server.data_dir):
        for name in folders + names:
            if name in spares:
                continue
            path = os.path.join(parent, name)
            entries[os.path.relpath(path, server.data_dir)] = os.lstat(path).st_size if name in names else None
    return entries


@pytest_twisted.ensureDeferred
async def test_deleting_a_thousand_missing_keys_writes_nothing(server, bucket_name):
    await call(server, "PUT", f"/{bucket_name}")
    await put(server, bucket_name, "kept", b"kept")
    await server.settled()
    disk_before = disk_state(server)
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 10

    async def delete(i):
        url = f"{server.url}/{bucket_name}/missing-{i}"
        headers = {k: [v] for k, v in signed_headers("DELETE", url).items()}
        response = await treq.delete(url, headers=headers, pool=pool)
        await treq.content(response)
        return response.code

    async with unchanged(server):
        try:
            codes = []
            for start in range(0, 1000, 50):
                batch = [defer.ensureDeferred(delete(i)) for i in range(start, start + 50)]
                codes += await defer.gatherResults(batch)
        finally:
            await pool.closeCachedConnections()
        assert codes == [204] * 1000
        assert disk_state(server) == disk_before
