"""Users and keys in the metadata database, and the short trust in a looked-up key."""

import pytest
from twisted.internet import reactor

from objectstore.auth.credentials import (
    AccessKeyExists,
    AdminIsPermanent,
    AdminNameReserved,
    Credentials,
    InvalidDisplayName,
    InvalidUserName,
    NoSuchAccessKey,
    NoSuchUser,
    UserExists,
    UserOwnsBuckets,
    ensure_admin,
)
from objectstore.errors import InvalidAccessKeyId
from objectstore.index.database import Index


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def credentials(tmp_path):
    meta = Index(str(tmp_path / "meta.sqlite"), durable=False, reactor=reactor).open()
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
    creds.index.write_now(lambda conn: conn.execute("DELETE FROM access_keys WHERE access_key = ?", (key,)))
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


def rows(creds):
    conn = creds.index.reader()
    return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("users", "access_keys")]


def test_a_user_gets_the_display_name_given_or_its_name(credentials):
    creds, _ = credentials
    alice, _, _ = creds.create_user("alice", display_name="Alice Liddell")
    bob, _, _ = creds.create_user("bob")
    assert creds.display_name(alice.id) == "Alice Liddell" and creds.user("alice") == alice
    assert creds.display_name(bob.id) == "bob"


def test_a_taken_name_is_refused_and_nothing_is_added(credentials):
    creds, _ = credentials
    creds.create_user("alice")
    before = rows(creds)
    with pytest.raises(UserExists, match="'alice' already exists"):
        creds.create_user("alice", admin=True)
    assert rows(creds) == before


@pytest.mark.parametrize("name", ["", "a b", "tab\t", "x" * 65, "é", "a/b", "new\nline"])
def test_names_outside_the_iam_alphabet_are_refused(credentials, name):
    creds, _ = credentials
    with pytest.raises(InvalidUserName):
        creds.create_user(name)
    assert rows(creds) == [[], []]


@pytest.mark.parametrize("display_name", ["", "   ", "bell\x07", "two\nlines", "x" * 129])
def test_display_names_must_be_printable_text(credentials, display_name):
    creds, _ = credentials
    with pytest.raises(InvalidDisplayName):
        creds.create_user("carol", display_name=display_name)
    assert rows(creds) == [[], []]


def test_the_admin_name_is_only_for_an_admin(credentials):
    creds, _ = credentials
    with pytest.raises(AdminNameReserved):
        creds.create_user("admin")
    # ensure_admin still seeds it (as an admin), and the environment keys still work.
    assert ensure_admin(creds, "AK1", "SK1") == (("AK1", "SK1"), True)
    assert creds.lookup("AK1").user.admin


def test_an_access_key_in_use_is_not_given_to_another_user(credentials):
    creds, _ = credentials
    alice, key, _ = creds.create_user("alice")
    before = rows(creds)
    with pytest.raises(AccessKeyExists):
        creds.create_user("bob", access_key=key, secret="other")
    with pytest.raises(AccessKeyExists):
        creds.add_key(alice, access_key=key, secret="other")
    assert rows(creds) == before


def test_listed_keys_carry_no_secrets_and_counts_cover_every_user(credentials):
    creds, _ = credentials
    alice, first, _ = creds.create_user("alice")
    second, _ = creds.add_key(alice)
    bob, _, _ = creds.create_user("bob")
    assert [k.access_key for k in creds.access_keys(alice)] == [first, second]
    assert not hasattr(creds.access_keys(alice)[0], "secret")
    assert creds.key_counts() == {alice.id: 2, bob.id: 1}


def test_deleting_a_user_deletes_its_keys_and_this_process_forgets_them_at_once(credentials):
    creds, _ = credentials
    alice, first, _ = creds.create_user("alice")
    second, _ = creds.add_key(alice)
    creds.create_user("bob")
    creds.lookup(first)  # cached
    assert creds.delete_user("alice") == 2
    assert creds.user("alice") is None
    assert [u.name for u in creds.users()] == ["bob"]
    for key in (first, second):
        with pytest.raises(InvalidAccessKeyId):
            creds.lookup(key)


def test_a_user_owning_a_bucket_is_not_deleted(credentials):
    creds, _ = credentials
    alice, key, _ = creds.create_user("alice")
    creds.index.write_now(
        lambda conn: conn.execute(
            "INSERT INTO buckets (name, owner, created, region, acl) VALUES ('photos', ?, 0, 'us-east-1', '{}')",
            (alice.id,),
        )
    )
    before = rows(creds)
    with pytest.raises(UserOwnsBuckets, match="photos") as refused:
        creds.delete_user("alice")
    assert refused.value.buckets == ["photos"]
    assert rows(creds) == before
    assert creds.lookup(key).user == alice


def test_the_admin_user_is_not_deleted(credentials):
    creds, _ = credentials
    ensure_admin(creds, "AK1", "SK1")
    with pytest.raises(AdminIsPermanent):
        creds.delete_user("admin")
    assert creds.lookup("AK1").user.name == "admin"


def test_unknown_users_and_keys_are_named_in_the_refusal(credentials):
    creds, _ = credentials
    with pytest.raises(NoSuchUser, match="'nobody'"):
        creds.delete_user("nobody")
    with pytest.raises(NoSuchAccessKey, match="'NOSUCHKEY'"):
        creds.delete_key("NOSUCHKEY")


def test_deleting_a_key_leaves_the_users_other_keys(credentials):
    creds, _ = credentials
    alice, first, _ = creds.create_user("alice")
    second, _ = creds.add_key(alice)
    creds.lookup(first)
    assert creds.delete_key(first) == "alice"
    with pytest.raises(InvalidAccessKeyId):
        creds.lookup(first)
    assert creds.lookup(second).user == alice


def test_a_key_is_not_added_to_a_user_deleted_meanwhile(credentials):
    creds, _ = credentials
    alice, _, _ = creds.create_user("alice")
    creds.delete_user("alice")
    with pytest.raises(NoSuchUser):
        creds.add_key(alice)
    assert rows(creds) == [[], []]
