"""Users and keys in the metadata database, and the short trust in a looked-up key."""

import pytest
from twisted.internet import reactor

from objectstore.auth.credentials import Credentials, ensure_admin
from objectstore.errors import InvalidAccessKeyId
from objectstore.storage.meta import Metadata


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def credentials(tmp_path):
    meta = Metadata(str(tmp_path / "meta.sqlite"), durable=False, reactor=reactor)
    clock = Clock()
    yield Credentials(meta, clock=clock), clock
    meta.close()


def test_lookup_names_the_user_and_unknown_keys_are_refused(credentials):
    creds, _ = credentials
    user, key, secret = creds.create_user("alice")
    caller = creds.lookup(key)
    assert (caller.user, caller.access_key, caller.secret) == (user, key, secret)
    with pytest.raises(InvalidAccessKeyId):
        creds.lookup("NOSUCHKEY")


def test_a_key_deleted_elsewhere_stops_working_once_the_cache_expires(credentials):
    creds, clock = credentials
    _, key, _ = creds.create_user("bob")
    creds.lookup(key)
    # Another process (objectstore-manage) deletes the key.
    creds.meta.write_now(lambda conn: conn.execute("DELETE FROM access_keys WHERE access_key = ?", (key,)))
    assert creds.lookup(key).access_key == key
    clock.now += Credentials.CACHE_SECONDS + 0.1
    with pytest.raises(InvalidAccessKeyId):
        creds.lookup(key)


def test_environment_keys_seed_the_admin_once_and_are_added_when_they_change(credentials):
    creds, _ = credentials
    assert ensure_admin(creds, "AK1", "SK1") == (("AK1", "SK1"), True)
    assert ensure_admin(creds, "AK1", "SK1") == (("AK1", "SK1"), False)
    assert ensure_admin(creds, "AK2", "SK2") == (("AK2", "SK2"), True)
    admin = creds.user("admin")
    assert admin.admin and dict(creds.keys(admin)) == {"AK1": "SK1", "AK2": "SK2"}


def test_without_environment_keys_the_first_start_generates_a_pair(credentials):
    creds, _ = credentials
    (key, secret), created = ensure_admin(creds)
    assert created and len(key) == 20 and len(secret) == 40
    assert ensure_admin(creds) == (None, False)
