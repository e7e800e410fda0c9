"""Signed S3 requests with treq, and raw HTTP over a socket for hostile cases."""

import socket

import treq
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lxml import etree
from twisted.internet import threads

from tests.conftest import ADMIN_KEYS, REGION

UNSIGNED = "UNSIGNED-PAYLOAD"


def signed_headers(method, url, keys=ADMIN_KEYS, headers=None, body=b"", payload_hash=None):
    """Headers for *url* signed with SigV4 as botocore signs them."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if payload_hash is not None:
        request.headers["X-Amz-Content-SHA256"] = payload_hash
    S3SigV4Auth(Credentials(*keys), "s3", REGION).add_auth(request)
    return {k: v for k, v in request.headers.items()}


async def call(server, method, path, keys=ADMIN_KEYS, headers=None, body=b""):
    """(response, body bytes) for a request signed by *keys* (None: anonymous)."""
    url = server.url + path
    if keys is not None:
        headers = signed_headers(method, url, keys, headers, body)
    headers = {k: [v] for k, v in (headers or {}).items()}
    response = await treq.request(method, url, headers=headers, data=body or None, persistent=False)
    content = await treq.content(response)
    return response, content


def header(response, name):
    values = response.headers.getRawHeaders(name)
    if not values:
        return None
    value = values[0]
    return value.decode() if isinstance(value, bytes) else value


def error_code(content):
    return etree.fromstring(content).findtext("Code")


def raw_exchange(port, data, read_timeout=5.0, shutdown_write=False):
    """Send raw bytes, return everything the server answers until it closes (blocking)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(data)
        if shutdown_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (socket.timeout, ConnectionResetError):
            pass
    return b"".join(chunks)


def raw(port, data, **kwargs):
    """raw_exchange in a thread (the server shares our reactor)."""
    return threads.deferToThread(raw_exchange, port, data, **kwargs)
