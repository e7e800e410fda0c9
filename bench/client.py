"""A minimal S3 client: one persistent, SigV4-signed HTTP/1.1 connection.

boto3 costs far more CPU per request than the servers under test on a small
machine, so the load generator talks HTTP itself with http.client.
"""

import http.client
import socket
from dataclasses import dataclass

from bench.sigv4 import EMPTY_SHA256, Signer, encode_path, encode_query, sha256_hex


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    access_key: str
    secret_key: str
    region: str = "us-east-1"


class _NoDelayConnection(http.client.HTTPConnection):
    # http.client writes headers and a streamed body in separate sends;
    # without TCP_NODELAY, Nagle plus delayed ACK can add ~40 ms stalls.
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class S3Client:
    def __init__(self, endpoint, timeout=60.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self._host = f"{endpoint.host}:{endpoint.port}"
        self._signer = Signer(endpoint.access_key, endpoint.secret_key, endpoint.region)
        self._conn = None

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def open(self, method, path, query=(), body=None, headers=None, payload_hash=None):
        """Send a request and return the unread HTTPResponse (for streaming).

        ``path`` is unencoded, path-style: "/bucket" or "/bucket/key".
        ``payload_hash`` defaults to the SHA-256 of a bytes body.  The caller
        must read the response to the end before the next request.
        """
        if payload_hash is None:
            payload_hash = sha256_hex(body) if body else EMPTY_SHA256
        epath = encode_path(path)
        equery = encode_query(query)
        hdrs = {"host": self._host}
        if headers:
            hdrs.update(headers)
        hdrs = self._signer.sign(method, epath, equery, hdrs, payload_hash)
        target = f"{epath}?{equery}" if equery else epath
        reused = self._conn is not None
        try:
            return self._send(method, target, body, hdrs)
        except _STALE_CONNECTION:
            # The server may close an idle keep-alive connection (node does
            # after 5 s); like any HTTP client, replay once on a fresh one.
            if not reused or not (body is None or isinstance(body, bytes)):
                raise
            return self._send(method, target, body, hdrs)

    def _send(self, method, target, body, headers):
        if self._conn is None:
            self._conn = _NoDelayConnection(self.endpoint.host, self.endpoint.port, timeout=self.timeout)
        try:
            self._conn.request(method, target, body=body, headers=headers)
            return self._conn.getresponse()
        except BaseException:
            # A half-used connection cannot carry another request.
            self.close()
            raise

    def request(self, method, path, query=(), body=None, headers=None, payload_hash=None):
        """Send a request and return (status, headers, body bytes)."""
        resp = self.open(method, path, query, body, headers, payload_hash)
        try:
            data = resp.read()
        except BaseException:
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, resp.headers, data
