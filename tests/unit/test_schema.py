"""The index's numbered migrations: applied all or none, once, and never to an index from a newer release."""

import pathlib
import re
import sqlite3
import threading

import pytest

from objectstore.index import schema
from objectstore.index.schema import LATEST_VERSION, Migration, SchemaTooNew, migrate, version_in_header, version_of

# The first release's tables, before inline bytes, uploads, images and certificates existed.
FIRST_RELEASE = """
CREATE TABLE buckets (name TEXT PRIMARY KEY, owner TEXT NOT NULL, created REAL NOT NULL, region TEXT NOT NULL,
    acl TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE objects (id INTEGER PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL,
    etag TEXT NOT NULL, modified REAL NOT NULL, owner TEXT NOT NULL, acl TEXT NOT NULL, headers TEXT NOT NULL,
    metadata TEXT NOT NULL, checksums TEXT NOT NULL, UNIQUE (bucket, key));
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL) WITHOUT ROWID;
INSERT INTO buckets VALUES ('photos', 'u1', 1.0, 'us-east-1', '{}');
INSERT INTO users VALUES ('u1', 'admin', 'admin', 1, 1.0);
"""


def connect(path):
    return sqlite3.connect(path, isolation_level=None)


def tables(conn):
    return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


def test_an_empty_index_gets_every_table_and_the_latest_version(tmp_path):
    conn = connect(tmp_path / "meta.sqlite")
    assert migrate(conn, "meta.sqlite") == 0
    assert version_of(conn) == LATEST_VERSION
    assert "objects" in tables(conn) and "access_keys" in tables(conn) and "images" in tables(conn)


def test_an_unversioned_index_from_the_first_release_keeps_its_rows_and_gains_the_later_tables(tmp_path):
    conn = connect(tmp_path / "meta.sqlite")
    conn.executescript(FIRST_RELEASE)
    assert migrate(conn, "meta.sqlite") == 0
    assert version_of(conn) == LATEST_VERSION
    assert conn.execute("SELECT name, owner FROM buckets").fetchall() == [("photos", "u1")]
    assert {"inline_data", "uploads", "parts", "images", "user_certificates", "access_keys"} <= set(tables(conn))


def test_migrating_again_does_nothing(tmp_path):
    conn = connect(tmp_path / "meta.sqlite")
    migrate(conn, "meta.sqlite")
    before = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert migrate(conn, "meta.sqlite") == LATEST_VERSION
    assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before


def test_an_index_from_a_newer_release_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "meta.sqlite"
    conn = connect(path)
    conn.execute("CREATE TABLE from_the_future (x)")
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(SchemaTooNew) as caught:
        migrate(conn, str(path))
    assert str(caught.value) == (
        f"the index {path} was written by a newer objectstore (schema version {LATEST_VERSION + 1}; this release "
        f"reads up to {LATEST_VERSION}); run that release or a later one, or restore a backup"
    )
    assert tables(conn) == ["from_the_future"] and version_of(conn) == LATEST_VERSION + 1
    conn.close()
    with open(path, "rb") as f:
        assert version_in_header(f.read(100)) == LATEST_VERSION + 1


def test_a_migration_that_fails_leaves_the_index_as_it_was(tmp_path, monkeypatch):
    conn = connect(tmp_path / "meta.sqlite")
    conn.executescript(FIRST_RELEASE)
    broken = Migration(LATEST_VERSION + 1, "fails half-way", "CREATE TABLE half (x);\nINSERT INTO nowhere VALUES (1);")
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "LATEST_VERSION", broken.version)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, "meta.sqlite")
    # Not even the migrations before the failing one: all or none.
    assert version_of(conn) == 0
    assert tables(conn) == ["buckets", "objects", "users"]


def test_statements_are_split_as_sqlite_reads_them_semicolons_in_comments_included():
    script = "-- a comment; with a semicolon\nCREATE TABLE a (x);\nCREATE TABLE b (y); -- end\n"
    first, second = Migration(9, "x", script).statements()
    assert first == "-- a comment; with a semicolon\nCREATE TABLE a (x);"
    assert second == "CREATE TABLE b (y); -- end"
    with pytest.raises(ValueError):
        list(Migration(9, "x", "CREATE TABLE a (x);\nCREATE TABLE b (").statements())


def test_two_processes_opening_at_once_migrate_once(tmp_path):
    path = tmp_path / "meta.sqlite"
    found, errors = [], []

    def open_it():
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        try:
            found.append(migrate(conn, str(path)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(found) == [0, LATEST_VERSION, LATEST_VERSION, LATEST_VERSION]


def test_versions_are_numbered_one_by_one():
    assert [m.version for m in schema.MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


def test_every_table_has_an_owner_and_only_its_owner_names_it():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, ":memory:")
    assert sorted(schema.TABLE_OWNERS) == tables(conn)
    package = pathlib.Path(schema.__file__).resolve().parents[1]
    strangers = []
    for source in sorted(package.rglob("*.py")):
        if source.parent.name == "index":
            continue
        text = source.read_text(encoding="utf-8")
        for table, owner in schema.TABLE_OWNERS.items():
            # The statements that name a table: FROM, INTO, UPDATE, JOIN (DELETE FROM included).
            if re.search(rf"\b(FROM|INTO|UPDATE|JOIN)\s+{table}\b", text) and source.parent.name != owner:
                strangers.append(f"{source.relative_to(package)} uses {owner}'s table {table}")
    assert strangers == []
