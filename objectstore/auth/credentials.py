"""Users and their access keys, kept in the index (objectstore/index).

The database file is created 0600: it is where the secrets live. The server
reads it; ``objectstore-manage`` changes it, possibly from another process
while the server runs, which is why looked-up keys are trusted only briefly.
"""

import re
import secrets
import string
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from objectstore.errors import InvalidAccessKeyId
from objectstore.storage.rows import bucket_names_owned_by

if TYPE_CHECKING:
    from objectstore.index.database import Index

_KEY_ALPHABET = string.ascii_uppercase + string.digits
# The characters and length AWS IAM allows in a user name: no spaces, so a
# name is one word in objectstore-manage's output.
_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_DISPLAY_NAME_MAX = 128
# The user the server seeds (and re-seeds at start) from the environment.
ADMIN_NAME = "admin"


class CredentialsError(Exception):
    """A change to users or keys that the store refuses (a management error, not an S3 one)."""


class InvalidUserName(CredentialsError):
    def __init__(self, name: str) -> None:
        super().__init__(f"invalid user name {name!r}: use 1 to 64 letters, digits or any of + = , . @ _ -")


class InvalidDisplayName(CredentialsError):
    def __init__(self, display_name: str) -> None:
        super().__init__(f"invalid display name {display_name!r}: use 1 to {_DISPLAY_NAME_MAX} printable characters")


class UserExists(CredentialsError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a user named {name!r} already exists")


class NoSuchUser(CredentialsError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no user named {name!r}")


class AccessKeyExists(CredentialsError):
    def __init__(self, access_key: str) -> None:
        super().__init__(f"access key {access_key} is already in use")


class NoSuchAccessKey(CredentialsError):
    def __init__(self, access_key: str) -> None:
        super().__init__(f"no access key {access_key!r}")


class UserOwnsBuckets(CredentialsError):
    def __init__(self, name: str, buckets: list[str]) -> None:
        shown = ", ".join(buckets[:10]) + (", ..." if len(buckets) > 10 else "")
        super().__init__(
            f"user {name!r} still owns {len(buckets)} bucket(s): {shown}; "
            "empty and delete them first (a bucket nobody owns could not be managed)"
        )
        self.buckets = buckets


class InvalidCertificate(CredentialsError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"not a PEM X.509 certificate: {reason}")


class NoSuchCertificate(CredentialsError):
    def __init__(self, name: str, fingerprint: str) -> None:
        super().__init__(f"user {name} has no certificate {fingerprint}")


class AdminIsPermanent(CredentialsError):
    def __init__(self) -> None:
        super().__init__(
            f"the {ADMIN_NAME!r} user cannot be deleted (the server creates it again at start); delete its keys instead"
        )


class AdminNameReserved(CredentialsError):
    def __init__(self) -> None:
        super().__init__(f"{ADMIN_NAME!r} is the name of the administrator the server seeds: it can only be an admin")


@dataclass(frozen=True)
class User:
    id: str  # the canonical owner id S3 clients see
    name: str
    display_name: str
    admin: bool


@dataclass(frozen=True)
class Caller:
    """The user a request acts for (None: anonymous) and the key it used."""

    user: Optional[User] = None
    access_key: Optional[str] = None
    secret: Optional[str] = None

    @property
    def anonymous(self) -> bool:
        return self.user is None


ANONYMOUS = Caller()


@dataclass(frozen=True)
class Certificate:
    """A certificate a user signs image bundles with."""

    fingerprint: str  # SHA-256 of the DER form, hex
    subject: str
    not_after: float
    added: float


@dataclass(frozen=True)
class AccessKey:
    """A key as listed: never its secret, which is shown once, when it is made."""

    access_key: str
    created: float


def new_access_key() -> str:
    return "OS" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))


def new_secret_key() -> str:
    return secrets.token_urlsafe(30)[:40]


class Credentials:
    # How long a looked-up key is trusted without asking the database again:
    # keys may be deleted by objectstore-manage in another process.
    CACHE_SECONDS = 2.0

    def __init__(self, index: "Index", clock: Callable[[], float] = time.monotonic) -> None:
        self.index = index
        self._clock = clock
        self._callers: dict[str, tuple[float, Caller]] = {}

    def lookup(self, access_key: str) -> Caller:
        """The caller owning *access_key*; unknown keys are refused."""
        cached = self._callers.get(access_key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        row = (
            self.index.reader()
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

    def display_name(self, user_id: str) -> str:
        row = self.index.reader().execute("SELECT display_name FROM users WHERE id = ?", (user_id,)).fetchone()
        return row[0] if row else user_id

    def user_exists(self, user_id: str) -> bool:
        """Is there a user with this canonical id? (A primary-key lookup.)"""
        return self.index.reader().execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is not None

    def user(self, name: str) -> Optional[User]:
        return self._user_where("name", name)

    def user_by_id(self, user_id: str) -> Optional[User]:
        return self._user_where("id", user_id)

    def _user_where(self, column, value):
        row = (
            self.index.reader()
            .execute(f"SELECT id, name, display_name, admin FROM users WHERE {column} = ?", (value,))
            .fetchone()
        )
        return None if row is None else User(row[0], row[1], row[2], bool(row[3]))

    def users(self) -> list[User]:
        return [
            User(r[0], r[1], r[2], bool(r[3]))
            for r in self.index.reader().execute("SELECT id, name, display_name, admin FROM users ORDER BY name")
        ]

    def create_user(
        self,
        name: str,
        admin: bool = False,
        access_key: Optional[str] = None,
        secret: Optional[str] = None,
        display_name: Optional[str] = None,
    ) -> tuple[User, str, str]:
        """Create a user with one key pair (synchronously: set-up and management only)."""
        display_name = name if display_name is None else display_name
        _check_names(name, display_name, admin)
        user = User(uuid.uuid4().hex + uuid.uuid4().hex, name, display_name, admin)
        access_key = access_key or new_access_key()
        secret = secret or new_secret_key()

        def create(conn):
            # Checked inside the transaction: two managers racing cannot both win.
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserExists(name)
            conn.execute(
                "INSERT INTO users (id, name, display_name, admin, created) VALUES (?, ?, ?, ?, ?)",
                (user.id, user.name, user.display_name, int(admin), time.time()),
            )
            _insert_key(conn, user.id, access_key, secret)

        self.index.write_now(create)
        return user, access_key, secret

    def add_key(self, user: User, access_key: Optional[str] = None, secret: Optional[str] = None) -> tuple[str, str]:
        access_key = access_key or new_access_key()
        secret = secret or new_secret_key()

        def add(conn):
            # The user may have been deleted since it was looked up.
            if conn.execute("SELECT 1 FROM users WHERE id = ?", (user.id,)).fetchone() is None:
                raise NoSuchUser(user.name)
            _insert_key(conn, user.id, access_key, secret)

        self.index.write_now(add)
        return access_key, secret

    def keys(self, user: User) -> list[tuple[str, str]]:
        return [
            (k, s)
            for k, s in self.index.reader().execute(
                "SELECT access_key, secret FROM access_keys WHERE user_id = ? ORDER BY created",
                (user.id,),
            )
        ]

    def access_keys(self, user: User) -> list[AccessKey]:
        """The user's keys, oldest first, without their secrets."""
        return [
            AccessKey(k, created)
            for k, created in self.index.reader().execute(
                "SELECT access_key, created FROM access_keys WHERE user_id = ? ORDER BY created, access_key",
                (user.id,),
            )
        ]

    def key_counts(self) -> dict[str, int]:
        """{user id: number of access keys} for every user with a key."""
        return dict(self.index.reader().execute("SELECT user_id, COUNT(*) FROM access_keys GROUP BY user_id"))

    def delete_user(self, name: str) -> int:
        """Delete a user and its keys; the number of keys deleted.

        Refused while the user owns a bucket: nobody could manage a bucket
        whose owner is gone. Objects it wrote in other users' buckets stay,
        under their bucket owner's control.
        """
        if name == ADMIN_NAME:
            raise AdminIsPermanent()

        def delete(conn):
            row = conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NoSuchUser(name)
            user_id = row[0]
            # Storage's own query, in this transaction: no bucket can be made for the user meanwhile.
            buckets = bucket_names_owned_by(conn, user_id)
            if buckets:
                raise UserOwnsBuckets(name, buckets)
            keys = [k for (k,) in conn.execute("SELECT access_key FROM access_keys WHERE user_id = ?", (user_id,))]
            conn.execute("DELETE FROM access_keys WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM user_certificates WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
            return keys

        keys = self.index.write_now(delete)
        self._forget(keys)
        return len(keys)

    # -- bundle-signing certificates ---------------------------------------

    def add_certificate(self, user: User, pem: bytes) -> Certificate:
        """Record a PEM certificate *user* signs bundles with; its Certificate."""
        certificate, canonical_pem = _read_certificate(pem)

        def add(conn):
            conn.execute(
                "INSERT OR REPLACE INTO user_certificates (user_id, fingerprint, pem, added) VALUES (?, ?, ?, ?)",
                (user.id, certificate.fingerprint, canonical_pem.decode("ascii"), certificate.added),
            )
            return certificate

        return self.index.write_now(add)

    def certificates(self, user: User) -> list[Certificate]:
        rows = self.index.reader().execute(
            "SELECT pem, added FROM user_certificates WHERE user_id = ? ORDER BY added", (user.id,)
        )
        return [replace(_read_certificate(pem.encode("ascii"))[0], added=added) for pem, added in rows]

    def certificate_pems(self, user_id: str) -> list[bytes]:
        """The PEM certificates (bytes) the user with canonical id *user_id* signs bundles with."""
        rows = self.index.reader().execute("SELECT pem FROM user_certificates WHERE user_id = ?", (user_id,))
        return [pem.encode("ascii") for (pem,) in rows]

    def delete_certificate(self, user: User, fingerprint: str) -> None:
        def delete(conn):
            cursor = conn.execute(
                "DELETE FROM user_certificates WHERE user_id = ? AND fingerprint = ?", (user.id, fingerprint.lower())
            )
            if cursor.rowcount == 0:
                raise NoSuchCertificate(user.name, fingerprint)

        self.index.write_now(delete)

    def delete_key(self, access_key: str) -> Optional[str]:
        """Delete one access key; the name of the user that held it."""

        def delete(conn):
            row = conn.execute(
                "SELECT u.name FROM access_keys k LEFT JOIN users u ON u.id = k.user_id WHERE k.access_key = ?",
                (access_key,),
            ).fetchone()
            if row is None:
                raise NoSuchAccessKey(access_key)
            conn.execute("DELETE FROM access_keys WHERE access_key = ?", (access_key,))
            return row[0]

        owner = self.index.write_now(delete)
        self._forget([access_key])
        return owner

    def _forget(self, access_keys: Iterable[str]) -> None:
        """Drop deleted keys from this process's cache at once (other processes wait for expiry)."""
        for access_key in access_keys:
            self._callers.pop(access_key, None)


def _read_certificate(pem):
    """(Certificate, the certificate alone as PEM) of PEM bytes."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise InvalidCertificate(str(e)) from None
    described = Certificate(
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        subject=certificate.subject.rfc4514_string(),
        not_after=certificate.not_valid_after_utc.timestamp(),
        added=time.time(),
    )
    return described, certificate.public_bytes(serialization.Encoding.PEM)


def _check_names(name, display_name, admin):
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise InvalidUserName(name)
    if name == ADMIN_NAME and not admin:
        raise AdminNameReserved()
    # Printable: the display name goes into S3 XML, where control characters cannot.
    if not display_name.strip() or len(display_name) > _DISPLAY_NAME_MAX or not display_name.isprintable():
        raise InvalidDisplayName(display_name)


def _insert_key(conn, user_id, access_key, secret):
    if conn.execute("SELECT 1 FROM access_keys WHERE access_key = ?", (access_key,)).fetchone():
        raise AccessKeyExists(access_key)
    conn.execute(
        "INSERT INTO access_keys (access_key, secret, user_id, created) VALUES (?, ?, ?, ?)",
        (access_key, secret, user_id, time.time()),
    )


def ensure_admin(
    credentials: Credentials, access_key: Optional[str] = None, secret: Optional[str] = None
) -> tuple[Optional[tuple[str, Optional[str]]], bool]:
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
            credentials.index.write_now(
                lambda conn: conn.execute(
                    "UPDATE access_keys SET secret = ? WHERE access_key = ?", (secret, access_key)
                )
            )
        return (access_key, secret), False
    return None, False
