"""``twistd objectstore``: options and the service tree they make."""

import os
from dataclasses import replace

from twisted.application import service, strports
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python import usage

from objectstore import config as configuration
from objectstore.auth.credentials import Credentials, ensure_admin
from objectstore.registry.cloudkey import CloudKey
from objectstore.registry.registrar import Registrar
from objectstore.storage.store import Store
from objectstore.web.request import S3Site
from objectstore.web.root import S3

log = Logger()
DAY = 24 * 3600
# How often expired multipart uploads are looked for (an indexed query, when there are none).
EXPIRY_SWEEP_INTERVAL = 3600.0


class Options(usage.Options):
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
        ["region", None, None, "The region this server reports and signs for [default: us-east-1]."],
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
    ]
    optFlags = [
        ["fsync", None, "Make writes durable before answering them (the default)."],
        ["no-fsync", None, "Skip fsync: faster, but a power loss can lose acknowledged writes."],
    ]

    def __init__(self):
        super().__init__()
        self["listen"] = []

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
            raise usage.UsageError(str(e)) from e

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
        for option, name, parse in (
            ("multipart-expiry", "multipart_expiry", configuration.parse_expiry),
            ("image-workers", "image_workers", configuration.parse_workers),
            ("max-image-size", "max_image_size", configuration.parse_size),
        ):
            if self[option] is not None:
                try:
                    changes[name] = parse(self[option])
                except ValueError as e:
                    raise configuration.ConfigError(str(e)) from e
        return configuration.with_environment(replace(config, **changes), environ)


class StoreService(service.Service):
    """Opens the store (settling crash leftovers) before anything listens.

    twistd binds listening ports in ``privilegedStartService``, before any
    ``startService``: the store must be ready by then, so it opens there too
    (it is the first child of the service tree). Once running, it aborts
    multipart uploads older than ``multipart_expiry`` days, looking every
    hour (or more often, for an expiry shorter than that); *clock* is the
    reactor's, or a test's.
    """

    def __init__(self, store, credentials, config, clock=None, registrar=None):
        self.store = store
        self.credentials = credentials
        self.config = config
        self.registrar = registrar
        self.clock = clock if clock is not None else store.reactor
        self._opened = False
        self._expiry = None

    def privilegedStartService(self):
        self._open()
        super().privilegedStartService()

    def startService(self):
        self._open()
        super().startService()
        if self.registrar is not None:
            self.registrar.start()
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
        if not self._opened:
            self._opened = True
            self.store.start()
            announce_admin(self.credentials, self.config)
            if self.registrar is not None and self.registrar.cloud_key.ensure():
                log.info(
                    "Created the cloud key pair for image bundles in {path}.", path=self.registrar.cloud_key.cert_path
                )

    def stopService(self):
        """Stop the expiry sweeps and registration jobs, then close the store (a Deferred)."""
        super().stopService()
        if self._expiry is not None:
            if self._expiry.running:
                self._expiry.stop()
            self._expiry = None
        jobs = defer.ensureDeferred(self.registrar.stop()) if self.registrar is not None else defer.succeed(None)
        jobs.addCallback(lambda _: self.store.close())
        return jobs


def announce_admin(credentials, config):
    keys = config.admin_keys or (None, None)
    created, fresh = ensure_admin(credentials, *keys)
    if not fresh:
        return
    access_key, secret = created
    if config.admin_keys:
        log.info("Admin access key {access_key} taken from the environment.", access_key=access_key)
        return
    path = os.path.join(config.data_dir, "admin.credentials")
    write_private(path, f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret}\n")
    log.info(
        "Created the admin key pair (shown once; also saved 0600 in {path}):\n"
        "    access key: {access_key}\n    secret key: {secret}",
        path=path,
        access_key=access_key,
        secret=secret,
    )


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def build(config, reactor=None):
    """(MultiService, Site, Store) for *config*: one listening service per endpoint."""
    store = Store(config.data_dir, durable=config.fsync, reactor=reactor, io_threads=config.io_threads)
    credentials = Credentials(store.meta)
    registrar = Registrar(
        store,
        credentials,
        CloudKey(config.data_dir),
        config.data_dir,
        workers=config.image_workers,
        max_image_size=config.max_image_size,
        reactor=store.reactor,
    )
    root = S3(store, credentials, config, registrar)
    top = service.MultiService()
    StoreService(store, credentials, config, registrar=registrar).setServiceParent(top)
    site = S3Site(root, access_log=config.access_log)
    for endpoint in config.listen:
        strports.service(endpoint, site).setServiceParent(top)
    return top, site, store


def makeService(options):
    top, _, _ = build(options.config)
    return top
