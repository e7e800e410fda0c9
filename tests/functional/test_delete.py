"""DeleteObject and DeleteObjects (POST ?delete)."""

import base64
import hashlib
import os

import pytest
import pytest_twisted
from lxml import etree

from objectstore.xmlio import S3_NS
from tests.helpers import refused, unchanged
from tests.s3http import call, error_code


async def bucket_with(server, bucket, *keys, size=None):
    """A bucket holding *keys*; each object's body is its key, or *size* bytes."""
    response, _ = await call(server, "PUT", f"/{bucket}")
    assert response.code == 200
    s3 = server.boto3()

    def put_all():
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=key.encode() if size is None else os.urandom(size))

    await server.blocking(put_all)


def listed_keys(server, bucket):
    s3 = server.boto3()
    return server.blocking(lambda: [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])])


def delete_document(keys, quiet=False):
    root = etree.Element("Delete")
    if quiet:
        etree.SubElement(root, "Quiet").text = "true"
    for key in keys:
        etree.SubElement(etree.SubElement(root, "Object"), "Key").text = key
    return etree.tostring(root)


async def post_delete(server, bucket, body):
    headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
    return await call(server, "POST", f"/{bucket}?delete", headers=headers, body=body)


def blob_files(server):
    return server.blob_files()


def results(content):
    """({deleted keys}, {key: error code}) of a DeleteResult document."""
    root = etree.fromstring(content)
    assert root.tag == f"{{{S3_NS}}}DeleteResult"
    deleted = {d.findtext(f"{{{S3_NS}}}Key") for d in root.iterfind(f"{{{S3_NS}}}Deleted")}
    errors = {e.findtext(f"{{{S3_NS}}}Key"): e.findtext(f"{{{S3_NS}}}Code") for e in root.iterfind(f"{{{S3_NS}}}Error")}
    return deleted, errors


# -- DeleteObject --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("size", [100, 100_000], ids=["inline", "blob"])
async def test_delete_answers_204_and_removes_object_and_its_bytes(server, bucket_name, size):
    await bucket_with(server, bucket_name, "doomed", size=size)
    response, content = await call(server, "DELETE", f"/{bucket_name}/doomed")
    assert (response.code, content) == (204, b"")
    response, content = await call(server, "GET", f"/{bucket_name}/doomed")
    assert error_code(content) == "NoSuchKey"
    await server.settled()
    _, rows = server.snapshot()
    assert (blob_files(server), rows["objects"], rows["inline_data"], rows["segments"]) == ([], [], [], [])


@pytest_twisted.ensureDeferred
async def test_deleting_missing_keys_answers_204_and_writes_nothing(server, bucket_name):
    await bucket_with(server, bucket_name, "kept")
    wal = os.path.join(server.data_dir, "meta.sqlite-wal")
    wal_size = os.path.getsize(wal)
    async with unchanged(server):
        for i in range(50):
            response, _ = await call(server, "DELETE", f"/{bucket_name}/missing-{i}")
            assert response.code == 204
    assert os.path.getsize(wal) == wal_size


@pytest_twisted.ensureDeferred
async def test_delete_in_a_missing_bucket_is_no_such_bucket(server, bucket_name):
    await refused(server, "NoSuchBucket", call(server, "DELETE", f"/{bucket_name}/k"), 404)


@pytest_twisted.ensureDeferred
async def test_delete_by_a_user_without_write_access_is_access_denied(server, bucket_name):
    await bucket_with(server, bucket_name, "k")
    keys = server.create_user("eve")
    await refused(server, "AccessDenied", call(server, "DELETE", f"/{bucket_name}/k", keys=keys), 403)


@pytest_twisted.ensureDeferred
async def test_libcloud_delete_object_returns_true(server, bucket_name):
    await bucket_with(server, bucket_name, "lib/obj")
    driver = server.libcloud()
    assert await server.blocking(lambda: driver.delete_object(driver.get_object(bucket_name, "lib/obj"))) is True
    assert await listed_keys(server, bucket_name) == []


# -- DeleteObjects -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_boto3_delete_objects_reports_every_key_deleted(server, bucket_name):
    keys = ["a", "dir/b", "ünï cødé", "x&y<z>", "missing"]
    await bucket_with(server, bucket_name, *keys[:-1], "kept")
    s3 = server.boto3()

    def delete():
        return s3.delete_objects(Bucket=bucket_name, Delete={"Objects": [{"Key": k} for k in keys]})

    answer = await server.blocking(delete)
    assert sorted(d["Key"] for d in answer["Deleted"]) == sorted(keys)
    assert "Errors" not in answer
    assert await listed_keys(server, bucket_name) == ["kept"]


@pytest_twisted.ensureDeferred
async def test_quiet_delete_objects_reports_only_errors(server, bucket_name):
    await bucket_with(server, bucket_name, "a", "b")
    response, content = await post_delete(server, bucket_name, delete_document(["a", "b", "k" * 1025], quiet=True))
    assert response.code == 200
    deleted, errors = results(content)
    assert deleted == set()
    assert errors == {"k" * 1025: "KeyTooLongError"}
    assert await listed_keys(server, bucket_name) == []


@pytest_twisted.ensureDeferred
async def test_delete_objects_reports_per_key_errors_and_deletes_the_rest(server, bucket_name):
    await bucket_with(server, bucket_name, "a", "b")
    s3 = server.boto3()
    too_long = "é" * 513  # 1026 bytes

    def delete():
        return s3.delete_objects(Bucket=bucket_name, Delete={"Objects": [{"Key": "a"}, {"Key": too_long}]})

    answer = await server.blocking(delete)
    assert [d["Key"] for d in answer["Deleted"]] == ["a"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [(too_long, "KeyTooLongError")]
    assert await listed_keys(server, bucket_name) == ["b"]


@pytest_twisted.ensureDeferred
async def test_delete_objects_takes_1000_keys(server, bucket_name):
    await bucket_with(server, bucket_name, "key-0", "key-999")
    response, content = await post_delete(server, bucket_name, delete_document([f"key-{i}" for i in range(1000)]))
    assert response.code == 200
    deleted, errors = results(content)
    assert len(deleted) == 1000 and errors == {}
    assert await listed_keys(server, bucket_name) == []


@pytest_twisted.ensureDeferred
async def test_delete_document_not_matching_its_content_md5_is_bad_digest(server, bucket_name):
    await bucket_with(server, bucket_name, "a", "b")
    sent, signed_for = delete_document(["a"]), delete_document(["b"])
    headers = {"Content-MD5": base64.b64encode(hashlib.md5(signed_for).digest()).decode()}
    await refused(server, "BadDigest", call(server, "POST", f"/{bucket_name}?delete", headers=headers, body=sent), 400)


@pytest_twisted.ensureDeferred
async def test_delete_objects_with_1001_keys_is_malformed_xml(server, bucket_name):
    await bucket_with(server, bucket_name, "key-0")
    document = delete_document([f"key-{i}" for i in range(1001)])
    await refused(server, "MalformedXML", post_delete(server, bucket_name, document), 400)


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b"<Delete><Object><Key>a</Key></Object>",
        b"<Remove><Object><Key>a</Key></Object></Remove>",
        b"<Delete></Delete>",
        b"<Delete><Object><VersionId>1</VersionId></Object></Delete>",
        b"",
    ],
    ids=["not-xml", "unclosed", "wrong-root", "no-objects", "object-without-key", "empty"],
)
@pytest_twisted.ensureDeferred
async def test_malformed_delete_document_is_malformed_xml(server, bucket_name, body):
    await bucket_with(server, bucket_name, "a")
    await refused(server, "MalformedXML", post_delete(server, bucket_name, body), 400)


@pytest_twisted.ensureDeferred
async def test_external_entity_in_delete_is_malformed_xml_and_leaks_nothing(server, bucket_name):
    await bucket_with(server, bucket_name, "a")
    body = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<Delete><Object><Key>&e;</Key></Object></Delete>"
    )
    _, content = await refused(server, "MalformedXML", post_delete(server, bucket_name, body), 400)
    assert b"root:" not in content


@pytest_twisted.ensureDeferred
async def test_entity_expansion_in_delete_is_malformed_xml(server, bucket_name):
    await bucket_with(server, bucket_name, "a")
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY l0 "lol">{entities}]>'
        "<Delete><Object><Key>&l9;</Key></Object></Delete>"
    ).encode()
    await refused(server, "MalformedXML", post_delete(server, bucket_name, body), 400)


@pytest_twisted.ensureDeferred
async def test_delete_objects_in_a_missing_bucket_is_no_such_bucket(server, bucket_name):
    await refused(server, "NoSuchBucket", post_delete(server, bucket_name, delete_document(["a"])), 404)
