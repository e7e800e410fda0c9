"""A live objectstore on an ephemeral port, and the clients that talk to it.

The server runs in the test's own reactor (pytest-twisted); blocking clients
(boto3, libcloud) run in a thread via ``server.blocking``.
"""

import contextlib
import hashlib
import os

import pytest
import pytest_twisted
from twisted.internet import endpoints, reactor, threads

from objectstore.config import Config
from objectstore.index.schema import TABLE_OWNERS
from objectstore.service import build

# The shared helpers assert for the tests that call them: show their failures as a test's own.
pytest.register_assert_rewrite("tests.helpers")

ADMIN_KEYS = ("AKIDADMINFORTESTS001", "admin-secret-for-tests-0000000000000001")

# The index tables a snapshot compares: every table (a new one is covered as soon as it is
# declared) but the store's own bookkeeping: ``garbage``, its list of blobs to unlink, whose
# rows come with any delete and go with whichever write follows, so they tell nothing of what
# a request did (the blob files they stand for are in the snapshot themselves); and
# ``scrub_progress``, where the background scrub keeps its place, on its own schedule.
SNAPSHOT_TABLES = sorted(set(TABLE_OWNERS) - {"garbage", "scrub_progress"})
REGION = "us-east-1"


class LiveServer:
    def __init__(self, store, site, port, data_dir, config):
        self.store = store
        self.site = site
        self.port = port
        self.data_dir = data_dir
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        self.credentials = site.resource.credentials
        self.admin_keys = ADMIN_KEYS

    def create_user(self, name, admin=False):
        """A new user; returns its (access key, secret)."""
        _, access_key, secret = self.credentials.create_user(name, admin=admin)
        return access_key, secret

    def user_id(self, name):
        return self.credentials.user(name).id

    def boto3(self, keys=ADMIN_KEYS, **config):
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=keys[0],
            aws_secret_access_key=keys[1],
            region_name=REGION,
            config=BotoConfig(retries={"max_attempts": 0}, **config),
        )

    def libcloud(self, keys=ADMIN_KEYS):
        from libcloud.storage.drivers.s3 import S3StorageDriver

        return S3StorageDriver(keys[0], keys[1], host="127.0.0.1", port=self.port, secure=False)

    def blocking(self, f, *args, **kwargs):
        """Run a blocking client call in a thread; a Deferred of its result."""
        return threads.deferToThread(f, *args, **kwargs)

    def tmp_files(self):
        """Leftovers in tmp/: neither spare temp files made ahead of need nor
        committed blobs still waiting for their (lazy) rename home."""
        spares = self.store.files.spare_names()
        conn = self.store.index.reader()
        return sorted(
            name
            for name in set(os.listdir(os.path.join(self.data_dir, "tmp"))) - spares
            if conn.execute("SELECT 1 FROM segments WHERE blob = ?", (name,)).fetchone() is None
            and conn.execute("SELECT 1 FROM parts WHERE blob = ?", (name,)).fetchone() is None
        )

    def blob_files(self):
        """Every blob file on disk, at home or in tmp/ (spares aside).

        tmp/ is walked first: a blob only ever moves from tmp/ to blobs/, so
        a rename during the walk cannot hide it (it may be seen twice).
        """
        spares = self.store.files.spare_names()
        found = {}
        for folder in ("tmp", "blobs"):
            for parent, _, names in os.walk(os.path.join(self.data_dir, folder)):
                found.update((name, os.path.join(parent, name)) for name in names if name not in spares)
        return sorted(found.values())

    def settled(self):
        """A Deferred that fires once the store's after-commit tidying (renames, unlinks) is done."""
        return self.store.index.tidied()

    def snapshot(self):
        """Everything a refused request must leave alone: files on disk and the index rows."""
        files = {}
        for folder, _, names in os.walk(self.data_dir):
            for name in names:
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, self.data_dir)
                if rel.startswith(("meta.sqlite", "tmp" + os.sep, "blobs" + os.sep)) or rel == "lock":
                    continue
                with open(path, "rb") as f:
                    files[rel] = hashlib.sha256(f.read()).hexdigest()
        # A committed blob moves from tmp/ to blobs/ after the answer: the
        # same blob wherever it is right now, read wherever it is found.
        for path in self.blob_files():
            name = os.path.basename(path)
            handle = self.store.files.open(name)
            if handle is not None:
                with handle:
                    files["blob:" + name] = hashlib.sha256(handle.read()).hexdigest()
        conn = self.store.index.reader()
        rows = {}
        for table in SNAPSHOT_TABLES:  # each row in order: by all its columns
            columns = len(conn.execute(f"PRAGMA table_info({table})").fetchall())
            order = ", ".join(str(n) for n in range(1, columns + 1))
            rows[table] = conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
        return files, rows


@contextlib.asynccontextmanager
async def live_server(tmp_path, **settings):
    """A server built as twistd builds it, listening on an ephemeral port of 127.0.0.1."""
    data_dir = str(tmp_path / "data")
    config = Config(listen=(), data_dir=data_dir, admin_keys=ADMIN_KEYS, **settings)
    top, site, store = build(config, reactor)
    top.startService()
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    try:
        yield LiveServer(store, site, port.getHost().port, data_dir, config)
    finally:
        await port.stopListening()
        # Waits for registration jobs to stop before the store closes.
        await top.stopService()


@pytest_twisted.async_yield_fixture
async def server(tmp_path):
    async with live_server(tmp_path) as live:
        yield live


@pytest_twisted.async_yield_fixture
async def strict_server(tmp_path):
    """A server started with --strict-region: requests must be signed for its own region."""
    async with live_server(tmp_path, strict_region=True) as live:
        yield live


@pytest.fixture
def bucket_name(request):
    return "test-" + hashlib.md5(request.node.name.encode()).hexdigest()[:12]
