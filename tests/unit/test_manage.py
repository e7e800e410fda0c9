"""objectstore-manage, run in-process through main(argv) on a real data folder."""

import os
import stat

import pytest
import pytest_twisted
from twisted.internet import reactor

from objectstore.auth.credentials import Credentials
from objectstore.index.database import Index
from objectstore.manage import main
from objectstore.storage.store import Store


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


def manage(capsys, *argv):
    """(exit status, stdout, stderr) of one command."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def pairs(out):
    return dict(line.split("=", 1) for line in out.splitlines())


def table(out):
    header, *rows = out.splitlines()
    return header.split(), [row.split(None, len(header.split()) - 1) for row in rows]


def index_rows(data_dir):
    """The users and keys the folder holds, read independently of the command."""
    meta = Index(os.path.join(data_dir, "meta.sqlite"), durable=False, reactor=None).open()
    try:
        conn = meta.reader()
        return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("users", "access_keys")]
    finally:
        meta.close()


def lookup(data_dir, access_key):
    meta = Index(os.path.join(data_dir, "meta.sqlite"), durable=False, reactor=None).open()
    try:
        return Credentials(meta).lookup(access_key)
    finally:
        meta.close()


def test_user_create_prints_a_pair_that_names_the_new_user(capsys, data_dir):
    status, out, err = manage(capsys, "--data-dir", data_dir, "user", "create", "alice")
    assert status == 0
    created = pairs(out)
    assert list(created) == ["name", "id", "admin", "access_key", "secret_key"]
    caller = lookup(data_dir, created["access_key"])
    assert caller.secret == created["secret_key"]
    assert (caller.user.name, caller.user.id, caller.user.admin) == ("alice", created["id"], False)
    # A fresh folder is made private, as the server makes it, and the secrets file owner-only.
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(data_dir, "meta.sqlite")).st_mode) == 0o600
    assert "new data folder" in err


def test_options_may_follow_the_name(capsys, data_dir):
    status, out, _ = manage(capsys, "user", "create", "root2", "--admin", "--display-name", "Ops Team", "-d", data_dir)
    assert status == 0 and pairs(out)["admin"] == "yes"
    user = lookup(data_dir, pairs(out)["access_key"]).user
    assert user.admin and user.display_name == "Ops Team"


def test_user_list_shows_name_id_admin_key_count_and_display_name(capsys, data_dir):
    manage(capsys, "-d", data_dir, "user", "create", "bob", "--display-name", "Bob the Builder")
    alice = pairs(manage(capsys, "-d", data_dir, "user", "create", "alice", "--admin")[1])
    manage(capsys, "-d", data_dir, "key", "create", "alice")
    status, out, _ = manage(capsys, "-d", data_dir, "user", "list")
    assert status == 0
    header, rows = table(out)
    assert header == ["NAME", "ID", "ADMIN", "KEYS", "DISPLAY_NAME"]
    assert rows[0] == ["alice", alice["id"], "yes", "2", "alice"]
    assert rows[1][0] == "bob" and rows[1][2:] == ["no", "1", "Bob the Builder"]


def test_a_taken_name_is_refused_on_stderr_and_nothing_changes(capsys, data_dir):
    manage(capsys, "-d", data_dir, "user", "create", "alice")
    before = index_rows(data_dir)
    status, out, err = manage(capsys, "-d", data_dir, "user", "create", "alice", "--admin")
    assert (status, out) == (1, "")
    assert err == "objectstore-manage: a user named 'alice' already exists\n"
    assert index_rows(data_dir) == before


def test_key_create_list_and_delete(capsys, data_dir):
    first = pairs(manage(capsys, "-d", data_dir, "user", "create", "alice")[1])["access_key"]
    status, out, _ = manage(capsys, "-d", data_dir, "key", "create", "alice")
    assert status == 0 and list(pairs(out)) == ["access_key", "secret_key"]
    second = pairs(out)
    assert lookup(data_dir, second["access_key"]).secret == second["secret_key"]

    status, out, _ = manage(capsys, "-d", data_dir, "key", "list", "alice")
    header, rows = table(out)
    assert status == 0 and header == ["ACCESS_KEY", "CREATED"]
    assert [row[0] for row in rows] == [first, second["access_key"]]
    assert second["secret_key"] not in out

    status, out, _ = manage(capsys, "-d", data_dir, "key", "delete", first)
    assert status == 0 and first in out
    assert [row[0] for row in table(manage(capsys, "-d", data_dir, "key", "list", "alice")[1])[1]] == [
        second["access_key"]
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["key", "create", "nobody"], "no user named 'nobody'"),
        (["key", "list", "nobody"], "no user named 'nobody'"),
        (["key", "delete", "NOSUCHKEY"], "no access key 'NOSUCHKEY'"),
        (["user", "delete", "nobody"], "no user named 'nobody'"),
        (["user", "delete", "admin"], "cannot be deleted"),
        (["user", "create", "no spaces"], "invalid user name"),
        (["user", "create", "admin"], "can only be an admin"),
    ],
)
def test_refusals_exit_1_with_the_reason_on_stderr_and_change_nothing(capsys, data_dir, argv, message):
    manage(capsys, "-d", data_dir, "user", "create", "alice")
    before = index_rows(data_dir)
    status, out, err = manage(capsys, "-d", data_dir, *argv)
    assert (status, out) == (1, "")
    assert err.startswith("objectstore-manage: ") and message in err
    assert index_rows(data_dir) == before


@pytest.mark.parametrize(
    "argv",
    [[], ["user"], ["key"], ["user", "create"], ["user", "create", "a", "b"], ["user", "list", "--bogus"], ["frob"]],
)
def test_bad_command_lines_exit_2_and_point_at_help(capsys, data_dir, argv):
    status, out, err = manage(capsys, "-d", data_dir, *argv)
    assert (status, out) == (2, "")
    assert "--help' for usage" in err
    assert not os.path.exists(data_dir)


@pytest.mark.parametrize(
    "argv",
    [["user", "list"], ["user", "delete", "alice"], ["key", "create", "alice"], ["key", "list", "alice"]],
)
def test_only_user_create_starts_a_new_folder_the_rest_refuse_without_creating_it(capsys, data_dir, argv):
    status, out, err = manage(capsys, "-d", data_dir, *argv)
    assert (status, out) == (1, "")
    assert "meta.sqlite is missing" in err
    assert not os.path.exists(data_dir)


@pytest.mark.parametrize("argv", [["--help"], ["user", "--help"], ["key", "create", "--help"]])
def test_help_describes_the_command_and_exits_0(capsys, argv):
    status, out, _ = manage(capsys, *argv)
    assert status == 0
    assert out.startswith(f"Usage: objectstore-manage {' '.join(argv[:-1])}".rstrip())
    assert "--data-dir" in out


def test_the_config_file_names_the_data_dir_and_data_dir_overrides_it(capsys, tmp_path, data_dir):
    config = tmp_path / "objectstore.conf"
    config.write_text(f"[objectstore]\ndata_dir = {data_dir}\n")
    status, out, _ = manage(capsys, "--config", str(config), "user", "create", "alice")
    assert status == 0 and lookup(data_dir, pairs(out)["access_key"]).user.name == "alice"

    other = str(tmp_path / "other")
    status, _, _ = manage(capsys, "-c", str(config), "-d", other, "user", "create", "bob")
    assert status == 0
    assert [u[1] for u in index_rows(other)[0]] == ["bob"]
    assert [u[1] for u in index_rows(data_dir)[0]] == ["alice"]


def test_an_unreadable_config_file_is_reported(capsys, tmp_path):
    status, _, err = manage(capsys, "--config", str(tmp_path / "missing.conf"), "user", "list")
    assert status == 1 and "cannot read config file" in err


@pytest_twisted.ensureDeferred
async def test_it_works_beside_a_running_store_and_keeps_bucket_owners(capsys, data_dir):
    """The store holds the folder's lock; the command needs only the index."""
    store = Store(data_dir, durable=True, reactor=reactor)
    store.start()
    try:
        alice = pairs(manage(capsys, "-d", data_dir, "user", "create", "alice")[1])
        await store.create_bucket("photos", alice["id"], "us-east-1", {})
        before = index_rows(data_dir)

        status, out, err = manage(capsys, "-d", data_dir, "user", "delete", "alice")
        assert (status, out) == (1, "")
        assert "still owns 1 bucket(s): photos" in err
        assert index_rows(data_dir) == before

        await store.delete_bucket("photos")
        status, out, _ = manage(capsys, "-d", data_dir, "user", "delete", "alice")
        assert status == 0 and out == "deleted user alice and 1 access key(s)\n"
        assert index_rows(data_dir) == [[], []]
    finally:
        store.close()


def test_cloud_cert_creates_the_key_pair_once_and_prints_the_certificate(capsys, data_dir):
    status, first, err = manage(capsys, "-d", data_dir, "cloud-cert")
    assert status == 0
    assert first.startswith("-----BEGIN CERTIFICATE-----")
    assert "created the cloud key pair" in err
    assert stat.S_IMODE(os.stat(os.path.join(data_dir, "cloud-key.pem")).st_mode) == 0o600
    status, second, err = manage(capsys, "-d", data_dir, "cloud-cert")
    assert (status, second, err) == (0, first, "")


def test_cert_add_list_and_delete(capsys, data_dir, tmp_path):
    from images.crypto import new_key_and_certificate

    manage(capsys, "-d", data_dir, "user", "create", "alice")
    _, cert_pem = new_key_and_certificate("alice's bundling certificate")
    path = tmp_path / "alice.pem"
    path.write_bytes(cert_pem)

    status, out, _ = manage(capsys, "-d", data_dir, "cert", "add", "alice", str(path))
    assert status == 0
    added = pairs(out)
    assert list(added) == ["fingerprint", "subject", "not_after"]
    assert added["subject"] == "CN=alice's bundling certificate"

    status, out, _ = manage(capsys, "-d", data_dir, "cert", "list", "alice")
    header, rows = table(out)
    assert header == ["FINGERPRINT", "ADDED", "NOT_AFTER", "SUBJECT"]
    assert [row[0] for row in rows] == [added["fingerprint"]]

    status, out, _ = manage(capsys, "-d", data_dir, "cert", "delete", "alice", added["fingerprint"])
    assert status == 0
    status, out, _ = manage(capsys, "-d", data_dir, "cert", "list", "alice")
    assert table(out)[1] == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cert", "add", "alice", "{garbage}"], "not a PEM X.509 certificate"),
        (["cert", "add", "alice", "{missing}"], "cannot read"),
        (["cert", "add", "nobody", "{garbage}"], "nobody"),
        (["cert", "delete", "alice", "00ff"], "has no certificate 00ff"),
    ],
)
def test_cert_refusals_exit_1_and_change_nothing(capsys, data_dir, tmp_path, argv, message):
    manage(capsys, "-d", data_dir, "user", "create", "alice")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    argv = [a.format(garbage=garbage, missing=tmp_path / "missing.pem") for a in argv]
    before = index_rows(data_dir)
    status, out, err = manage(capsys, "-d", data_dir, *argv)
    assert (status, out) == (1, "")
    assert message in err
    assert index_rows(data_dir) == before


def test_cloud_cert_never_replaces_a_key_whose_certificate_is_missing(capsys, data_dir):
    manage(capsys, "-d", data_dir, "cloud-cert")
    with open(os.path.join(data_dir, "cloud-key.pem"), "rb") as f:
        key = f.read()
    os.unlink(os.path.join(data_dir, "cloud-cert.pem"))
    status, out, err = manage(capsys, "-d", data_dir, "cloud-cert")
    assert (status, out) == (1, "")
    assert "has no certificate beside it" in err
    with open(os.path.join(data_dir, "cloud-key.pem"), "rb") as f:
        assert f.read() == key
