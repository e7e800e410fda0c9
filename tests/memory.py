"""An in-memory HTTP client for the real S3Site: no socket, the same request path.

treq's ``StubTreq`` wraps a resource in a stock ``Site``, which would skip
S3Request (routing and authentication at ``gotLength``, before the body) and
S3Channel. ``S3TraversalAgent`` is treq's ``RequestTraversalAgent`` with our
own site as the server factory: treq's Agent writes the request over
``iosim`` fake transports into ``site.buildProtocol``, parses the answer, and
``MemoryS3.request`` pumps the pair until the answer is in. The store still
works in threads on the real reactor (pytest-twisted runs it), so the pump
yields a reactor turn between flushes.

Requests are SigV4-signed with botocore, as botocore signs them, unless
``keys=None`` (anonymous).
"""

import contextlib
import time
from typing import NamedTuple
from urllib.parse import quote

import treq
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lxml import etree
from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent
from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from objectstore.config import Config
from objectstore.service import build
from tests.conftest import ADMIN_KEYS, REGION

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
# How long one request may take before the pump gives up (the store's threads are real).
REQUEST_TIMEOUT = 10.0


class S3TraversalAgent(RequestTraversalAgent):
    """treq's in-memory agent, serving with *site* (our S3Site) instead of a stock Site around its resource."""

    def __init__(self, site):
        super().__init__(site.resource)
        # The one thing changed: the server side of each in-memory connection
        # is built by our factory (S3Request, S3Channel, the access log).
        self._serverFactory = site

    def pending(self):
        """Whether any in-memory connection is still open on either side."""
        return bool(self._pumps)


class _AnswerFields(NamedTuple):
    status: int
    headers: Headers
    body: bytes


class Answer(_AnswerFields):
    """What came back: unpacks as ``status, headers, body``.

    ``length`` is the body's length as framed: treq's Agent takes
    Content-Length out of ``headers`` (UNKNOWN_LENGTH for a chunked answer).
    """

    def __new__(cls, status, headers, body, length=None):
        answer = super().__new__(cls, status, headers, body)
        answer.length = length
        return answer

    def header(self, name):
        """The (first) value of header *name* as text; None when absent."""
        values = self.headers.getRawHeaders(name.encode("latin-1"))
        return None if not values else values[0].decode("latin-1")

    def xml(self):
        return etree.fromstring(self.body)

    def error(self):
        """(Code, Message, Resource, RequestId) of an S3 error document."""
        root = self.xml()
        assert root.tag == "Error", self.body
        return tuple(root.findtext(name) for name in ("Code", "Message", "Resource", "RequestId"))

    @property
    def code(self):
        """The error document's Code."""
        return self.xml().findtext("Code")


class RawAnswer(NamedTuple):
    """An answer as written on the wire: status, ``{lower-case name: [values]}``, the bytes after the header block."""

    status: int
    headers: dict
    body: bytes

    @classmethod
    def parse(cls, data):
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return cls(int(status_line.split()[1]), headers, body)

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None


def sign(method, url, headers, body, keys):
    """*headers* plus botocore's SigV4 headers for *url* (signed as sent, the payload's SHA-256 included)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    S3SigV4Auth(Credentials(*keys), "s3", REGION).add_auth(request)
    return dict(request.headers.items())


def key_path(bucket, key):
    """``/bucket/key`` with the key percent-encoded as botocore sends it (``/`` kept)."""
    return f"/{bucket}/" + quote(key.encode("utf-8"), safe="/~")


class MemoryS3:
    """One store and its S3Site, answered in memory."""

    def __init__(self, site, store, config):
        self.site = site
        self.store = store
        self.config = config
        self.credentials = site.resource.credentials
        self.agent = S3TraversalAgent(site)
        # treq's client over the same agent, for a test that wants treq's own API.
        self.treq = HTTPClient(self.agent)

    def create_user(self, name, admin=False):
        """A new user; returns its (access key, secret)."""
        _, access_key, secret = self.credentials.create_user(name, admin=admin)
        return access_key, secret

    async def request(self, method, path, headers=None, body=b"", keys=ADMIN_KEYS, host="localhost"):
        """Send ``METHOD path`` (raw: sent byte for byte) with ``Host: host``; the Answer.

        *keys*: the (access key, secret) to sign with; None: anonymous.
        """
        headers = {"Host": host, **(headers or {})}
        if keys is not None:
            headers = sign(method, f"http://{host}{path}", headers, body, keys)
        raw = Headers({name.encode("latin-1"): [value.encode("latin-1")] for name, value in headers.items()})
        producer = _Body(body) if body or method in ("PUT", "POST") else None
        uri = f"http://{host}{path}".encode("utf-8")
        d = self.agent.request(method.encode("ascii"), uri, raw, producer)
        response = await self.pump(d)
        content = await self.pump(_read_body(response))
        await self._settle()
        return Answer(response.code, response.headers, content, response.length)

    async def raw(self, method, path, headers=None, body=b"", keys=ADMIN_KEYS, host="localhost"):
        """The same request written byte for byte into a fresh S3Channel; what it wrote back, as a RawAnswer.

        For what treq's client hides: whether a HEAD or a 304 carries body
        bytes, the exact header block. The request asks the server to close
        the connection after answering, which is how the answer's end is seen.
        """
        headers = {"Host": host, "Connection": "close", **(headers or {})}
        if keys is not None:
            headers = sign(method, f"http://{host}{path}", headers, body, keys)
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers.items()) + "\r\n"
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 31337))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 80), peerAddress=IPv4Address("TCP", "127.0.0.1", 31337)
        )
        channel.makeConnection(transport)
        try:
            channel.dataReceived(head.encode("utf-8") + body)
            deadline = time.monotonic() + REQUEST_TIMEOUT
            while not transport.disconnecting:
                if time.monotonic() > deadline:
                    raise TimeoutError("no answer from the in-memory server")
                await task.deferLater(reactor, 0, lambda: None)
        finally:
            channel.connectionLost(Failure(ConnectionDone()))
        return RawAnswer.parse(transport.value())

    async def pump(self, d):
        """Flush the in-memory connections until *d* has fired; its result."""
        done = []
        d.addBoth(lambda result: done.append(result) or result)
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while not done:
            self.agent.flush()
            if done:
                break
            if time.monotonic() > deadline:
                d.cancel()
                raise TimeoutError("no answer from the in-memory server")
            # The store's threads call back through the real reactor.
            await task.deferLater(reactor, 0, lambda: None)
        return await d

    async def _settle(self):
        """Let both ends of the finished (non-persistent) connection close."""
        for _ in range(20):
            self.agent.flush()
            if not self.agent.pending():
                return
            await task.deferLater(reactor, 0, lambda: None)

    # -- conveniences ---------------------------------------------------------------

    async def put_bucket(self, bucket, headers=None, **kwargs):
        answer = await self.request("PUT", f"/{bucket}", headers=headers, **kwargs)
        assert answer.status == 200, answer.body
        return answer

    async def put_object(self, bucket, key, body=b"", headers=None, **kwargs):
        answer = await self.request("PUT", key_path(bucket, key), headers=headers, body=body, **kwargs)
        assert answer.status == 200, answer.body
        return answer


class _Body:
    """An IBodyProducer of bytes, written at once (treq.testing's, which is private there)."""

    def __init__(self, data):
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


def _read_body(response):
    return treq.content(response)


@contextlib.asynccontextmanager
async def memory_s3(tmp_path, **settings):
    """A store in tmp_path/data built as twistd builds it, answered in memory (no listener)."""
    config = Config(listen=(), data_dir=str(tmp_path / "data"), admin_keys=ADMIN_KEYS, **settings)
    top, site, store = build(config, reactor)
    top.startService()
    s3 = MemoryS3(site, store, config)
    try:
        yield s3
    finally:
        await s3._settle()
        await top.stopService()


def local_names(element):
    """The local names of *element*'s children, in order."""
    return [etree.QName(child).localname for child in element]


def find_text(element, path):
    """findtext with every step of *path* in the S3 namespace."""
    return element.findtext("/".join(f"{{{S3_NS}}}{step}" for step in path.split("/")))


def find_all_text(element, path):
    return [e.text for e in element.findall("/".join(f"{{{S3_NS}}}{step}" for step in path.split("/")))]
