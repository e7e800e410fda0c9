"""``twistd objectstore``: options and the service tree they make."""

import contextlib
import os
import sqlite3
import sys
from dataclasses import replace

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python import usage

import twisted
from objectstore import __version__
from objectstore import config as configuration
from objectstore.auth.credentials import Credentials, ensure_admin
from objectstore.index.schema import SchemaTooNew
from objectstore.listeners import Listener, parse_endpoint, probe
from objectstore.registry.cloudkey import CloudKey, CloudKeyError
from objectstore.registry.registrar import Registrar
from objectstore.scrub import BackgroundScrub
from objectstore.startup import PROGRAM, CannotServe, StartupError, check_data_dir, report_cannot_serve
from objectstore.storage.datadir import DataDirInUse
from objectstore.storage.store import Store
from objectstore.web.limits import ConnectionLimits, default_max_connections
from objectstore.web.root import S3
from objectstore.web.site import S3Site

log = Logger()
DAY = 24 * 3600
ADMIN_CREDENTIALS = "admin.credentials"
# How often expired multipart uploads are looked for (an indexed query, when there are none).
EXPIRY_SWEEP_INTERVAL = 3600.0


class Options(usage.Options):
    """``twistd objectstore``'s options (and ``objectstore``'s: see StandaloneOptions)."""

    synopsis = "[options]"
    longdesc = (
        "Serve an S3-compatible object store from a data folder. Buckets and objects are kept "
        "as blob files plus an SQLite index; an admin key pair is created on first start "
        "(or taken from OBJECTSTORE_ACCESS_KEY / OBJECTSTORE_SECRET_KEY)."
    )
    optParameters = [
        ["data-dir", "d", None, "Folder for buckets, objects and metadata [default: ./data]."],
        ["config", "c", None, "INI file with an [objectstore] section (see etc/objectstore.conf)."],
        ["domain", None, None, "Serve BUCKET.DOMAIN as virtual-host style addressing."],
        [
            "region",
            None,
            None,
            "The region this server reports (requests signed for any region are accepted unless --strict-region) "
            "[default: us-east-1].",
        ],
        ["access-log", None, None, "Log every request to FILE, or to the twistd log with '-' [default: none]."],
        [
            "multipart-expiry",
            None,
            None,
            "Abort multipart uploads older than DAYS (fractions allowed; 0: never) [default: 7].",
        ],
        ["image-workers", None, None, "Image bundles unpacked at the same time [default: 2]."],
        [
            "max-image-size",
            None,
            None,
            "Refuse images that unpack to more than SIZE bytes (K, M, G, T suffixes) [default: 64G].",
        ],
        [
            "header-timeout",
            None,
            None,
            "Close a connection whose request headers are not whole SECONDS after their first byte [default: 20].",
        ],
        [
            "min-body-rate",
            None,
            None,
            "Answer RequestTimeout to a body slower than RATE bytes a second over 20 s (K, M suffixes; "
            "0: no minimum) [default: 1K].",
        ],
        [
            "max-connections",
            None,
            None,
            "Answer SlowDown to connections past N open at once (0: no cap) "
            "[default: half the open-file limit, at most 4096].",
        ],
        [
            "max-connections-per-address",
            None,
            None,
            "Answer SlowDown to connections past N open at once from one client address (0: no cap) [default: 256].",
        ],
        [
            "min-free-space",
            None,
            None,
            "Refuse writes (never deletes) that would leave less than SIZE free on the data dir's filesystem: "
            "bytes (K, M, G, T suffixes), a percentage of the filesystem, or both, the larger counting "
            "(256M, 1%); 0: no reserve [default: 256M, 1%].",
        ],
        [
            "scrub-rate",
            None,
            None,
            "Read every stored object and image against its checksum in the background, at most RATE bytes "
            "a second (K, M, G suffixes), resuming after restarts, one pass a day at most; 0: no background "
            "scrub [default: 10M].",
        ],
    ]
    optFlags = [
        ["fsync", None, "Make writes durable before answering them (the default)."],
        ["no-fsync", None, "Skip fsync: faster, but a power loss can lose acknowledged writes."],
        [
            "strict-region",
            None,
            "Refuse requests signed for a region other than --region, and other bucket location constraints.",
        ],
    ]

    def __init__(self):
        super().__init__()
        self["listen"] = []

    def command(self):
        """How the user started us: ``objectstore`` or ``twistd objectstore`` (for messages)."""
        return f"twistd {PROGRAM}" if self.parent is not None else PROGRAM

    def parseOptions(self, options=None):
        """As usage.Options does, but a bad command line is one line on stderr and exit status 2, not the help."""
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            print(f"{PROGRAM}: {e}; see '{self.command()} --help'", file=sys.stderr)
            raise SystemExit(2) from None

    def opt_version(self):
        """Print objectstore's version (and Twisted's and Python's) and exit."""
        python = ".".join(str(part) for part in sys.version_info[:3])
        print(f"{PROGRAM} {__version__} (Twisted {twisted.__version__}, Python {python})")
        raise SystemExit(0)

    def opt_listen(self, endpoint):
        """A strports endpoint to listen on, e.g. tcp:3333:interface=127.0.0.1 or
        ssl:3443:privateKey=key.pem:certKey=cert.pem (repeatable)
        [default: tcp:3333:interface=127.0.0.1]."""
        self["listen"].append(endpoint)

    def postOptions(self):
        if self["fsync"] and self["no-fsync"]:
            raise usage.UsageError("--fsync and --no-fsync exclude each other")
        try:
            self.config = self.to_config(os.environ)
        except configuration.ConfigError as e:
            # A setting's error, not the command line's: one line, without the help.
            raise StartupError(str(e)) from None

    def to_config(self, environ):
        config = configuration.Config()
        if self["config"]:
            config = configuration.from_file(self["config"], config)
        changes = {}
        if self["listen"]:
            changes["listen"] = tuple(self["listen"])
        for option, name in (
            ("data-dir", "data_dir"),
            ("domain", "domain"),
            ("region", "region"),
            ("access-log", "access_log"),
        ):
            if self[option] is not None:
                changes[name] = self[option]
        if self["fsync"] or self["no-fsync"]:
            changes["fsync"] = bool(self["fsync"])
        if self["strict-region"]:
            changes["strict_region"] = True
        for option, name, parse in (
            ("multipart-expiry", "multipart_expiry", configuration.parse_expiry),
            ("image-workers", "image_workers", configuration.parse_workers),
            ("max-image-size", "max_image_size", configuration.parse_size),
            ("header-timeout", "header_timeout", configuration.parse_seconds),
            ("min-body-rate", "min_body_rate", configuration.parse_rate),
            ("max-connections", "max_connections", configuration.parse_cap),
            ("max-connections-per-address", "max_connections_per_address", configuration.parse_cap),
            ("min-free-space", "min_free_space", configuration.parse_min_free_space),
            ("scrub-rate", "scrub_rate", configuration.parse_rate),
        ):
            if self[option] is not None:
                try:
                    changes[name] = parse(self[option])
                except ValueError as e:
                    raise configuration.ConfigError(f"--{option} {self[option]}: {e}") from None
        return configuration.with_environment(replace(config, **changes), environ)


class StandaloneOptions(Options):
    """The ``objectstore`` command's options: the same, under its own name."""

    synopsis = f"Usage: {PROGRAM} [options]"


class StoreService(service.Service):
    """Opens the store (settling crash leftovers) before the reactor runs.

    It opens in ``privilegedStartService``, after the listeners have bound
    their ports (see Server): nothing is created in the data folder by a
    server that cannot listen. Once running, it aborts multipart uploads
    older than ``multipart_expiry`` days, looking every hour (or more often,
    for an expiry shorter than that); *clock* is the reactor's, or a test's.
    """

    def __init__(self, store, credentials, config, clock=None, registrar=None, scrubber=None):
        self.store = store
        self.scrubber = scrubber
        self.credentials = credentials
        self.config = config
        self.registrar = registrar
        self.clock = clock if clock is not None else store.reactor
        self._opened = False
        self._expiry = None
        # Where the admin's keys are, for the "serving" line (see Server).
        self.admin_keys_at = None

    def privilegedStartService(self):
        self._open()
        super().privilegedStartService()

    def startService(self):
        self._open()
        super().startService()
        if self.registrar is not None:
            self.registrar.start()
        if self.scrubber is not None:
            self.store.scrubber = self.scrubber
            self.scrubber.start()
        max_age = self.config.multipart_expiry * DAY
        if max_age > 0 and self._expiry is None:
            self._expiry = task.LoopingCall(self.expire_uploads, max_age)
            self._expiry.clock = self.clock
            self._expiry.start(min(EXPIRY_SWEEP_INTERVAL, max_age), now=True)

    def expire_uploads(self, max_age):
        """One sweep: abort the uploads older than *max_age* seconds (a Deferred; failures are logged)."""
        d = defer.ensureDeferred(self.store.multipart.expire(max_age, now=self.clock.seconds()))

        def report(count):
            if count:
                log.info("Aborted {count} multipart upload(s) older than {days} days.", count=count, days=max_age / DAY)

        d.addCallback(report)
        # A failed sweep is tried again at the next one; the loop must go on.
        d.addErrback(lambda failure: log.failure("Expiring multipart uploads failed", failure))
        return d

    def _open(self):
        if self._opened:
            return
        self._opened = True
        data_dir = self.store.data_dir
        try:
            self.store.start()
            self.admin_keys_at = announce_admin(self.credentials, self.config, data_dir)
            if self.registrar is not None and self.registrar.cloud_key.ensure():
                log.info(
                    "Created the cloud key pair for image bundles in {path}.", path=self.registrar.cloud_key.cert_path
                )
        except DataDirInUse as e:
            raise CannotServe(f"{e}; stop it, or choose another --data-dir") from None
        except SchemaTooNew as e:
            raise CannotServe(str(e)) from None
        except CloudKeyError as e:
            raise CannotServe(str(e)) from None
        except sqlite3.DatabaseError as e:
            raise CannotServe(f"cannot open the index in {data_dir}: {e}") from None
        except OSError as e:
            where = e.filename or data_dir
            raise CannotServe(f"cannot open the data dir: {where}: {e.strerror}") from None

    def stopService(self):
        """Stop the expiry sweeps, the scrub and registration jobs, then close the store (a Deferred)."""
        super().stopService()
        if self._expiry is not None:
            if self._expiry.running:
                self._expiry.stop()
            self._expiry = None
        scrubbed = defer.succeed(None)
        if self.scrubber is not None:
            self.store.scrubber = None
            scrubbed = self.scrubber.stop()
        jobs = defer.ensureDeferred(self.registrar.stop()) if self.registrar is not None else defer.succeed(None)
        jobs = defer.gatherResults([scrubbed, jobs])
        jobs.addCallback(lambda _: self.store.close())
        return jobs


def announce_admin(credentials, config, data_dir):
    """Make sure the admin user has keys; returns where a person finds them (for the log).

    The secret never goes to the log (a daemon's log file is often readable
    by others): a generated pair is saved 0600 in admin.credentials, which
    the log names; only a person at a terminal in the foreground sees the
    secret itself.
    """
    path = os.path.join(data_dir, ADMIN_CREDENTIALS)
    keys = config.admin_keys or (None, None)
    created, fresh = ensure_admin(credentials, *keys)
    if config.admin_keys:
        if fresh:
            log.info("Admin access key {access_key} taken from the environment.", access_key=created[0])
        return "OBJECTSTORE_ACCESS_KEY / OBJECTSTORE_SECRET_KEY"
    if not fresh:
        return path if os.path.exists(path) else "objectstore-manage key create admin"
    access_key, secret = created
    write_private(path, f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret}\n")
    log.info(
        "Created the admin user, access key {access_key}; its secret key is in {path} (mode 0600).",
        access_key=access_key,
        path=path,
    )
    terminal = sys.__stdout__
    if terminal is not None and terminal.isatty():
        terminal.write(
            f"\nThe admin key pair (also in {path}):\n    access key: {access_key}\n    secret key: {secret}\n\n"
        )
        terminal.flush()
    return path


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Server(service.MultiService):
    """The whole server: listeners and the store, started and stopped in the order that loses nothing.

    Ports are bound first and the store opened after them, so that a server
    that cannot listen creates nothing (neither the data folder nor an admin
    key it would then not serve). Both happen before the reactor runs, so no
    request is answered before the store is open. At the end the listeners
    stop before the store closes.
    """

    def __init__(self, store_service, listeners, config):
        super().__init__()
        self.store_service = store_service
        self.listeners = list(listeners)
        self.config = config
        for child in (*self.listeners, store_service):
            child.setServiceParent(self)

    def privilegedStartService(self):
        service.Service.privilegedStartService(self)
        with _logged_if_cannot_serve():
            for listener in self.listeners:
                listener.privilegedStartService()
            self.store_service.privilegedStartService()

    def startService(self):
        service.Service.startService(self)
        with _logged_if_cannot_serve():
            self.store_service.startService()
            for listener in self.listeners:
                listener.startService()
        for listener in self.listeners:
            if listener.port is not None:
                log.info(
                    "objectstore {version} serving S3 on {url}/ (data dir {data_dir}, embedded backend: blob files "
                    "+ SQLite index; admin keys: {keys})",
                    version=__version__,
                    url=listener.url,
                    data_dir=self.store_service.store.data_dir,
                    keys=self.store_service.admin_keys_at,
                )

    def stopService(self):
        service.Service.stopService(self)
        stopped = defer.DeferredList([defer.maybeDeferred(listener.stopService) for listener in self.listeners])
        stopped.addCallback(lambda _: self.store_service.stopService())
        return stopped


@contextlib.contextmanager
def _logged_if_cannot_serve():
    """Log a CannotServe in full: a daemon's parent shows only its first 100 bytes, then points to the log."""
    try:
        yield
    except CannotServe as e:
        log.critical("{program}: {problem}", program=PROGRAM, problem=str(e))
        raise


def build(config, reactor=None):
    """(Server, Site, Store) for *config*: one listener per endpoint. Touches no disk.

    Raises BadEndpoint (a ConfigError) for a ``--listen`` that does not parse.
    """
    if reactor is None:
        from twisted.internet import reactor
    store = Store(
        config.data_dir,
        durable=config.fsync,
        reactor=reactor,
        io_threads=config.io_threads,
        min_free_space=config.min_free_space,
    )
    credentials = Credentials(store.index)
    registrar = Registrar(
        store,
        credentials,
        CloudKey(store.data_dir),
        store.data_dir,
        workers=config.image_workers,
        max_image_size=config.max_image_size,
        reactor=store.reactor,
    )
    root = S3(store, credentials, config, registrar)
    site = S3Site(root, access_log=config.access_log, limits=connection_limits(config))
    listeners = [Listener(description, parse_endpoint(description, reactor), site) for description in config.listen]
    scrubber = BackgroundScrub(store, registrar.catalog, config.scrub_rate) if config.scrub_rate > 0 else None
    store_service = StoreService(store, credentials, config, registrar=registrar, scrubber=scrubber)
    return Server(store_service, listeners, config), site, store


def connection_limits(config: configuration.Config) -> ConnectionLimits:
    """The limits on slow and greedy clients that *config* sets."""
    total = config.max_connections
    return ConnectionLimits(
        header_timeout=config.header_timeout,
        min_body_rate=config.min_body_rate,
        max_connections=default_max_connections() if total is None else total,
        max_connections_per_address=config.max_connections_per_address,
    )


def makeService(options):
    """twistd's entry: everything that can stop the server is checked here, before it daemonises."""
    config = options.config
    try:
        top, _, _ = build(config)
        for listener in top.listeners:
            probe(listener.description, listener.endpoint)
    except configuration.ConfigError as e:
        raise StartupError(str(e)) from None
    check_data_dir(config.data_dir)
    # What fails once started (CannotServe) is one line too, when in the foreground.
    sys.excepthook = report_cannot_serve(sys.excepthook)
    return top
