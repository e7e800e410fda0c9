"""Keys holding characters XML 1.0 cannot carry (\\x01...) answered as AWS answers them: as character references."""

import re

import pytest_twisted
from lxml import etree

from tests.helpers import make_bucket
from tests.s3http import call, header

KEY = "a\x01b\r"
ON_THE_WIRE = b"<Key>a&#x1;b&#13;</Key>"
PATH_KEY = "a%01b%0D"


@pytest_twisted.ensureDeferred
async def test_create_and_complete_multipart_upload_answer_such_a_key_as_references(server, bucket_name):
    await make_bucket(server, bucket_name)
    response, content = await call(server, "POST", f"/{bucket_name}/{PATH_KEY}?uploads")
    assert response.code == 200, content
    assert ON_THE_WIRE in content
    upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", content).group(1).decode()
    part = f"/{bucket_name}/{PATH_KEY}?partNumber=1&uploadId={upload_id}"
    response, content = await call(server, "PUT", part, body=b"the part")
    assert response.code == 200, content
    etag = header(response, "ETag")
    complete = (
        f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    ).encode()
    response, content = await call(server, "POST", f"/{bucket_name}/{PATH_KEY}?uploadId={upload_id}", body=complete)
    assert response.code == 200, content
    assert ON_THE_WIRE in content
    response, content = await call(server, "GET", f"/{bucket_name}/{PATH_KEY}")
    assert (response.code, content) == (200, b"the part")


@pytest_twisted.ensureDeferred
async def test_boto3_lists_s3_tests_special_and_control_character_keys(server, bucket_name):
    # s3-tests test_bucket_create_special_key_names and test_bucket_list_special_prefix, plus
    # control characters; boto3 asks for encoding-type=url and decodes the keys itself.
    special = [" ", '"', "$", "%", "&", "'", "<", ">", "_", "_ ", "_ _", "__"]
    controls = ["ctl\x01", "ctl\x0a", "ctl\x0d", "ctl\x1f", "ctl\x7f"]
    prefixed = ["_bla/1", "_bla/2", "_bla/3", "_bla/4", "abcd"]
    keys = sorted(special + controls + prefixed)
    await make_bucket(server, bucket_name)
    s3 = server.boto3()

    def put_and_list():
        for key in keys:
            s3.put_object(Bucket=bucket_name, Key=key, Body=key.encode())
        v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket_name)["Contents"]]
        v2 = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket_name)["Contents"]]
        under = s3.list_objects(Bucket=bucket_name, Prefix="_bla/")["Contents"]
        bodies = {key: s3.get_object(Bucket=bucket_name, Key=key)["Body"].read() for key in controls}
        return v1, v2, len(under), bodies

    v1, v2, under, bodies = await server.blocking(put_and_list)
    assert v1 == v2 == keys
    assert under == 4
    assert bodies == {key: key.encode() for key in controls}


@pytest_twisted.ensureDeferred
async def test_a_plain_listing_carries_every_control_character_key(server, bucket_name):
    await make_bucket(server, bucket_name)
    for key in ("ctl%01", "ctl%0A", "ctl%0D", "ctl%1F"):
        response, _ = await call(server, "PUT", f"/{bucket_name}/{key}", body=b"x")
        assert response.code == 200
    response, content = await call(server, "GET", f"/{bucket_name}?list-type=2")
    assert response.code == 200
    for reference in (b"<Key>ctl&#x1;</Key>", b"<Key>ctl\n</Key>", b"<Key>ctl&#13;</Key>", b"<Key>ctl&#x1F;</Key>"):
        assert reference in content
    # The document is XML but for the references XML 1.0 forbids: with them gone it parses.
    etree.fromstring(re.sub(rb"&#x(1|1F);", b"", content))
