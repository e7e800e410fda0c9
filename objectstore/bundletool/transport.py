"""The tool's HTTP: signed requests over kept-alive connections, retried when retrying can help.

A failed attempt is retried, after a growing pause, when the fault may be
passing: the connection broke or timed out, the server is busy or failing
(5xx, 429, SlowDown), or a body arrived damaged (BadDigest, RequestTimeout).
Anything else, a refused signature or a missing bucket, fails at once with
the server's own error code and message.
"""

import hashlib
import io
import random
from dataclasses import dataclass

from twisted.internet import defer, error, ssl, task
from twisted.web import client
from twisted.web._newclient import RequestTransmissionFailed
from twisted.web.http_headers import Headers
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from objectstore import xmlio
from objectstore.bundletool.signing import signed_headers
from objectstore.errors import S3Error

DEFAULT_RETRIES = 4
DEFAULT_TIMEOUT = 300.0
# The longest error document read whole; larger ones are cut (they are never that large).
MAX_ERROR_BODY = 64 * 1024
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset({"BadDigest", "IncompleteBody", "RequestTimeout", "SlowDown", "Throttling"})
_NETWORK_FAULTS = (
    error.ConnectError,
    error.ConnectionLost,
    error.DNSLookupError,
    error.TimeoutError,
    client.ResponseFailed,
    client.ResponseNeverReceived,
    RequestTransmissionFailed,
)


class ToolError(Exception):
    """Why a command failed, in one line for the user."""


class ServiceError(ToolError):
    """The server refused a request: its status, error code and message."""

    def __init__(self, status, code, message):
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{message} ({code}, HTTP {status})" if code else f"HTTP {status}: {message}")


class NetworkError(ToolError):
    """No answer: the connection failed, broke or timed out."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Headers
    body: bytes

    def header(self, name):
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


@dataclass(frozen=True)
class FileBody:
    """A request body read from a file; its SHA-256 (hex) is what the request signs."""

    path: str
    size: int
    sha256: str


class HttpClient:
    def __init__(
        self,
        reactor,
        keys,
        region,
        *,
        retries=DEFAULT_RETRIES,
        connections=4,
        timeout=DEFAULT_TIMEOUT,
        ca_bundle=None,
        backoff=0.5,
    ):
        self.reactor = reactor
        self.keys = keys
        self.region = region
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self._pool = client.HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = connections
        policy = _TrustedRoots(ca_bundle) if ca_bundle else client.BrowserLikePolicyForHTTPS()
        self._agent = client.Agent(reactor, contextFactory=policy, pool=self._pool, connectTimeout=30)

    async def request(self, method, url, *, service, headers=None, body=b"", ok=(200,), on_sent=None):
        """The Reply of the first attempt whose status is in *ok*; else ToolError.

        *body* is bytes or a FileBody; *on_sent(n)* hears of body bytes sent
        (negative when an attempt failed and its bytes will be sent again).
        """
        for attempt in range(self.retries + 1):
            sent = _Counter(on_sent)
            try:
                reply = await self._attempt(method, url, service, headers or {}, body, sent)
            except BaseException as e:
                sent.undo()
                if not isinstance(e, _NETWORK_FAULTS):
                    raise
                failure = NetworkError(f"{method} {url}: {_network_reason(e)}")
            else:
                if reply.status in ok:
                    return reply
                sent.undo()
                failure = _service_error(reply)
                if not _worth_retrying(failure):
                    raise failure
            if attempt == self.retries:
                raise failure
            pause = self.backoff * 2**attempt * random.uniform(0.75, 1.25)
            await task.deferLater(self.reactor, pause, lambda: None)
        raise AssertionError("unreachable")

    async def _attempt(self, method, url, service, headers, body, sent):
        if isinstance(body, FileBody):
            payload_sha256, length = body.sha256, body.size
            source = open(body.path, "rb")  # noqa: SIM115 (closed below, after the producer is done with it)
        else:
            payload_sha256, length = hashlib.sha256(body).hexdigest(), len(body)
            source = io.BytesIO(body)
        try:
            signed = signed_headers(method, url, headers, payload_sha256, self.keys, self.region, service)
            raw = Headers({name.encode("latin-1"): [value.encode("latin-1")] for name, value in signed.items()})
            producer = None
            if length or method in ("PUT", "POST"):
                producer = client.FileBodyProducer(_CountingReader(source, sent), readSize=256 * 1024)
            d = self._agent.request(method.encode("ascii"), url.encode("ascii"), raw, producer)
            d.addTimeout(self.timeout, self.reactor)
            response = await d
            content = await _read_body(response, self.reactor, self.timeout, method)
        finally:
            source.close()
        return Reply(response.code, response.headers, content)

    async def close(self):
        await self._pool.closeCachedConnections()


class _Counter:
    """Body bytes reported to on_sent, so that a failed attempt can take them back."""

    def __init__(self, on_sent):
        self.on_sent = on_sent
        self.total = 0

    def add(self, n):
        self.total += n
        if self.on_sent is not None and n:
            self.on_sent(n)

    def undo(self):
        if self.on_sent is not None and self.total:
            self.on_sent(-self.total)
        self.total = 0


class _CountingReader:
    """A file that reports each read; FileBodyProducer seeks it to learn its length."""

    def __init__(self, source, counter):
        self._source = source
        self._counter = counter

    def read(self, n=-1):
        data = self._source.read(n)
        self._counter.add(len(data))
        return data

    def seek(self, offset, whence=0):
        return self._source.seek(offset, whence)

    def tell(self):
        return self._source.tell()

    def close(self):
        pass  # the request closes the file, after its last attempt with it


async def _read_body(response, reactor, timeout, method):
    if method == "HEAD" or response.code in (204, 304):
        return b""
    d = client.readBody(response)
    d.addTimeout(timeout, reactor)
    try:
        return await d
    except client.PartialDownloadError as e:
        raise client.ResponseFailed([e]) from e


def _service_error(reply):
    code, message = None, None
    if reply.body:
        try:
            root = xmlio.parse(reply.body[:MAX_ERROR_BODY], MAX_ERROR_BODY)
        except S3Error:
            root = None
        if root is not None:
            code = root.findtext(".//{*}Code") or root.findtext(".//Code")
            message = root.findtext(".//{*}Message") or root.findtext(".//Message")
    if not message:
        message = {403: "access denied", 404: "not found"}.get(reply.status, "the server refused the request")
    return ServiceError(reply.status, code, message)


def _worth_retrying(failure):
    return failure.status in RETRYABLE_STATUS or failure.code in RETRYABLE_CODES


def _network_reason(e):
    reasons = getattr(e, "reasons", None)
    if reasons:
        e = reasons[0].value
    if isinstance(e, defer.CancelledError | error.TimeoutError):
        return "no answer in time"
    if isinstance(e, error.ConnectionRefusedError):
        return "connection refused (is the server running at that address?)"
    text = str(e).strip()
    return text or type(e).__name__


@implementer(IPolicyForHTTPS)
class _TrustedRoots:
    """HTTPS that trusts the certificates of a PEM bundle (a private cloud's own CA) instead of the system's."""

    def __init__(self, path):
        try:
            with open(path, "rb") as f:
                pem = f.read()
        except OSError as e:
            raise ToolError(f"cannot read the CA bundle {path}: {e.strerror}") from None
        blocks = [block + b"-----END CERTIFICATE-----\n" for block in pem.split(b"-----END CERTIFICATE-----")[:-1]]
        try:
            certificates = [ssl.Certificate.loadPEM(block.strip() + b"\n") for block in blocks]
        except Exception:
            certificates = []
        if not certificates:
            raise ToolError(f"the CA bundle {path} holds no PEM certificate")
        self._trust = ssl.trustRootFromCertificates(certificates)

    def creatorForNetloc(self, hostname, port):
        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._trust)
