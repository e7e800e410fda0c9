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
import re
from dataclasses import dataclass

from OpenSSL import SSL
from twisted.internet import defer, error, protocol, ssl, task
from twisted.web import client, http
from twisted.web.client import RequestGenerationFailed, RequestTransmissionFailed
from twisted.web.http_headers import Headers
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from objectstore import xmlio
from objectstore.auth.sigv4 import UNSIGNED_PAYLOAD
from objectstore.bundletool.signing import signed_headers
from objectstore.errors import S3Error

DEFAULT_RETRIES = 4
# Seconds without a body byte taken or an answer before an attempt is given up:
# idle time, not the whole transfer, so that a big part on a slow link can finish.
IDLE_TIMEOUT = 120.0
# The longest error document read whole; larger ones are cut (they are never that large).
MAX_ERROR_BODY = 64 * 1024
# The longest answer read at all: manifests, listings, certificates are far smaller.
MAX_ANSWER = 64 * 1024 * 1024
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset({"BadDigest", "IncompleteBody", "RequestTimeout", "SlowDown", "Throttling"})
# What a server answers without having acted: safe to retry even a request that must not run twice.
REFUSED_UNDONE_STATUS = frozenset({429, 503})
# The request may have reached the server: retried only when running it twice is harmless.
_FAULTS_AFTER_SENDING = (
    error.ConnectionLost,
    client.ResponseFailed,
    client.ResponseNeverReceived,
    RequestTransmissionFailed,
)
# The connection was never made: always safe to retry (the server may be restarting).
_FAULTS_BEFORE_SENDING = (error.ConnectError,)


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
    """A request body read from a file, and the payload hash its request signs.

    UNSIGNED-PAYLOAD (the default) spares both sides a SHA-256 of the whole
    file, as boto3 does over https; the signed Content-MD5 header then
    stands for the body, and the server checks it.
    """

    path: str
    size: int
    sha256: str = UNSIGNED_PAYLOAD


class HttpClient:
    def __init__(
        self,
        reactor,
        keys,
        region,
        *,
        retries=DEFAULT_RETRIES,
        connections=4,
        timeout=IDLE_TIMEOUT,
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

    async def request(self, method, url, *, service, headers=None, body=b"", ok=(200,), on_sent=None, idempotent=True):
        """The Reply of the first attempt whose status is in *ok*; else ToolError.

        *body* is bytes or a FileBody; *on_sent(n)* hears of body bytes sent
        (negative when an attempt failed and its bytes will be sent again).
        A request that must not run twice (``idempotent=False``) is retried
        only when the server cannot have acted on it.
        """
        for attempt in range(self.retries + 1):
            sent = _Counter(on_sent)
            try:
                reply = await self._attempt(method, url, service, headers or {}, body, sent)
            except BaseException as e:
                sent.undo()
                failure, retry = _network_failure(method, url, e, idempotent, self.timeout)
            else:
                if reply.status in ok:
                    return reply
                sent.undo()
                failure = _service_error(reply)
                retry = failure.status in REFUSED_UNDONE_STATUS or (idempotent and _worth_retrying(failure))
            if not retry or attempt == self.retries:
                raise failure
            pause = self.backoff * 2**attempt * random.uniform(0.75, 1.25)
            await task.deferLater(self.reactor, pause, lambda: None)
        raise AssertionError("unreachable")

    async def _attempt(self, method, url, service, headers, body, sent):
        if isinstance(body, FileBody):
            payload_sha256 = body.sha256
            source = open(body.path, "rb")  # noqa: SIM115 (closed below, after the producer is done with it)
        else:
            payload_sha256 = hashlib.sha256(body).hexdigest()
            source = io.BytesIO(body)
        idle = _IdleTimer(self.reactor, self.timeout)
        try:
            signed = signed_headers(method, url, headers, payload_sha256, self.keys, self.region, service)
            raw = Headers({name.encode("latin-1"): [value.encode("latin-1")] for name, value in signed.items()})
            producer = None
            if method in ("PUT", "POST") or isinstance(body, FileBody) or body:
                reader = _CountingReader(source, sent, idle.reset)
                producer = client.FileBodyProducer(reader, readSize=256 * 1024)
            response = await idle.watch(self._agent.request(method.encode("ascii"), url.encode("ascii"), raw, producer))
            content = await idle.watch(_read_body(response, method))
        finally:
            idle.stop()
            source.close()
        return Reply(response.code, response.headers, content)

    async def close(self):
        await self._pool.closeCachedConnections()


class IdleTimeout(Exception):
    """Nothing was sent or received for the idle timeout."""


class _IdleTimer:
    """Cancels the Deferred it watches when nothing moves for *timeout* seconds."""

    def __init__(self, reactor, timeout):
        self._reactor = reactor
        self._timeout = timeout
        self._call = None
        self._watched = None
        self.fired = False

    async def watch(self, d):
        self._watched = d
        self.reset()
        try:
            return await d
        except BaseException:
            # Cancelled by the timer: the Agent reports it as CancelledError,
            # or wrapped (ResponseNeverReceived) once the request was written.
            if self.fired:
                raise IdleTimeout() from None
            raise
        finally:
            self.stop()

    def reset(self):
        if self._call is not None and self._call.active():
            self._call.reset(self._timeout)
        elif self._watched is not None and not self.fired:
            self._call = self._reactor.callLater(self._timeout, self._fire)

    def _fire(self):
        self.fired = True
        self._watched.cancel()

    def stop(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._watched = None


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

    def __init__(self, source, counter, on_read):
        self._source = source
        self._counter = counter
        self._on_read = on_read

    def read(self, n=-1):
        data = self._source.read(n)
        self._counter.add(len(data))
        self._on_read()
        return data

    def seek(self, offset, whence=0):
        return self._source.seek(offset, whence)

    def tell(self):
        return self._source.tell()

    def close(self):
        pass  # the request closes the file, after its last attempt with it


def _read_body(response, method):
    """A Deferred of the whole body (the tool only reads small answers), refused past MAX_ANSWER."""
    if method == "HEAD" or response.code in (204, 304) or response.length == 0:
        return defer.succeed(b"")
    finished = defer.Deferred(lambda _: collector.transport.stopProducing())
    collector = _BodyCollector(finished)
    response.deliverBody(collector)
    return finished


class _BodyCollector(protocol.Protocol):
    def __init__(self, finished):
        self.finished = finished
        self.chunks = []
        self.size = 0

    def dataReceived(self, data):
        if self.finished.called:
            return
        self.size += len(data)
        if self.size > MAX_ANSWER:
            self.transport.stopProducing()
            self.finished.errback(ToolError(f"the server's answer is larger than {MAX_ANSWER} bytes"))
            return
        self.chunks.append(data)

    def connectionLost(self, reason):
        if self.finished.called:
            return
        if reason.check(client.ResponseDone, http.PotentialDataLoss):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(client.ResponseFailed([reason]))


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


def _network_failure(method, url, e, idempotent, timeout):
    """(NetworkError or ToolError, whether to retry) for an attempt that raised *e*; else *e* is raised."""
    if isinstance(e, IdleTimeout):
        return NetworkError(f"{method} {url}: nothing sent or received for {timeout:g} s"), idempotent
    if isinstance(e, RequestGenerationFailed):
        return ToolError(f"{method} {url}: the body could not be sent ({_reason(e)}; did the file change?)"), False
    if isinstance(e, error.DNSLookupError):
        return NetworkError(f"{method} {url}: cannot resolve the host name ({_reason(e)})"), False
    if isinstance(e, _FAULTS_BEFORE_SENDING):
        return NetworkError(f"{method} {url}: {_reason(e)}"), True
    if isinstance(e, _FAULTS_AFTER_SENDING):
        if _tls_failure(e):
            return NetworkError(
                f"{method} {url}: TLS failed ({_reason(e)}); a private CA? give --ca-bundle or set $AWS_CA_BUNDLE"
            ), False
        return NetworkError(f"{method} {url}: {_reason(e)}"), idempotent
    raise e


def _causes(e):
    reasons = getattr(e, "reasons", None)
    return [reason.value for reason in reasons] if reasons else [e]


def _tls_failure(e):
    return any(isinstance(cause, SSL.Error) for cause in _causes(e))


def _reason(e):
    cause = _causes(e)[0]
    if isinstance(cause, error.ConnectionRefusedError):
        return "connection refused (is the server running at that address?)"
    if isinstance(cause, error.TimeoutError):
        return "the connection timed out"
    if isinstance(cause, SSL.Error):
        details = [part for args in cause.args for entry in args for part in entry[-1:] if part]
        return ", ".join(details) or "TLS error"
    text = str(cause).strip()
    return text or type(cause).__name__


@implementer(IPolicyForHTTPS)
class _TrustedRoots:
    """HTTPS that trusts the certificates of a PEM bundle (a private cloud's own CA) instead of the system's."""

    def __init__(self, path):
        try:
            with open(path, "rb") as f:
                pem = f.read()
        except OSError as e:
            raise ToolError(f"cannot read the CA bundle {path}: {e.strerror}") from None
        blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.DOTALL)
        if not blocks:
            raise ToolError(f"the CA bundle {path} holds no PEM certificate")
        certificates = []
        for number, block in enumerate(blocks, 1):
            try:
                certificates.append(ssl.Certificate.loadPEM(block + b"\n"))
            except Exception as e:
                raise ToolError(f"certificate {number} of the CA bundle {path} cannot be read ({e})") from None
        self._trust = ssl.trustRootFromCertificates(certificates)

    def creatorForNetloc(self, hostname, port):
        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._trust)
