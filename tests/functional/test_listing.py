"""ListObjects (v1) and ListObjectsV2 as boto3, libcloud and the raw wire see them."""

import json
import time
from urllib.parse import quote

import pytest
import pytest_twisted
from botocore.exceptions import ClientError
from lxml import etree
from twisted.internet.defer import ensureDeferred, gatherResults

from objectstore.auth import acl as acls
from objectstore.storage import listing
from tests.helpers import make_bucket, refused
from tests.s3http import call, error_code

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

# Keys that break naive XML, URL and path handling; every one must come back exactly.
AWKWARD_KEYS = [
    "with space",
    "plus+sign",
    "percent%20literal",
    "100%",
    "unicodé/ключ/鍵.txt",
    "less<than>greater",
    "amp&amp;ersand",
    "ctrl\x01char",
    "carriage\rreturn",
    "new\nline",
    "double//slash",
    "trailing/",
    "/leading",
    "quote'\"",
    "tilde~star*",
]


def children(element):
    return [etree.QName(c).localname for c in element]


def text(root, path):
    return root.findtext("/".join(f"{{{S3_NS}}}{p}" for p in path.split("/")))


def keys_of(root):
    return [c.findtext(f"{{{S3_NS}}}Key") for c in root.findall(f"{{{S3_NS}}}Contents")]


def prefixes_of(root):
    return [c.findtext(f"{{{S3_NS}}}Prefix") for c in root.findall(f"{{{S3_NS}}}CommonPrefixes")]


async def put_keys(server, bucket, keys):
    """Store zero-byte objects straight through the store API, all at once (no HTTP per key)."""
    owner = server.user_id("admin")

    def put(key):
        writer = server.store.new_writer()
        return server.store.put_object(
            bucket, key, writer, owner=owner, acl=acls.canned("private", owner), headers={}, metadata={}, checksums={}
        )

    await gatherResults([ensureDeferred(put(key)) for key in keys])


async def insert_index_rows(server, bucket, keys):
    """Index rows for *keys* in one transaction: the quick way to a very large bucket.

    Zero-byte objects have no blob, so rows alone are whole objects.
    """
    owner = server.user_id("admin")
    acl = json.dumps(acls.canned("private", owner))
    rows = [(bucket, key, 0, "d41d8cd98f00b204e9800998ecf8427e", time.time(), owner, acl) for key in keys]

    def insert(conn):
        conn.executemany(
            "INSERT INTO objects (bucket, key, size, etag, modified, owner, acl, headers, metadata, checksums)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, '{}', '{}', '{}')",
            rows,
        )

    await server.store.index.write(insert)


async def bucket_with(server, name, keys):
    await make_bucket(server, name)
    await put_keys(server, name, keys)


async def list_raw(server, bucket, query):
    response, content = await call(server, "GET", f"/{bucket}?{query}")
    assert response.code == 200, content
    return etree.fromstring(content)


# -- the v1 document ---------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_v1_document_element_order_and_namespace(server, bucket_name):
    await bucket_with(server, bucket_name, ["a/1", "a/2", "b", "c/1", "d"])
    root = await list_raw(server, bucket_name, "delimiter=/&max-keys=3&encoding-type=url")
    assert root.tag == f"{{{S3_NS}}}ListBucketResult"
    assert children(root) == [
        "Name",
        "Prefix",
        "Marker",
        "NextMarker",
        "MaxKeys",
        "Delimiter",
        "EncodingType",
        "IsTruncated",
        "Contents",
        "CommonPrefixes",
        "CommonPrefixes",
    ]
    (contents,) = root.findall(f"{{{S3_NS}}}Contents")
    assert children(contents) == ["Key", "LastModified", "ETag", "Size", "Owner", "StorageClass"]
    assert children(contents.find(f"{{{S3_NS}}}Owner")) == ["ID", "DisplayName"]
    assert text(root, "NextMarker") == "c/"
    assert text(root, "IsTruncated") == "true"


@pytest_twisted.ensureDeferred
async def test_v1_plain_document_has_no_optional_elements(server, bucket_name):
    await bucket_with(server, bucket_name, ["k"])
    root = await list_raw(server, bucket_name, "")
    assert children(root) == ["Name", "Prefix", "Marker", "MaxKeys", "IsTruncated", "Contents"]
    assert text(root, "Name") == bucket_name
    assert text(root, "MaxKeys") == "1000"
    assert text(root, "Contents/ETag") == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert text(root, "Contents/StorageClass") == "STANDARD"


@pytest_twisted.ensureDeferred
async def test_v1_prefix_and_delimiter_roll_up_common_prefixes(server, bucket_name):
    await bucket_with(server, bucket_name, ["photos/2006/jan/a", "photos/2006/feb/b", "photos/2006/c", "photos/x"])
    root = await list_raw(server, bucket_name, "prefix=photos/2006/&delimiter=/")
    assert keys_of(root) == ["photos/2006/c"]
    assert prefixes_of(root) == ["photos/2006/feb/", "photos/2006/jan/"]
    assert text(root, "Prefix") == "photos/2006/"
    assert text(root, "Delimiter") == "/"


@pytest_twisted.ensureDeferred
async def test_v1_truncated_without_delimiter_has_no_next_marker(server, bucket_name):
    await bucket_with(server, bucket_name, ["a", "b", "c"])
    root = await list_raw(server, bucket_name, "max-keys=2")
    assert keys_of(root) == ["a", "b"]
    assert text(root, "IsTruncated") == "true"
    assert root.find(f"{{{S3_NS}}}NextMarker") is None


@pytest_twisted.ensureDeferred
async def test_v1_marker_lists_keys_after_it(server, bucket_name):
    await bucket_with(server, bucket_name, ["a", "b", "c", "d"])
    root = await list_raw(server, bucket_name, "marker=b")
    assert keys_of(root) == ["c", "d"]
    assert text(root, "Marker") == "b"
    assert text(root, "IsTruncated") == "false"


@pytest_twisted.ensureDeferred
async def test_v1_exactly_max_keys_left_is_not_truncated(server, bucket_name):
    await bucket_with(server, bucket_name, ["a", "b"])
    root = await list_raw(server, bucket_name, "max-keys=2")
    assert keys_of(root) == ["a", "b"]
    assert text(root, "IsTruncated") == "false"


@pytest_twisted.ensureDeferred
async def test_max_keys_zero_lists_nothing_and_is_not_truncated(server, bucket_name):
    await bucket_with(server, bucket_name, ["a"])
    root = await list_raw(server, bucket_name, "max-keys=0")
    assert keys_of(root) == []
    assert text(root, "MaxKeys") == "0"
    assert text(root, "IsTruncated") == "false"


@pytest_twisted.ensureDeferred
async def test_boto3_v1_paginator_with_delimiter_follows_next_marker(server, bucket_name):
    await bucket_with(server, bucket_name, ["a/1", "a/2", "b", "c/1", "c/2", "d"])
    s3 = server.boto3()

    def pages():
        paginator = s3.get_paginator("list_objects")
        return list(paginator.paginate(Bucket=bucket_name, Delimiter="/", PaginationConfig={"PageSize": 1}))

    listed = await server.blocking(pages)
    seen = [(p.get("CommonPrefixes") or p.get("Contents"))[0] for p in listed]
    assert [s.get("Prefix") or s.get("Key") for s in seen] == ["a/", "b", "c/", "d"]


# -- ListObjectsV2 -----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_v2_document_element_order_with_continuation(server, bucket_name):
    await bucket_with(server, bucket_name, ["a", "b", "c", "d"])
    first = await list_raw(server, bucket_name, "list-type=2&max-keys=1&start-after=a&encoding-type=url")
    assert children(first) == [
        "Name",
        "Prefix",
        "NextContinuationToken",
        "StartAfter",
        "KeyCount",
        "MaxKeys",
        "EncodingType",
        "IsTruncated",
        "Contents",
    ]
    assert children(first.find(f"{{{S3_NS}}}Contents")) == ["Key", "LastModified", "ETag", "Size", "StorageClass"]
    token = text(first, "NextContinuationToken")
    second = await list_raw(server, bucket_name, f"list-type=2&max-keys=1&continuation-token={quote(token, safe='')}")
    assert children(second)[:4] == ["Name", "Prefix", "ContinuationToken", "NextContinuationToken"]
    assert text(second, "ContinuationToken") == token
    assert keys_of(first) + keys_of(second) == ["b", "c"]


@pytest_twisted.ensureDeferred
async def test_v2_key_count_counts_keys_and_common_prefixes(server, bucket_name):
    await bucket_with(server, bucket_name, ["a/1", "a/2", "b", "c/1"])
    root = await list_raw(server, bucket_name, "list-type=2&delimiter=/")
    assert keys_of(root) == ["b"]
    assert prefixes_of(root) == ["a/", "c/"]
    assert text(root, "KeyCount") == "3"


@pytest_twisted.ensureDeferred
async def test_v2_start_after_and_fetch_owner_through_boto3(server, bucket_name):
    await bucket_with(server, bucket_name, ["a", "b", "c"])
    s3 = server.boto3()
    plain = await server.blocking(s3.list_objects_v2, Bucket=bucket_name, StartAfter="a")
    owned = await server.blocking(s3.list_objects_v2, Bucket=bucket_name, FetchOwner=True)
    assert [o["Key"] for o in plain["Contents"]] == ["b", "c"]
    assert plain["StartAfter"] == "a"
    assert plain["KeyCount"] == 2
    assert all("Owner" not in o for o in plain["Contents"])
    assert {o["Owner"]["ID"] for o in owned["Contents"]} == {server.user_id("admin")}
    assert {o["Owner"]["DisplayName"] for o in owned["Contents"]} == {"admin"}


@pytest_twisted.ensureDeferred
async def test_v2_continuation_token_wins_over_start_after(server, bucket_name):
    await bucket_with(server, bucket_name, ["a", "b", "c", "d"])
    s3 = server.boto3()
    first = await server.blocking(s3.list_objects_v2, Bucket=bucket_name, MaxKeys=2)
    second = await server.blocking(
        s3.list_objects_v2, Bucket=bucket_name, ContinuationToken=first["NextContinuationToken"], StartAfter="a"
    )
    assert [o["Key"] for o in second["Contents"]] == ["c", "d"]
    assert second["IsTruncated"] is False
    assert "NextContinuationToken" not in second


@pytest_twisted.ensureDeferred
async def test_v2_paginator_with_delimiter_resumes_after_a_common_prefix(server, bucket_name):
    await bucket_with(server, bucket_name, ["a/1", "a/2", "b", "c/1", "c/2", "d"])
    s3 = server.boto3()

    def pages():
        paginator = s3.get_paginator("list_objects_v2")
        return list(paginator.paginate(Bucket=bucket_name, Delimiter="/", PaginationConfig={"PageSize": 1}))

    listed = await server.blocking(pages)
    assert [p["KeyCount"] for p in listed] == [1, 1, 1, 1]
    seen = [(p.get("CommonPrefixes") or p.get("Contents"))[0] for p in listed]
    assert [s.get("Prefix") or s.get("Key") for s in seen] == ["a/", "b", "c/", "d"]


@pytest_twisted.ensureDeferred
async def test_v2_an_empty_continuation_token_lists_from_the_start_and_is_echoed(server, bucket_name):
    # s3-tests test_bucket_listv2_continuationtoken_empty: as if no token was given.
    keys = ["bar", "baz", "foo", "quxx"]
    await bucket_with(server, bucket_name, keys)
    listed = await server.blocking(server.boto3().list_objects_v2, Bucket=bucket_name, ContinuationToken="")
    assert (listed["ContinuationToken"], listed["IsTruncated"]) == ("", False)
    assert [o["Key"] for o in listed["Contents"]] == keys
    root = await list_raw(server, bucket_name, "list-type=2&continuation-token=&start-after=baz")
    assert (text(root, "ContinuationToken"), keys_of(root)) == ("", ["foo", "quxx"])


# -- refusals ----------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "max-keys=ten",
        "max-keys=-1",
        "encoding-type=base64",
        "list-type=2&continuation-token=not%20a%20token!",
        "list-type=2&continuation-token=QQ",
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_listing_argument_is_invalid_argument(server, bucket_name, query):
    await make_bucket(server, bucket_name)
    await refused(server, "InvalidArgument", call(server, "GET", f"/{bucket_name}?{query}"), 400)


@pytest_twisted.ensureDeferred
async def test_listing_a_missing_bucket_is_no_such_bucket(server, bucket_name):
    response, content = await call(server, "GET", f"/{bucket_name}?list-type=2")
    assert response.code == 404
    assert error_code(content) == "NoSuchBucket"


@pytest_twisted.ensureDeferred
async def test_listing_another_users_private_bucket_is_access_denied(server, bucket_name):
    await make_bucket(server, bucket_name)
    keys = server.create_user("eve")
    response, content = await call(server, "GET", f"/{bucket_name}", keys=keys)
    assert response.code == 403
    assert error_code(content) == "AccessDenied"


# -- awkward keys ------------------------------------------------------------


async def bucket_of_awkward_keys(server, bucket_name):
    s3 = server.boto3()

    def put_all():
        s3.create_bucket(Bucket=bucket_name)
        for key in AWKWARD_KEYS:
            s3.put_object(Bucket=bucket_name, Key=key, Body=key.encode())

    await server.blocking(put_all)
    return s3


@pytest_twisted.ensureDeferred
async def test_boto3_awkward_keys_round_trip_through_both_listings(server, bucket_name):
    s3 = await bucket_of_awkward_keys(server, bucket_name)
    v1 = await server.blocking(s3.list_objects, Bucket=bucket_name)
    v2 = await server.blocking(s3.list_objects_v2, Bucket=bucket_name)
    assert [o["Key"] for o in v1["Contents"]] == sorted(AWKWARD_KEYS)
    assert [o["Key"] for o in v2["Contents"]] == sorted(AWKWARD_KEYS)


def paginated_keys(s3, operation, bucket_name):
    pages = s3.get_paginator(operation).paginate(Bucket=bucket_name, PaginationConfig={"PageSize": 2})
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest_twisted.ensureDeferred
async def test_boto3_awkward_keys_round_trip_through_v2_paginator(server, bucket_name):
    s3 = await bucket_of_awkward_keys(server, bucket_name)
    assert await server.blocking(paginated_keys, s3, "list_objects_v2", bucket_name) == sorted(AWKWARD_KEYS)


@pytest_twisted.ensureDeferred
async def test_boto3_awkward_keys_round_trip_through_v1_paginator(server, bucket_name):
    # Without a delimiter the v1 paginator sends the last key back as the marker.
    s3 = await bucket_of_awkward_keys(server, bucket_name)
    assert await server.blocking(paginated_keys, s3, "list_objects", bucket_name) == sorted(AWKWARD_KEYS)


@pytest_twisted.ensureDeferred
async def test_boto3_non_ascii_prefix_lists_its_keys(server, bucket_name):
    await bucket_with(server, bucket_name, ["été/1", "été/2", "ete/3"])
    s3 = server.boto3()
    listed = await server.blocking(s3.list_objects_v2, Bucket=bucket_name, Prefix="été/")
    assert [o["Key"] for o in listed["Contents"]] == ["été/1", "été/2"]
    assert listed["Prefix"] == "été/"


@pytest_twisted.ensureDeferred
async def test_boto3_listed_awkward_keys_fetch_their_objects(server, bucket_name):
    s3 = await bucket_of_awkward_keys(server, bucket_name)

    def fetch_listed():
        listed = s3.list_objects_v2(Bucket=bucket_name)["Contents"]
        return {o["Key"]: s3.get_object(Bucket=bucket_name, Key=o["Key"])["Body"].read() for o in listed}

    fetched = await server.blocking(fetch_listed)
    assert fetched == {key: key.encode() for key in AWKWARD_KEYS}


@pytest_twisted.ensureDeferred
async def test_boto3_awkward_prefix_and_delimiter_are_decoded(server, bucket_name):
    await bucket_with(server, bucket_name, ["sp ace+/x/1", "sp ace+/y%/2", "sp ace+/z"])
    s3 = server.boto3()
    for operation in ("list_objects", "list_objects_v2"):
        listed = await server.blocking(getattr(s3, operation), Bucket=bucket_name, Prefix="sp ace+/", Delimiter="/")
        assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["sp ace+/x/", "sp ace+/y%/"]
        assert [o["Key"] for o in listed["Contents"]] == ["sp ace+/z"]
        assert listed["Delimiter"] == "/"
    # botocore decodes v2's Prefix but not v1's (boto/boto3#3534): AWS encodes
    # both, so a v1 caller sees it encoded there too.
    assert listed["Prefix"] == "sp ace+/"


@pytest_twisted.ensureDeferred
async def test_url_encoded_v1_listing_encodes_prefix_marker_and_delimiter(server, bucket_name):
    await bucket_with(server, bucket_name, ["a b/c d/1", "a b/e"])
    root = await list_raw(server, bucket_name, "prefix=a%20b/&delimiter=%20&marker=a%20b/a&encoding-type=url")
    assert text(root, "Prefix") == "a%20b/"
    assert text(root, "Marker") == "a%20b/a"
    assert text(root, "Delimiter") == "%20"
    assert prefixes_of(root) == ["a%20b/c%20"]
    assert keys_of(root) == ["a%20b/e"]


@pytest_twisted.ensureDeferred
async def test_boto3_v1_marker_with_awkward_characters_is_decoded(server, bucket_name):
    await bucket_with(server, bucket_name, ["a b", "a+b", "a%b", "a&b"])
    s3 = server.boto3()
    listed = await server.blocking(s3.list_objects, Bucket=bucket_name, Marker="a b")
    assert listed["Marker"] == "a b"
    assert [o["Key"] for o in listed["Contents"]] == ["a%b", "a&b", "a+b"]


@pytest_twisted.ensureDeferred
async def test_url_encoded_listing_percent_encodes_keys_on_the_wire(server, bucket_name):
    await bucket_with(server, bucket_name, ["a b+c%\x01<&/é"])
    root = await list_raw(server, bucket_name, "list-type=2&encoding-type=url")
    assert text(root, "EncodingType") == "url"
    assert keys_of(root) == ["a%20b%2Bc%25%01%3C%26/%C3%A9"]


@pytest_twisted.ensureDeferred
async def test_plain_listing_writes_control_characters_as_references_like_aws(server, bucket_name):
    # Without encoding-type AWS answers &#x1; (not XML 1.0, but a 500 would block every client).
    await bucket_with(server, bucket_name, ["ctrl\x01char", "tab\tcr\r"])
    response, content = await call(server, "GET", f"/{bucket_name}")
    assert response.code == 200
    assert b"<Key>ctrl&#x1;char</Key>" in content
    assert b"<Key>tab\tcr&#13;</Key>" in content


@pytest_twisted.ensureDeferred
async def test_libcloud_lists_xml_special_keys_without_url_encoding(server, bucket_name):
    keys = ["less<than", "amp&ersand", "quote'\"", "with space", "unicodé"]
    await bucket_with(server, bucket_name, keys)
    driver = server.libcloud()
    listed = await server.blocking(
        lambda: [o.name for o in driver.list_container_objects(driver.get_container(bucket_name))]
    )
    assert listed == sorted(keys)


# -- many keys ---------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The ``ex_prefix`` argument is deprecated:DeprecationWarning")
@pytest_twisted.ensureDeferred
async def test_libcloud_lists_more_than_a_page_under_a_prefix(server, bucket_name):
    wanted = [f"logs/{i:05d}" for i in range(1100)]
    await make_bucket(server, bucket_name)
    await insert_index_rows(server, bucket_name, wanted + ["aaa", "logs0", "zzz/1"])
    driver = server.libcloud()

    def list_both():
        container = driver.get_container(bucket_name)
        listed = [o.name for o in driver.list_container_objects(container, ex_prefix="logs/")]
        iterated = [o.name for o in driver.iterate_container_objects(container, prefix="logs/")]
        return listed, iterated

    listed, iterated = await server.blocking(list_both)
    assert listed == wanted
    assert iterated == wanted


@pytest_twisted.ensureDeferred
async def test_v2_pagination_of_2500_keys_returns_each_once_in_order(server, bucket_name):
    keys = [f"k/{i % 7}/{i:06d}" for i in range(2500)]
    await make_bucket(server, bucket_name)
    await insert_index_rows(server, bucket_name, keys)
    s3 = server.boto3()

    def paginate():
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name))
        return [p["KeyCount"] for p in pages], [o["Key"] for p in pages for o in p["Contents"]]

    counts, listed = await server.blocking(paginate)
    assert counts == [1000, 1000, 500]
    assert listed == sorted(keys)


@pytest_twisted.ensureDeferred
async def test_listing_10000_keys_in_pages_of_1000_reads_each_page_once(server, bucket_name, monkeypatch):
    """Fast as in little work, which a loaded machine does not change: each page is one
    index range scan reading its 1000 rows and one more, wherever the page starts.
    (bench/ times listings.)"""
    await make_bucket(server, bucket_name)
    keys = [f"{i % 100:02d}/{i:05d}" for i in range(10_000)]
    await insert_index_rows(server, bucket_name, keys)
    scans = []  # rows read by each index query of the listings
    scan = listing._scan

    def counted_scan(*args):
        scans.append(0)
        for row in scan(*args):
            scans[-1] += 1
            yield row

    monkeypatch.setattr(listing, "_scan", counted_scan)
    listed, pages, query = [], 0, "list-type=2&encoding-type=url"
    while query:
        root = await list_raw(server, bucket_name, query)
        listed += keys_of(root)
        pages += 1
        token = text(root, "NextContinuationToken")
        query = token and f"list-type=2&encoding-type=url&continuation-token={quote(token, safe='')}"
    assert pages == 10
    assert listed == sorted(keys)
    assert len(scans) == pages and max(scans) <= 1000 + 1, scans  # one row past the page: is it truncated?


@pytest_twisted.ensureDeferred
async def test_delimiter_over_10000_keys_returns_exactly_the_100_prefixes(server, bucket_name):
    await make_bucket(server, bucket_name)
    await insert_index_rows(server, bucket_name, [f"{i % 100:02d}/{i:05d}" for i in range(10_000)])
    s3 = server.boto3()

    def paginate():
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket_name, Delimiter="/", PaginationConfig={"PageSize": 30}
        )
        return [[p["Prefix"] for p in page["CommonPrefixes"]] for page in pages]

    pages = await server.blocking(paginate)
    assert [len(p) for p in pages] == [30, 30, 30, 10]
    assert [prefix for page in pages for prefix in page] == [f"{i:02d}/" for i in range(100)]


@pytest_twisted.ensureDeferred
async def test_boto3_list_objects_error_for_missing_bucket(server, bucket_name):
    with pytest.raises(ClientError) as caught:
        await server.blocking(server.boto3().list_objects_v2, Bucket=bucket_name)
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


# -- a "+" in the query is a space -------------------------------------------

SPACED_KEYS = ["a b/1", "a b/2", "a+b/3", "ab/4"]


@pytest_twisted.ensureDeferred
async def test_libcloud_lists_a_prefix_holding_a_space(server, bucket_name):
    # libcloud sends prefix=a+b and signs prefix=a%20b (SigV4): "+" is a space, as AWS reads it.
    await bucket_with(server, bucket_name, SPACED_KEYS)
    driver = server.libcloud()
    listed = await server.blocking(
        lambda: [o.name for o in driver.iterate_container_objects(driver.get_container(bucket_name), prefix="a b")]
    )
    assert listed == ["a b/1", "a b/2"]


@pytest_twisted.ensureDeferred
async def test_boto3_lists_prefixes_holding_a_space_and_a_plus(server, bucket_name):
    await bucket_with(server, bucket_name, SPACED_KEYS)
    s3 = server.boto3()
    spaced = await server.blocking(s3.list_objects_v2, Bucket=bucket_name, Prefix="a b")
    plus = await server.blocking(s3.list_objects, Bucket=bucket_name, Prefix="a+b")
    assert [o["Key"] for o in spaced["Contents"]] == ["a b/1", "a b/2"]
    assert [o["Key"] for o in plus["Contents"]] == ["a+b/3"]


@pytest_twisted.ensureDeferred
async def test_a_raw_plus_in_the_query_is_a_space_and_an_encoded_one_a_plus(server, bucket_name):
    await bucket_with(server, bucket_name, SPACED_KEYS)
    spaced = await list_raw(server, bucket_name, "list-type=2&prefix=a+b")
    plus = await list_raw(server, bucket_name, "list-type=2&prefix=a%2Bb")
    assert [k.text for k in spaced.iter(f"{{{S3_NS}}}Key")] == ["a b/1", "a b/2"]
    assert [k.text for k in plus.iter(f"{{{S3_NS}}}Key")] == ["a+b/3"]
