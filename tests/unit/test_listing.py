"""list_keys over a real SQLite index (in memory), checked against a plain-Python model of S3 listing."""

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from objectstore.index import schema
from objectstore.storage.listing import list_keys, prefix_end

BUCKET = "bucket"


class CountingConnection:
    """A connection that counts the statements run and the rows they handed out."""

    def __init__(self, conn):
        self.conn = conn
        self.statements = 0
        self.rows = 0
        self.queries = []

    def execute(self, sql, args=()):
        self.statements += 1
        self.queries.append((sql, tuple(args)))
        for row in self.conn.execute(sql, args):
            self.rows += 1
            yield row


def index_of(keys, bucket=BUCKET):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    schema.migrate(conn, ":memory:")
    conn.executemany(
        "INSERT INTO objects (bucket, key, size, etag, modified, owner, acl, headers, metadata, checksums)"
        " VALUES (?, ?, 1, 'e', 0, 'o', '{}', '{}', '{}', '{}')",
        [(bucket, k) for k in keys],
    )
    return conn


def expected_listing(keys, prefix="", delimiter="", after="", max_keys=1000):
    """S3's listing by brute force: (entries, prefixes, truncated)."""
    items = []
    for key in sorted(keys):
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        item = ("prefix", key[: cut + len(delimiter)]) if cut >= 0 else ("key", key)
        if item[1] > after and item not in items:
            items.append(item)
    page = items[:max_keys]
    return (
        [v for kind, v in page if kind == "key"],
        [v for kind, v in page if kind == "prefix"],
        len(items) > max_keys if max_keys > 0 else False,
    )


def listed(conn, **kwargs):
    page = list_keys(conn, BUCKET, **kwargs)
    return [e.key for e in page.entries], page.prefixes, page.truncated


def all_pages(conn, max_keys, **kwargs):
    """Every page of a listing, each resuming after the previous page's last item."""
    pages, after = [], kwargs.pop("after", "")
    # Bounded: a listing that hands back its own marker would page forever.
    for _ in range(20_000):
        page = list_keys(conn, BUCKET, after=after, max_keys=max_keys, **kwargs)
        pages.append(page)
        if not page.truncated:
            return pages
        assert page.last > after
        after = page.last
    raise AssertionError("the listing never ended")


# -- prefix_end --------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix, end",
    [
        ("", None),
        ("a", "b"),
        ("a/", "a0"),
        ("az", "a{"),
        ("é", "ê"),
        ("\U0010ffff", None),
        ("\U0010ffff\U0010ffff", None),
        ("a\U0010ffff", "b"),
        ("a\U0010fffe", "a\U0010ffff"),
        ("\ud7ff", "\ue000"),
        ("\uffff", "\U00010000"),
    ],
)
def test_prefix_end_edge_cases(prefix, end):
    assert prefix_end(prefix) == end


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=6), st.text(max_size=6))
def test_prefix_end_bounds_every_extension_in_sqlite_order(prefix, suffix):
    end = prefix_end(prefix)
    conn = sqlite3.connect(":memory:")
    key = prefix + suffix
    # Compared as SQLite compares TEXT (UTF-8 bytes), which is what the scan relies on.
    assert conn.execute("SELECT ? >= ?", (key, prefix)).fetchone() == (1,)
    if end is not None:
        assert conn.execute("SELECT ? < ?", (key, end)).fetchone() == (1,)
        assert conn.execute("SELECT ? > ?", (end, prefix)).fetchone() == (1,)


def test_prefix_end_bounds_keys_beyond_the_basic_plane():
    conn = index_of(["a\U0001f600", "a\uffff", "b"])
    assert listed(conn, prefix="a") == (["a\uffff", "a\U0001f600"], [], False)


# -- plain listings ----------------------------------------------------------


def test_lists_all_keys_in_order():
    conn = index_of(["b", "a", "c/d", "c"])
    assert listed(conn) == (["a", "b", "c", "c/d"], [], False)


def test_keys_of_other_buckets_are_invisible():
    conn = index_of(["a", "b"])
    conn.execute(
        "INSERT INTO objects (bucket, key, size, etag, modified, owner, acl, headers, metadata, checksums)"
        " VALUES ('bucket2', 'a2', 1, 'e', 0, 'o', '{}', '{}', '{}', '{}')"
    )
    assert listed(conn) == (["a", "b"], [], False)
    assert [e.key for e in list_keys(conn, "bucket2").entries] == ["a2"]
    assert list_keys(conn, "buck").entries == []


def test_prefix_limits_to_its_keys():
    conn = index_of(["a", "ab", "abc", "ac", "b"])
    assert listed(conn, prefix="ab") == (["ab", "abc"], [], False)
    assert listed(conn, prefix="zz") == ([], [], False)


def test_marker_before_the_prefix_starts_at_the_prefix():
    conn = index_of(["a", "b1", "b2", "c"])
    assert listed(conn, prefix="b", after="a") == (["b1", "b2"], [], False)


def test_marker_after_the_prefix_range_lists_nothing():
    conn = index_of(["a", "b1", "b2", "c"])
    assert listed(conn, prefix="b", after="c") == ([], [], False)


def test_marker_is_exclusive_and_need_not_exist():
    conn = index_of(["a", "b", "c"])
    assert listed(conn, after="b") == (["c"], [], False)
    assert listed(conn, after="bb") == (["c"], [], False)


# -- max_keys and truncation ---------------------------------------------------


def test_max_keys_zero_lists_nothing_and_is_not_truncated():
    conn = CountingConnection(index_of(["a", "b"]))
    assert listed(conn, max_keys=0) == ([], [], False)
    assert conn.statements == 0


def test_exactly_max_keys_left_is_not_truncated():
    conn = index_of(["a", "b", "c"])
    assert listed(conn, max_keys=3) == (["a", "b", "c"], [], False)


def test_one_more_than_max_keys_is_truncated_at_the_last_returned():
    conn = index_of(["a", "b", "c", "d"])
    page = list_keys(conn, BUCKET, max_keys=3)
    assert [e.key for e in page.entries] == ["a", "b", "c"]
    assert page.truncated
    assert page.last == "c"


def test_truncation_counts_a_common_prefix_as_one():
    conn = index_of(["a/1", "a/2", "a/3", "b", "c/1"])
    page = list_keys(conn, BUCKET, delimiter="/", max_keys=2)
    assert (page.prefixes, [e.key for e in page.entries], page.truncated, page.last) == (["a/"], ["b"], True, "b")


def test_truncated_page_ending_in_a_common_prefix_names_it_last():
    conn = index_of(["a/1", "a/2", "b"])
    page = list_keys(conn, BUCKET, delimiter="/", max_keys=1)
    assert (page.prefixes, page.truncated, page.last) == (["a/"], True, "a/")


def test_only_keys_rolled_into_one_prefix_left_is_not_truncated():
    conn = index_of(["a", "b/1", "b/2", "b/3"])
    page = list_keys(conn, BUCKET, delimiter="/", max_keys=2)
    assert (["a"], ["b/"], False) == ([e.key for e in page.entries], page.prefixes, page.truncated)


# -- delimiters ----------------------------------------------------------------


def test_delimiter_rolls_keys_into_common_prefixes_after_the_prefix():
    conn = index_of(["p/a/1", "p/a/2", "p/b", "p/c/d/e", "q/1"])
    assert listed(conn, prefix="p/", delimiter="/") == (["p/b"], ["p/a/", "p/c/"], False)


def test_delimiter_inside_the_prefix_is_not_a_roll_up_point():
    conn = index_of(["a/b/c", "a/bd"])
    assert listed(conn, prefix="a/b", delimiter="/") == (["a/bd"], ["a/b/"], False)


def test_multi_character_delimiter():
    conn = index_of(["x--1--2", "x--3", "y"])
    assert listed(conn, delimiter="--") == (["y"], ["x--"], False)


def test_key_equal_to_its_common_prefix_is_rolled_up():
    conn = index_of(["dir/", "dir/file", "top"])
    assert listed(conn, delimiter="/") == (["top"], ["dir/"], False)


def test_marker_inside_a_common_prefix_skips_the_rest_of_it():
    conn = index_of(["a/1", "a/2", "a/3", "b/1", "c"])
    assert listed(conn, delimiter="/", after="a/2") == (["c"], ["b/"], False)


def test_marker_equal_to_a_common_prefix_resumes_after_it():
    conn = index_of(["a/1", "a/2", "b/1", "c"])
    assert listed(conn, delimiter="/", after="a/") == (["c"], ["b/"], False)


def test_key_right_at_the_end_of_a_common_prefix_is_listed():
    # The seek lands on prefix_end("a/") == "a0" itself: it must be inclusive.
    conn = index_of(["a/1", "a/2", "a0", "a0/x"])
    assert listed(conn, delimiter="/") == (["a0"], ["a/", "a0/"], False)
    assert listed(conn, delimiter="1") == (["a/2", "a0", "a0/x"], ["a/1"], False)


def test_common_prefix_ending_in_the_last_code_point_ends_the_listing():
    conn = index_of(["a", "\U0010ffff/x", "\U0010ffff/y"])
    assert listed(conn, delimiter="/") == (["a"], ["\U0010ffff/"], False)


@pytest.mark.parametrize("kwargs", [{}, {"prefix": "p/"}, {"after": "p/1"}, {"prefix": "p/", "delimiter": "/"}])
def test_every_query_is_an_index_range_search_in_index_order(kwargs):
    conn = CountingConnection(index_of(["p/1", "p/2/x", "q"]))
    list_keys(conn, BUCKET, **kwargs)
    assert conn.queries
    for sql, args in conn.queries:
        plan = " ".join(row[3] for row in conn.conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert "SEARCH objects USING INDEX" in plan
        assert "TEMP B-TREE" not in plan  # no sort: rows come in key order off the index


def test_roll_up_seeks_past_each_prefix_instead_of_reading_its_keys():
    keys = [f"{i % 100:02d}/{i:05d}" for i in range(10_000)]
    conn = CountingConnection(index_of(keys))
    page = list_keys(conn, BUCKET, delimiter="/")
    assert page.prefixes == [f"{i:02d}/" for i in range(100)]
    assert (page.entries, page.truncated) == ([], False)
    # One seek per prefix (reading its first key) and one final empty scan.
    assert conn.statements == 101
    assert conn.rows == 100


def test_10000_keys_under_100_prefixes_paginate_to_exactly_the_100_prefixes():
    keys = [f"{i % 100:02d}/{i:05d}" for i in range(10_000)]
    conn = CountingConnection(index_of(keys))
    pages = all_pages(conn, max_keys=30, delimiter="/")
    assert [len(p.prefixes) for p in pages] == [30, 30, 30, 10]
    assert [p for page in pages for p in page.prefixes] == [f"{i:02d}/" for i in range(100)]
    assert all(page.entries == [] for page in pages)
    assert conn.rows < 200


def test_pages_of_a_plain_listing_cover_every_key_once():
    keys = [f"k{i:05d}" for i in range(2_500)]
    conn = CountingConnection(index_of(keys))
    pages = all_pages(conn, max_keys=1000)
    assert [len(p.entries) for p in pages] == [1000, 1000, 500]
    assert [e.key for p in pages for e in p.entries] == keys
    # Each page reads its keys plus at most one to learn it is truncated.
    assert conn.rows <= 2_500 + len(pages)


# -- against the model -----------------------------------------------------------

# "0" follows "/" and "." follows "-": where a seek past a common prefix lands.
KEY_ALPHABET = st.sampled_from(["a", "b", "/", "0", "-", ".", "é", "\U0001f600", "\uffff", "\x01"])
KEYS = st.lists(st.text(KEY_ALPHABET, min_size=1, max_size=5), max_size=25, unique=True)
SHORT = st.text(KEY_ALPHABET, max_size=3)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(KEYS, SHORT, st.sampled_from(["", "/", "a", "-/", "\U0001f600"]), SHORT, st.integers(min_value=0, max_value=6))
def test_one_page_matches_the_model(keys, prefix, delimiter, after, max_keys):
    conn = index_of(keys)
    args = dict(prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys)
    assert listed(conn, **args) == expected_listing(keys, **args)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(KEYS, SHORT, st.sampled_from(["", "/", "a"]), st.integers(min_value=1, max_value=4))
def test_paging_through_matches_the_whole_model_listing(keys, prefix, delimiter, max_keys):
    conn = index_of(keys)
    pages = all_pages(conn, max_keys, prefix=prefix, delimiter=delimiter)
    entries, prefixes, _ = expected_listing(keys, prefix, delimiter, max_keys=10_000)
    assert [e.key for p in pages for e in p.entries] == entries
    assert [c for p in pages for c in p.prefixes] == prefixes
    assert all(len(p.entries) + len(p.prefixes) == max_keys for p in pages[:-1])
