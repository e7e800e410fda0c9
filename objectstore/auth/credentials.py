"""Users and their access keys, kept in the metadata database.

The database file is created 0600: it is where the secrets live.
"""

import secrets
import string
import time
import uuid
from dataclasses import dataclass

from objectstore.errors import InvalidAccessKeyId

_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class User:
    id: str  # the canonical owner id S3 clients see
    name: str
    display_name: str
    admin: bool


@dataclass(frozen=True)
class Caller:
    """The user a request acts for (None: anonymous) and the key it used."""

    user: User = None
    access_key: str = None
    secret: str = None

    @property
    def anonymous(self):
        return self.user is None


ANONYMOUS = Caller()


def new_access_key():
    return "OS" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))


def new_secret_key():
    return secrets.token_urlsafe(30)[:40]


class Credentials:
    # How long a looked-up key is trusted without asking the database again:
    # keys may be deleted by objectstore-manage in another process.
    CACHE_SECONDS = 2.0

    def __init__(self, meta, clock=time.monotonic):
        self.meta = meta
        self._clock = clock
        self._callers = {}

    def lookup(self, access_key):
        """The caller owning *access_key*; unknown keys are refused."""
        cached = self._callers.get(access_key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        row = (
            self.meta.reader()
            .execute(
                "SELECT u.id, u.name, u.display_name, u.admin, k.secret FROM access_keys k"
                " JOIN users u ON u.id = k.user_id WHERE k.access_key = ?",
                (access_key,),
            )
            .fetchone()
        )
        if row is None:
            raise InvalidAccessKeyId(AWSAccessKeyId=access_key)
        uid, name, display, admin, secret = row
        caller = Caller(User(uid, name, display, bool(admin)), access_key, secret)
        if len(self._callers) > 10_000:
            self._callers.clear()
        self._callers[access_key] = (self._clock() + self.CACHE_SECONDS, caller)
        return caller

    def display_name(self, user_id):
        row = self.meta.reader().execute("SELECT display_name FROM users WHERE id = ?", (user_id,)).fetchone()
        return row[0] if row else user_id

    def user(self, name):
        row = (
            self.meta.reader()
            .execute("SELECT id, name, display_name, admin FROM users WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else User(row[0], row[1], row[2], bool(row[3]))

    def users(self):
        return [
            User(r[0], r[1], r[2], bool(r[3]))
            for r in self.meta.reader().execute("SELECT id, name, display_name, admin FROM users ORDER BY name")
        ]

    def create_user(self, name, admin=False, access_key=None, secret=None):
        """Create a user with one key pair (synchronously: set-up and management only)."""
        user = User(uuid.uuid4().hex + uuid.uuid4().hex, name, name, admin)
        access_key = access_key or new_access_key()
        secret = secret or new_secret_key()

        def create(conn):
            conn.execute(
                "INSERT INTO users (id, name, display_name, admin, created) VALUES (?, ?, ?, ?, ?)",
                (user.id, user.name, user.display_name, int(admin), time.time()),
            )
            _insert_key(conn, user.id, access_key, secret)

        self.meta.write_now(create)
        return user, access_key, secret

    def add_key(self, user, access_key=None, secret=None):
        access_key = access_key or new_access_key()
        secret = secret or new_secret_key()
        self.meta.write_now(lambda conn: _insert_key(conn, user.id, access_key, secret))
        return access_key, secret

    def keys(self, user):
        return [
            (k, s)
            for k, s in self.meta.reader().execute(
                "SELECT access_key, secret FROM access_keys WHERE user_id = ? ORDER BY created",
                (user.id,),
            )
        ]


def _insert_key(conn, user_id, access_key, secret):
    conn.execute(
        "INSERT INTO access_keys (access_key, secret, user_id, created) VALUES (?, ?, ?, ?)",
        (access_key, secret, user_id, time.time()),
    )


ADMIN_NAME = "admin"


def ensure_admin(credentials, access_key=None, secret=None):
    """Make sure the admin user exists; returns (keys, created) for logging.

    Keys given (from the environment) are added to the admin if missing, so
    the environment keeps working across restarts; with none given, the first
    start generates a pair.
    """
    admin = credentials.user(ADMIN_NAME)
    if admin is None:
        _, key, sec = credentials.create_user(ADMIN_NAME, admin=True, access_key=access_key, secret=secret)
        return (key, sec), True
    if access_key:
        known = dict(credentials.keys(admin))
        if access_key not in known:
            credentials.add_key(admin, access_key, secret)
            return (access_key, secret), True
        if known[access_key] != secret:
            credentials.meta.write_now(
                lambda conn: conn.execute(
                    "UPDATE access_keys SET secret = ? WHERE access_key = ?", (secret, access_key)
                )
            )
        return (access_key, secret), False
    return None, False
