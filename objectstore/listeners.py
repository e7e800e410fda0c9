"""Where the server listens: endpoints parsed, probed before start-up, bound, and named as URLs.

``--listen`` takes Twisted's strports descriptions (``tcp:3333:interface=…``,
``ssl:3443:privateKey=…:certKey=…``, ``unix:/run/objectstore.sock``). A
description that does not parse, or a port that is taken, is found while the
server can still say so in one line on the terminal (see startup.py).
"""

import errno
import socket

from twisted.application import service
from twisted.internet import endpoints, interfaces
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from objectstore.config import ConfigError
from objectstore.startup import CannotServe

log = Logger()

ENDPOINT_FORMS = (
    "tcp:PORT[:interface=ADDRESS], ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem or unix:PATH "
    "(e.g. tcp:3333:interface=127.0.0.1)"
)


class BadEndpoint(ConfigError):
    pass


def parse_endpoint(description: str, reactor) -> interfaces.IStreamServerEndpoint:
    """The endpoint a ``--listen`` description names, or BadEndpoint saying what is wrong and how to write it."""
    try:
        return endpoints.serverFromString(reactor, description)
    except OSError as e:
        # ssl: reads its key and certificate here.
        name = e.filename or "its key or certificate"
        raise BadEndpoint(
            f"--listen {description!r}: cannot read {name}: {e.strerror}; "
            "give privateKey= and certKey= as readable PEM files"
        ) from None
    except Exception as e:  # strports says "malformed" as ValueError, TypeError, KeyError, IndexError…
        raise BadEndpoint(
            f"--listen {description!r} is not an endpoint ({_reason(e)}); write {ENDPOINT_FORMS}"
        ) from None


def _reason(error):
    text = str(error)
    if isinstance(error, TypeError) and "unexpected keyword argument" in text:
        return "unknown parameter " + text.rsplit(" ", 1)[-1]
    if isinstance(error, ValueError) and text.startswith("invalid literal for int()"):
        return "the port " + text.rsplit(": ", 1)[-1] + " is not a number"
    return text or type(error).__name__


def _inet_address(endpoint):
    """(family, interface, port) of a TCP or TLS endpoint, None for others (unix sockets, systemd)."""
    port = getattr(endpoint, "_port", None)
    interface = getattr(endpoint, "_interface", None)
    if not isinstance(port, int) or interface is None:
        return None
    family = socket.AF_INET6 if isinstance(endpoint, endpoints.TCP6ServerEndpoint) else socket.AF_INET
    return family, interface, port


def probe(description: str, endpoint) -> None:
    """Bind (and at once release) the endpoint's address, raising BadEndpoint if that fails.

    Run before twistd forks, so that a port in use is reported to the
    person starting the server, not cut short in a daemon's status pipe.
    The socket is made as Twisted makes its listening ones (SO_REUSEADDR),
    so what binds here binds there.
    """
    address = _inet_address(endpoint)
    if address is None or address[2] == 0:
        return
    family, interface, port = address
    where = f"{_host_text(interface, family)}:{port}"
    if not 0 <= port <= 65535:
        raise BadEndpoint(f"--listen {description!r}: port {port} is out of range; choose one from 1 to 65535")
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface, port))
    except socket.gaierror as e:
        raise BadEndpoint(
            f"--listen {description!r}: no such interface address {interface!r} ({e.strerror}); "
            "use 127.0.0.1, 0.0.0.0 or one of this machine's addresses"
        ) from None
    except OSError as e:
        raise BadEndpoint(cannot_listen_message(where, e.errno, e.strerror)) from None
    finally:
        sock.close()


def cannot_listen_message(where: str, code, reason: str) -> str:
    if code == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the address is already in use; stop the server using it "
            "(`ss -ltnp` shows which) or choose another port with --listen"
        )
    if code == errno.EACCES:
        return (
            f"cannot listen on {where}: permission denied; ports below 1024 need root or "
            "CAP_NET_BIND_SERVICE, so choose a port above 1023 with --listen"
        )
    if code == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where}: no interface of this machine has that address; "
            "use 127.0.0.1, 0.0.0.0 or one of its own addresses in --listen"
        )
    return f"cannot listen on {where}: {reason}; choose another --listen"


def _host_text(host, family=socket.AF_INET):
    if family == socket.AF_INET6 or ":" in host:
        return f"[{host or '::'}]"
    return host or "0.0.0.0"


class Listener(service.Service):
    """Listens on one endpoint while running; ``url`` names it once it listens."""

    def __init__(self, description: str, endpoint, factory):
        self.description = description
        self.endpoint = endpoint
        self.factory = factory
        self.port = None
        self._waiting = None

    def privilegedStartService(self):
        super().privilegedStartService()
        self._listen()

    def startService(self):
        super().startService()
        if self._waiting is None:
            self._listen()

    def _listen(self):
        failed = []
        synchronous = True

        def refused(failure):
            if synchronous:
                failed.append(failure)
            else:  # an endpoint that listens later (none of the built-in ones)
                log.failure("Cannot listen on {description}", failure, description=self.description)

        self._waiting = self.endpoint.listen(self.factory)
        self._waiting.addCallbacks(self._listening, refused)
        synchronous = False
        if failed:
            error = failed[0].value
            if isinstance(error, CannotListenError):
                where = f"{_host_text(error.interface)}:{error.port}"
                cause = error.socketError
                raise CannotServe(
                    cannot_listen_message(where, getattr(cause, "errno", None), getattr(cause, "strerror", str(cause)))
                ) from None
            raise CannotServe(f"cannot listen on {self.description!r}: {error}") from None

    def _listening(self, port):
        self.port = port
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:3333``, ``https://host:3443`` (for 0.0.0.0: this machine's name), or a unix socket."""
        address = self.port.getHost()
        host = getattr(address, "host", None)
        if host is None:
            return f"unix socket {getattr(address, 'name', address)}"
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        scheme = "https" if isinstance(self.endpoint, endpoints.SSL4ServerEndpoint) else "http"
        return f"{scheme}://{host}:{address.port}"

    def stopService(self):
        super().stopService()
        waiting, self._waiting = self._waiting, None
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        if waiting is not None:
            waiting.cancel()
        return None
