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


class _DeclaredPayloadAuth(S3SigV4Auth):
    """botocore's S3 signer, signing the payload hash it is given instead of hashing the body."""

    def __init__(self, credentials, payload_hash):
        super().__init__(credentials, "s3", REGION)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def signed_headers(method, url, keys=ADMIN_KEYS, headers=None, body=b"", payload_hash=None):
    """Headers for *url* signed with SigV4 as botocore signs them.

    *payload_hash* (UNSIGNED-PAYLOAD, a STREAMING-... mode or a hex digest)
    is signed as given; by default the SHA-256 of *body* is.
    """
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if payload_hash is None:
        S3SigV4Auth(Credentials(*keys), "s3", REGION).add_auth(request)
    else:
        _DeclaredPayloadAuth(Credentials(*keys), payload_hash).add_auth(request)
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


def aws_chunked(payload, trailers, chunk=4096):
    """*payload* framed as an unsigned aws-chunked body, *trailers* ({name: value}) after its last chunk."""
    out = bytearray()
    for i in range(0, len(payload), chunk):
        piece = payload[i : i + chunk]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out += b"0\r\n"
    for name, value in trailers.items():
        out += f"{name}:{value}\r\n".encode()
    return bytes(out + b"\r\n")
