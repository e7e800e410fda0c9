"""Multipart uploads as libcloud, boto3 and awscli drive them, and every refusal AWS answers.

Each refusal asserts AWS's error code and that nothing changed: files on disk
and index rows, uploads and parts included.
"""

import base64
import hashlib
import io
import os
import shutil
import subprocess
import threading
import time
import zlib

import pytest
import pytest_twisted
from boto3.s3.transfer import TransferConfig
from twisted.internet import threads

from objectstore.storage.multipart import MIN_PART_SIZE
from tests.conftest import ADMIN_KEYS, REGION
from tests.functional.test_auth import aurora_driver, send_in_pieces, signed_chunked_request
from tests.functional.test_put_get import connect, read_until_closed, request_head, status_of
from tests.functional.test_tls import tls_boto3
from tests.helpers import make_bucket, refused, traced_writes, unchanged
from tests.s3http import call, error_code

MiB = 1024 * 1024
TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)


# -- helpers -----------------------------------------------------------------------------------


def server_blocking(f, *args, **kwargs):
    return threads.deferToThread(f, *args, **kwargs)


def composite_etag(parts):
    md5s = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(md5s).hexdigest()}-{len(parts)}"'


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def composite_crc32(parts):
    """AWS's COMPOSITE CRC32: the CRC32 of the parts' binary CRC32s, then -N."""
    digests = b"".join(zlib.crc32(part).to_bytes(4, "big") for part in parts)
    return f"{crc32_b64(digests)}-{len(parts)}"


def chunks_of(data, size):
    return [data[i : i + size] for i in range(0, len(data), size)]


def upload_parts(s3, bucket, key, parts, checksum=None, **create):
    """Create an upload of *key* and upload *parts* (numbered from 1); (upload id, [{PartNumber, ETag}]).

    With *checksum* (an algorithm, e.g. "SHA256"), the upload and each part
    carry it, and each part's entry its Checksum<ALGORITHM> too.
    """
    if checksum is not None:
        create["ChecksumAlgorithm"] = checksum
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    per_part = {} if checksum is None else {"ChecksumAlgorithm": checksum}
    done = []
    for number, body in enumerate(parts, 1):
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **per_part)
        entry = {"PartNumber": number, "ETag": answer["ETag"]}
        if checksum is not None:
            entry["Checksum" + checksum] = answer["Checksum" + checksum]
        done.append(entry)
    return upload_id, done


def complete(s3, bucket, key, upload_id, parts):
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})


def get(s3, bucket, key, **kwargs):
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def get_with_answer(s3, bucket, key, **kwargs):
    """(the GetObject answer, its body): both read in the calling thread, as a blocking client must."""
    answer = s3.get_object(Bucket=bucket, Key=key, **kwargs)
    return answer, answer["Body"].read()


async def new_upload(server, bucket, key, parts, **create):
    """A bucket with an upload of *key* whose *parts* are uploaded; (client, upload id, parts done)."""
    s3 = server.boto3()
    await make_bucket(server, bucket)
    upload_id, done = await server.blocking(upload_parts, s3, bucket, key, parts, **create)
    return s3, upload_id, done


def uploads_and_parts(server):
    conn = server.store.index.reader()
    return conn.execute("SELECT COUNT(*) FROM uploads").fetchone()[0], conn.execute(
        "SELECT COUNT(*) FROM parts"
    ).fetchone()[0]


# -- boto3: the transfer manager ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_boto3_upload_fileobj_in_8_mib_parts_and_download_fileobj_round_trip(server, bucket_name):
    s3 = server.boto3()
    data = os.urandom(40 * MiB + 12345)
    await make_bucket(server, bucket_name)

    def round_trip():
        s3.upload_fileobj(io.BytesIO(data), bucket_name, "big.bin", Config=TRANSFER)
        head = s3.head_object(Bucket=bucket_name, Key="big.bin", ChecksumMode="ENABLED")
        out = io.BytesIO()
        s3.download_fileobj(bucket_name, "big.bin", out, Config=TRANSFER)
        return head, out.getvalue(), s3.list_multipart_uploads(Bucket=bucket_name).get("Uploads", [])

    head, downloaded, uploads = await server.blocking(round_trip)
    assert downloaded == data
    parts = chunks_of(data, 8 * MiB)
    assert (head["ContentLength"], head["ETag"]) == (len(data), composite_etag(parts))
    # boto3 asks for CRC32 part checksums: the object's is AWS's composite of them.
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (composite_crc32(parts), "COMPOSITE")
    assert uploads == []
    assert uploads_and_parts(server) == (0, 0)
    await server.settled()
    # Completing copied nothing: the object's blobs are the six parts' own, and tmp/ is clean.
    assert len(server.blob_files()) == len(parts)
    assert server.tmp_files() == []


@pytest_twisted.ensureDeferred
async def test_boto3_over_tls_sends_parts_as_aws_chunked_with_a_checksum_trailer(tmp_path):
    data = os.urandom(20 * MiB)
    async with tls_boto3(tmp_path) as s3:
        sent = []
        s3.meta.events.register("before-send.s3.UploadPart", lambda request, **_: sent.append(dict(request.headers)))

        def round_trip():
            s3.create_bucket(Bucket="tls-multipart")
            s3.upload_fileobj(io.BytesIO(data), "tls-multipart", "k", Config=TRANSFER)
            head = s3.head_object(Bucket="tls-multipart", Key="k", ChecksumMode="ENABLED")
            return head, s3.get_object(Bucket="tls-multipart", Key="k")["Body"].read()

        head, downloaded = await server_blocking(round_trip)
    assert downloaded == data
    assert {headers["X-Amz-Trailer"] for headers in sent} == {b"x-amz-checksum-crc32"}
    assert {headers["Content-Encoding"] for headers in sent} == {b"aws-chunked"}
    assert head["ChecksumCRC32"] == composite_crc32(chunks_of(data, 8 * MiB))


@pytest_twisted.ensureDeferred
async def test_a_signed_aws_chunked_part_is_checked_chunk_by_chunk(server, bucket_name):
    _, upload_id, _ = await new_upload(server, bucket_name, "k", [])
    path = f"/{bucket_name}/k?partNumber=1&uploadId={upload_id}"
    payload = os.urandom(9000)
    head, body = signed_chunked_request(server, path, payload, [4000, 4000, 1000], tamper=1)
    async with unchanged(server, settle=True):
        status, content = await server.blocking(send_in_pieces, server.port, head, body, 1500)
        assert (status, error_code(content)) == (403, "SignatureDoesNotMatch")

    trailer = ("x-amz-checksum-crc32", crc32_b64(payload))
    head, body = signed_chunked_request(server, path, payload, [4000, 4000, 1000], trailer=trailer)
    status, content = await server.blocking(send_in_pieces, server.port, head, body, 1500)
    assert status == 200, content
    listed = await server.blocking(server.boto3().list_parts, Bucket=bucket_name, Key="k", UploadId=upload_id)
    assert [(p["ETag"], p["Size"]) for p in listed["Parts"]] == [(f'"{hashlib.md5(payload).hexdigest()}"', 9000)]


@pytest_twisted.ensureDeferred
async def test_upload_keeps_the_content_headers_metadata_and_acl_asked_at_create(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), b"tail"]
    create = dict(ContentType="text/x-log", Metadata={"colour": "blue"}, ACL="public-read", CacheControl="no-cache")
    s3, upload_id, done = await new_upload(server, bucket_name, "log", parts, **create)
    await server.blocking(complete, s3, bucket_name, "log", upload_id, done)

    head = await server.blocking(s3.head_object, Bucket=bucket_name, Key="log")
    assert (head["ContentType"], head["Metadata"], head["CacheControl"]) == (
        "text/x-log",
        {"colour": "blue"},
        "no-cache",
    )
    # public-read: anyone may read it.
    response, content = await call(server, "GET", f"/{bucket_name}/log", keys=None)
    assert (response.code, content) == (200, b"".join(parts))


@pytest_twisted.ensureDeferred
async def test_complete_answers_aws_document_and_accepts_etags_without_quotes(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), b"end"]
    s3, upload_id, done = await new_upload(server, bucket_name, "dir/k", parts)
    body = "<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag'].strip(chr(34))}</ETag></Part>" for p in done
    )
    body += "</CompleteMultipartUpload>"
    response, content = await call(server, "POST", f"/{bucket_name}/dir/k?uploadId={upload_id}", body=body.encode())
    assert response.code == 200, content
    assert content.decode().endswith(
        '<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Location>{server.url}/{bucket_name}/dir/k</Location><Bucket>{bucket_name}</Bucket><Key>dir/k</Key>"
        f"<ETag>{composite_etag(parts)}</ETag></CompleteMultipartUploadResult>"
    )
    assert await server.blocking(get, s3, bucket_name, "dir/k") == b"".join(parts)


@pytest_twisted.ensureDeferred
async def test_sha256_upload_gets_a_composite_checksum_of_its_parts(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(1000)]
    s3 = server.boto3()
    await make_bucket(server, bucket_name)

    def run():
        upload_id, done = upload_parts(s3, bucket_name, "k", parts, checksum="SHA256")
        listed = s3.list_parts(Bucket=bucket_name, Key="k", UploadId=upload_id)
        result = complete(s3, bucket_name, "k", upload_id, done)
        return listed, result

    listed, result = await server.blocking(run)
    sha = [hashlib.sha256(p).digest() for p in parts]
    assert [p["ChecksumSHA256"] for p in listed["Parts"]] == [base64.b64encode(d).decode() for d in sha]
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == ("SHA256", "COMPOSITE")
    expected = base64.b64encode(hashlib.sha256(b"".join(sha)).digest()).decode() + "-2"
    assert (result["ChecksumSHA256"], result["ChecksumType"]) == (expected, "COMPOSITE")


@pytest_twisted.ensureDeferred
async def test_full_object_crc32c_is_combined_from_the_parts(server, bucket_name):
    from awscrt import checksums as crt

    parts = [os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE + 7), os.urandom(99)]
    whole = base64.b64encode(crt.crc32c(b"".join(parts)).to_bytes(4, "big")).decode()
    s3 = server.boto3()
    await make_bucket(server, bucket_name)

    def run():
        upload_id, done = upload_parts(s3, bucket_name, "k", parts, checksum="CRC32C", ChecksumType="FULL_OBJECT")
        result = s3.complete_multipart_upload(
            Bucket=bucket_name,
            Key="k",
            UploadId=upload_id,
            MultipartUpload={"Parts": done},
            ChecksumCRC32C=whole,
            ChecksumType="FULL_OBJECT",
        )
        head = s3.head_object(Bucket=bucket_name, Key="k", ChecksumMode="ENABLED")
        return result, head

    result, head = await server.blocking(run)
    assert (result["ChecksumCRC32C"], result["ChecksumType"]) == (whole, "FULL_OBJECT")
    assert (head["ChecksumCRC32C"], head["ChecksumType"]) == (whole, "FULL_OBJECT")


# -- reading a multipart object ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_ranges_across_part_boundaries_read_the_right_bytes(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE), os.urandom(1000)]
    whole = b"".join(parts)
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    boundary = MIN_PART_SIZE
    ranges = [
        (boundary - 10, boundary + 9),  # across the first boundary
        (boundary - 1, 2 * boundary),  # the whole second part and one byte either side
        (0, len(whole) - 1),
        (2 * boundary - 3, len(whole) - 1),  # into the last part, to the end
    ]
    for first, last in ranges:
        data = await server.blocking(get, s3, bucket_name, "k", Range=f"bytes={first}-{last}")
        assert data == whole[first : last + 1], (first, last)
    assert await server.blocking(get, s3, bucket_name, "k", Range="bytes=-1500") == whole[-1500:]
    assert await server.blocking(get, s3, bucket_name, "k") == whole


@pytest_twisted.ensureDeferred
async def test_part_number_reads_one_part_with_its_range_and_the_parts_count(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE + 1), b"last"]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    total = sum(map(len, parts))
    start = 0
    for number, body in enumerate(parts, 1):
        answer, data = await server.blocking(get_with_answer, s3, bucket_name, "k", PartNumber=number)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert answer["ContentRange"] == f"bytes {start}-{start + len(body) - 1}/{total}"
        assert (answer["PartsCount"], answer["ETag"]) == (3, composite_etag(parts))
        assert data == body
        head = await server.blocking(s3.head_object, Bucket=bucket_name, Key="k", PartNumber=number)
        assert (head["ContentLength"], head["PartsCount"]) == (len(body), 3)
        start += len(body)


@pytest_twisted.ensureDeferred
async def test_an_empty_last_part_is_a_part_of_no_bytes(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), b""]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    assert await server.blocking(get, s3, bucket_name, "k") == parts[0]
    answer, data = await server.blocking(get_with_answer, s3, bucket_name, "k", PartNumber=2)
    assert (answer["ResponseMetadata"]["HTTPStatusCode"], answer["ContentLength"], data) == (200, 0, b"")
    assert (answer["PartsCount"], answer["ETag"]) == (2, composite_etag(parts))


@pytest_twisted.ensureDeferred
async def test_part_number_of_an_object_uploaded_whole_is_its_only_part(server, bucket_name):
    s3 = server.boto3()
    await make_bucket(server, bucket_name)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"whole body")
    answer, data = await server.blocking(get_with_answer, s3, bucket_name, "k", PartNumber=1)
    assert (data, answer["ContentRange"]) == (b"whole body", "bytes 0-9/10")
    assert "PartsCount" not in answer
    error = await refused(
        server, "InvalidPartNumber", lambda: s3.get_object(Bucket=bucket_name, Key="k", PartNumber=2), settle=True
    )
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 416


@pytest_twisted.ensureDeferred
async def test_part_number_past_the_last_part_or_with_a_range_is_refused(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), b"x"]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    await refused(
        server, "InvalidPartNumber", lambda: s3.get_object(Bucket=bucket_name, Key="k", PartNumber=3), 416, settle=True
    )
    await refused(
        server,
        "InvalidRequest",
        lambda: s3.get_object(Bucket=bucket_name, Key="k", PartNumber=1, Range="bytes=0-1"),
        400,
        settle=True,
    )
    for bad in ("0", "10001", "x"):
        response, content = await call(server, "GET", f"/{bucket_name}/k?partNumber={bad}")
        assert (response.code, error_code(content)) == (400, "InvalidArgument")


@pytest_twisted.ensureDeferred
async def test_head_with_a_part_number_past_the_last_part_is_416_with_no_body(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), b"x"]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    error = await refused(
        server, "416", lambda: s3.head_object(Bucket=bucket_name, Key="k", PartNumber=3), 416, settle=True
    )
    assert error["ResponseMetadata"]["HTTPHeaders"].get("content-range") == f"bytes */{MIN_PART_SIZE + 1}"
    response, content = await call(server, "HEAD", f"/{bucket_name}/k?partNumber=3")
    assert (response.code, content) == (416, b"")
    response, content = await call(server, "GET", f"/{bucket_name}/k?partNumber=3")
    assert (response.code, error_code(content)) == (416, "InvalidPartNumber")


@pytest_twisted.ensureDeferred
async def test_a_get_during_complete_sees_the_old_object_or_the_new_one_whole(server, bucket_name):
    old = os.urandom(3 * MiB)
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE), os.urandom(MiB)]
    new = b"".join(parts)
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=old)
    reader = server.boto3()
    seen = []
    first_read, stop = threading.Event(), threading.Event()

    def read_loop():
        while not stop.is_set():
            seen.append(get(reader, bucket_name, "k"))
            first_read.set()

    def race():
        loop = threading.Thread(target=read_loop)
        loop.start()
        first_read.wait(10)
        complete(s3, bucket_name, "k", upload_id, done)
        # A few reads after the commit too.
        count = len(seen)
        while len(seen) < count + 3 and loop.is_alive():
            time.sleep(0.01)
        stop.set()
        loop.join(10)

    await server.blocking(race)
    assert seen[0] == old and seen[-1] == new
    assert all(body in (old, new) for body in seen)


# -- replacing, aborting, freeing ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_uploading_a_part_number_again_replaces_the_part_and_frees_its_blob(server, bucket_name):
    first, second = os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE + 5)
    s3, upload_id, _ = await new_upload(server, bucket_name, "k", [first])
    await server.settled()
    blobs = server.blob_files()

    answer = await server.blocking(
        s3.upload_part, Bucket=bucket_name, Key="k", UploadId=upload_id, PartNumber=1, Body=second
    )
    listed = await server.blocking(s3.list_parts, Bucket=bucket_name, Key="k", UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [(1, answer["ETag"], len(second))]
    await server.settled()
    assert len(server.blob_files()) == len(blobs) and server.blob_files() != blobs
    await server.blocking(complete, s3, bucket_name, "k", upload_id, [{"PartNumber": 1, "ETag": answer["ETag"]}])
    assert await server.blocking(get, s3, bucket_name, "k") == second


@pytest_twisted.ensureDeferred
async def test_abort_frees_every_part_blob(server, bucket_name):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()

    def abort(upload_id):
        response = s3.abort_multipart_upload(Bucket=bucket_name, Key="k", UploadId=upload_id)
        return response["ResponseMetadata"]["HTTPStatusCode"]

    async with unchanged(server, settle=True):
        assert server.blob_files() == []
        upload_id, _ = await server.blocking(
            upload_parts, s3, bucket_name, "k", [os.urandom(MIN_PART_SIZE), os.urandom(1000), b""]
        )
        await server.settled()
        assert len(server.blob_files()) == 3  # an empty part has its (empty) blob too
        assert await server.blocking(abort, upload_id) == 204
    assert server.blob_files() == []


@pytest_twisted.ensureDeferred
async def test_complete_frees_the_parts_it_leaves_out(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(2000), os.urandom(3000)]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    await server.blocking(complete, s3, bucket_name, "k", upload_id, [done[0], done[2]])
    await server.settled()
    assert await server.blocking(get, s3, bucket_name, "k") == parts[0] + parts[2]
    assert len(server.blob_files()) == 2
    assert uploads_and_parts(server) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_complete_replaces_the_previous_object_and_frees_its_blob(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), b"new"]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=os.urandom(200_000))
    await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    await server.settled()
    assert await server.blocking(get, s3, bucket_name, "k") == b"".join(parts)
    assert len(server.blob_files()) == 2
    listing = await server.blocking(s3.list_objects_v2, Bucket=bucket_name)
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listing["Contents"]] == [
        ("k", MIN_PART_SIZE + 3, composite_etag(parts))
    ]


@pytest_twisted.ensureDeferred
async def test_deleting_a_bucket_drops_its_uploads_and_their_parts(server, bucket_name):
    s3, _, _ = await new_upload(server, bucket_name, "k", [b"part one"])
    response, _ = await call(server, "DELETE", f"/{bucket_name}")
    assert response.code == 204
    await server.settled()
    assert uploads_and_parts(server) == (0, 0)
    assert server.blob_files() == []


# -- UploadPartCopy ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_upload_part_copy_copies_ranges_of_an_object(server, bucket_name):
    source = os.urandom(MIN_PART_SIZE + 1234)
    s3 = server.boto3()
    await make_bucket(server, bucket_name)

    def run():
        s3.put_object(Bucket=bucket_name, Key="source", Body=source)
        upload_id = s3.create_multipart_upload(Bucket=bucket_name, Key="copy")["UploadId"]
        done = []
        for number, (first, last) in enumerate([(0, MIN_PART_SIZE - 1), (MIN_PART_SIZE, len(source) - 1)], 1):
            answer = s3.upload_part_copy(
                Bucket=bucket_name,
                Key="copy",
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": bucket_name, "Key": "source"},
                CopySourceRange=f"bytes={first}-{last}",
            )
            done.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
        complete(s3, bucket_name, "copy", upload_id, done)
        return get(s3, bucket_name, "copy"), done

    copied, done = await server.blocking(run)
    assert copied == source
    assert done[1]["ETag"] == f'"{hashlib.md5(source[MIN_PART_SIZE:]).hexdigest()}"'


@pytest_twisted.ensureDeferred
async def test_upload_part_copy_of_a_multipart_object_whole(server, bucket_name):
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(10)]
    s3, upload_id, done = await new_upload(server, bucket_name, "source", parts)
    await server.blocking(complete, s3, bucket_name, "source", upload_id, done)

    def run():
        target = s3.create_multipart_upload(Bucket=bucket_name, Key="copy")["UploadId"]
        answer = s3.upload_part_copy(
            Bucket=bucket_name, Key="copy", UploadId=target, PartNumber=1, CopySource=f"{bucket_name}/source"
        )
        complete(s3, bucket_name, "copy", target, [{"PartNumber": 1, "ETag": answer["CopyPartResult"]["ETag"]}])
        return get(s3, bucket_name, "copy")

    assert await server.blocking(run) == b"".join(parts)


@pytest_twisted.ensureDeferred
async def test_upload_part_copy_conditions_and_ranges_are_checked(server, bucket_name):
    s3, upload_id, _ = await new_upload(server, bucket_name, "copy", [])
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="source", Body=b"0123456789")

    def copy(**kwargs):
        return lambda: s3.upload_part_copy(
            Bucket=bucket_name,
            Key="copy",
            UploadId=upload_id,
            PartNumber=1,
            CopySource=f"{bucket_name}/source",
            **kwargs,
        )

    await refused(server, "PreconditionFailed", copy(CopySourceIfMatch='"not-the-etag"'), 412, settle=True)
    await refused(server, "InvalidArgument", copy(CopySourceRange="bytes=5-10"), 400, settle=True)
    await refused(server, "InvalidArgument", copy(CopySourceRange="bytes=-3"), 400, settle=True)
    await refused(
        server,
        "NoSuchKey",
        lambda: s3.upload_part_copy(
            Bucket=bucket_name, Key="copy", UploadId=upload_id, PartNumber=1, CopySource=f"{bucket_name}/absent"
        ),
        settle=True,
    )
    answer = await server.blocking(copy(CopySourceRange="bytes=2-4"))
    assert answer["CopyPartResult"]["ETag"] == f'"{hashlib.md5(b"234").hexdigest()}"'


@pytest_twisted.ensureDeferred
async def test_upload_part_copy_ranges_s3_tests_tries_are_refused_as_aws_refuses_them(server, bucket_name):
    # AWS: a range past the source is 400 InvalidArgument "Range specified is not valid for source
    # object of size: N" (s3-tests' test_multipart_copy_invalid_range asks for InvalidRange instead);
    # a range not of the form bytes=first-last is 400 InvalidArgument (test_multipart_copy_improper_range).
    s3, upload_id, _ = await new_upload(server, bucket_name, "dest", [])
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="source", Body=b"01234")

    def copy(copy_range):
        return lambda: s3.upload_part_copy(
            Bucket=bucket_name,
            Key="dest",
            UploadId=upload_id,
            PartNumber=1,
            CopySource={"Bucket": bucket_name, "Key": "source"},
            CopySourceRange=copy_range,
        )

    error = await refused(server, "InvalidArgument", copy("bytes=0-21"), 400, settle=True)
    assert error["Error"]["Message"] == "Range specified is not valid for source object of size: 5"
    for improper in ("0-2", "bytes=0", "bytes=hello-world", "bytes=0-bar", "bytes=hello-", "bytes=0-2,3-5"):
        error = await refused(server, "InvalidArgument", copy(improper), 400, settle=True)
        assert error["Error"]["ArgumentName"] == "x-amz-copy-source-range"
    parts = await server.blocking(s3.list_parts, Bucket=bucket_name, Key="dest", UploadId=upload_id)
    assert parts.get("Parts", []) == []


# -- listing -----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_list_parts_pages_with_max_parts_and_part_number_marker(server, bucket_name):
    bodies = [b"part %d" % n for n in range(1, 6)]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", bodies)

    def pages():
        found, marker = [], 0
        while True:
            page = s3.list_parts(Bucket=bucket_name, Key="k", UploadId=upload_id, MaxParts=2, PartNumberMarker=marker)
            found.append(
                ([p["PartNumber"] for p in page["Parts"]], page["IsTruncated"], page.get("NextPartNumberMarker"))
            )
            if not page["IsTruncated"]:
                return found, page
            marker = page["NextPartNumberMarker"]

    found, last = await server.blocking(pages)
    assert found == [([1, 2], True, 2), ([3, 4], True, 4), ([5], False, 5)]
    admin = server.user_id("admin")
    assert last["Initiator"]["ID"] == last["Owner"]["ID"] == admin
    assert (last["StorageClass"], last["MaxParts"], last["PartNumberMarker"]) == ("STANDARD", 2, 4)
    assert last["Parts"][0]["ETag"] == done[4]["ETag"] and last["Parts"][0]["Size"] == len(bodies[4])
    paginator = s3.get_paginator("list_parts")
    pages_seen = await server.blocking(
        lambda: [
            [p["PartNumber"] for p in page.get("Parts", [])]
            for page in paginator.paginate(Bucket=bucket_name, Key="k", UploadId=upload_id, MaxParts=3)
        ]
    )
    assert pages_seen == [[1, 2, 3], [4, 5]]


@pytest_twisted.ensureDeferred
async def test_list_multipart_uploads_pages_by_key_then_age(server, bucket_name):
    s3 = server.boto3()
    await make_bucket(server, bucket_name)

    def create_all():
        ids = {}
        for key in ("b", "a", "b", "c/one", "c/two", "d"):
            ids.setdefault(key, []).append(s3.create_multipart_upload(Bucket=bucket_name, Key=key)["UploadId"])
        return ids

    ids = await server.blocking(create_all)
    expected = [("a", ids["a"][0]), ("b", ids["b"][0]), ("b", ids["b"][1]), ("c/one", ids["c/one"][0])]
    expected += [("c/two", ids["c/two"][0]), ("d", ids["d"][0])]

    def pages(**kwargs):
        found, markers = [], {}
        while True:
            page = s3.list_multipart_uploads(Bucket=bucket_name, MaxUploads=2, **kwargs, **markers)
            found.append(
                (
                    [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])],
                    [p["Prefix"] for p in page.get("CommonPrefixes", [])],
                    page["IsTruncated"],
                )
            )
            if not page["IsTruncated"]:
                return found
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    assert await server.blocking(pages) == [
        (expected[0:2], [], True),
        (expected[2:4], [], True),
        (expected[4:6], [], False),
    ]
    assert await server.blocking(pages, Delimiter="/") == [
        (expected[0:2], [], True),
        ([expected[2]], ["c/"], True),
        ([expected[5]], [], False),
    ]
    by_prefix = await server.blocking(s3.list_multipart_uploads, Bucket=bucket_name, Prefix="c/")
    assert [u["Key"] for u in by_prefix["Uploads"]] == ["c/one", "c/two"]
    # A key marker alone resumes after every upload of that key.
    after_b = await server.blocking(s3.list_multipart_uploads, Bucket=bucket_name, KeyMarker="b")
    assert [u["Key"] for u in after_b["Uploads"]] == ["c/one", "c/two", "d"]
    paginator = s3.get_paginator("list_multipart_uploads")
    listed = await server.blocking(
        lambda: [
            (u["Key"], u["UploadId"])
            for page in paginator.paginate(Bucket=bucket_name, PaginationConfig={"PageSize": 4})
            for u in page.get("Uploads", [])
        ]
    )
    assert listed == expected


@pytest_twisted.ensureDeferred
async def test_list_multipart_uploads_document_is_aws_one(server, bucket_name):
    s3, upload_id, _ = await new_upload(server, bucket_name, "a key&", [])
    response, content = await call(server, "GET", f"/{bucket_name}?uploads&encoding-type=url")
    assert response.code == 200
    admin = server.user_id("admin")
    text = content.decode()
    initiated = text.split("<Initiated>")[1].split("</Initiated>")[0]
    assert text.endswith(
        '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Bucket>{bucket_name}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
        f"<NextKeyMarker>a%20key%26</NextKeyMarker><NextUploadIdMarker>{upload_id}</NextUploadIdMarker>"
        "<Prefix></Prefix><EncodingType>url</EncodingType><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>"
        f"<Upload><Key>a%20key%26</Key><UploadId>{upload_id}</UploadId>"
        f"<Initiator><ID>{admin}</ID><DisplayName>admin</DisplayName></Initiator>"
        f"<Owner><ID>{admin}</ID><DisplayName>admin</DisplayName></Owner>"
        f"<StorageClass>STANDARD</StorageClass><Initiated>{initiated}</Initiated></Upload>"
        "</ListMultipartUploadsResult>"
    )


# -- refusals -------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_unknown_upload_id_is_no_such_upload_everywhere(server, bucket_name):
    s3, upload_id, done = await new_upload(server, bucket_name, "k", [b"x"])
    ghost = "0" * 14 + "not-an-upload"
    calls = [
        lambda: s3.upload_part(Bucket=bucket_name, Key="k", UploadId=ghost, PartNumber=1, Body=b"x"),
        lambda: complete(s3, bucket_name, "k", ghost, done),
        lambda: s3.abort_multipart_upload(Bucket=bucket_name, Key="k", UploadId=ghost),
        lambda: s3.list_parts(Bucket=bucket_name, Key="k", UploadId=ghost),
        # The id of an upload of another key is no upload of this one.
        lambda: s3.upload_part(Bucket=bucket_name, Key="other", UploadId=upload_id, PartNumber=1, Body=b"x"),
    ]
    for make_call in calls:
        await refused(server, "NoSuchUpload", make_call, 404, settle=True)


@pytest_twisted.ensureDeferred
async def test_the_same_complete_again_is_200_with_the_same_result(server, bucket_name):
    # As on S3 (s3-tests' test_multipart_upload_small, "check extra client.complete_multipart_upload").
    parts = [os.urandom(MIN_PART_SIZE), b"last part"]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts, checksum="SHA256")
    first = await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    async with unchanged(server, settle=True):
        again = await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    fields = ("Location", "Bucket", "Key", "ETag", "ChecksumSHA256", "ChecksumType")
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert {f: again[f] for f in fields} == {f: first[f] for f in fields}
    assert first["ETag"] == composite_etag(parts)
    assert await server.blocking(get, s3, bucket_name, "k") == b"".join(parts)
    listed = await server.blocking(s3.list_objects_v2, Bucket=bucket_name, Prefix="k")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("k", sum(map(len, parts)))]
    # Naming other parts is no repeat: the upload is gone, as it is to every other verb.
    await refused(server, "NoSuchUpload", lambda: complete(s3, bucket_name, "k", upload_id, done[:1]), 404, settle=True)
    await refused(
        server,
        "NoSuchUpload",
        lambda: s3.upload_part(Bucket=bucket_name, Key="k", UploadId=upload_id, PartNumber=1, Body=b"late"),
        settle=True,
    )


@pytest_twisted.ensureDeferred
async def test_a_complete_again_after_the_key_was_overwritten_or_deleted_is_no_such_upload(server, bucket_name):
    s3, upload_id, done = await new_upload(server, bucket_name, "k", [b"only part"])
    await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"someone else's")
    await refused(server, "NoSuchUpload", lambda: complete(s3, bucket_name, "k", upload_id, done), 404, settle=True)
    assert await server.blocking(get, s3, bucket_name, "k") == b"someone else's"
    other, done = await server.blocking(upload_parts, s3, bucket_name, "j", [b"y"])
    await server.blocking(complete, s3, bucket_name, "j", other, done)
    await server.blocking(s3.delete_object, Bucket=bucket_name, Key="j")
    await refused(server, "NoSuchUpload", lambda: complete(s3, bucket_name, "j", other, done), 404, settle=True)


@pytest_twisted.ensureDeferred
async def test_a_complete_again_gets_the_same_document_byte_for_byte(server, bucket_name):
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    upload_id, done = await server.blocking(upload_parts, s3, bucket_name, "k", [b"abc"])
    body = complete_document([(p["PartNumber"], p["ETag"].strip('"')) for p in done])
    path = f"/{bucket_name}/k?uploadId={upload_id}"
    answers = [await call(server, "POST", path, body=body) for _ in range(2)]
    assert [response.code for response, _ in answers] == [200, 200]
    assert answers[0][1] == answers[1][1]


@pytest_twisted.ensureDeferred
async def test_resending_part_1_after_the_later_parts_finished_still_completes(server, bucket_name):
    # s3-tests' test_multipart_upload_resend_part: the part uploaded last under a number is the one used.
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE), b"tail"]
    s3, upload_id, done = await new_upload(server, bucket_name, "k", parts)
    resent = os.urandom(MIN_PART_SIZE)
    answer = await server.blocking(
        s3.upload_part, Bucket=bucket_name, Key="k", UploadId=upload_id, PartNumber=1, Body=resent
    )
    done[0] = {"PartNumber": 1, "ETag": answer["ETag"]}
    result = await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    assert result["ETag"] == composite_etag([resent, *parts[1:]])
    assert await server.blocking(get, s3, bucket_name, "k") == resent + parts[1] + parts[2]


@pytest_twisted.ensureDeferred
async def test_part_1_sent_twice_the_first_send_finishing_last_completes_with_it(server, bucket_name):
    # s3-tests' test_multipart_resend_first_finishes_last: the client lists both answers for part 1,
    # the resend's first; the part stored is the first send's, which finished last.
    s3, upload_id, _ = await new_upload(server, bucket_name, "m", [])

    def send(body):
        return s3.upload_part(Bucket=bucket_name, Key="m", UploadId=upload_id, PartNumber=1, Body=body)["ETag"]

    resent = await server.blocking(send, b"B" * 8)
    finished_last = await server.blocking(send, b"A" * 8)
    parts = [{"PartNumber": 1, "ETag": resent}, {"PartNumber": 1, "ETag": finished_last}]
    result = await server.blocking(complete, s3, bucket_name, "m", upload_id, parts)
    assert result["ETag"] == composite_etag([b"A" * 8])
    assert await server.blocking(get, s3, bucket_name, "m") == b"A" * 8


@pytest_twisted.ensureDeferred
async def test_aborted_uploads_are_no_such_upload(server, bucket_name):
    s3, other, _ = await new_upload(server, bucket_name, "j", [b"y"])
    await server.blocking(s3.abort_multipart_upload, Bucket=bucket_name, Key="j", UploadId=other)
    await refused(
        server,
        "NoSuchUpload",
        lambda: s3.upload_part(Bucket=bucket_name, Key="j", UploadId=other, PartNumber=1, Body=b"late"),
        settle=True,
    )


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("number", ["0", "10001", "-1", "one", ""])
async def test_upload_part_numbers_outside_1_to_10000_are_invalid_argument(server, bucket_name, number):
    _, upload_id, _ = await new_upload(server, bucket_name, "k", [])
    path = f"/{bucket_name}/k?partNumber={number}&uploadId={upload_id}"
    await refused(server, "InvalidArgument", call(server, "PUT", path, body=b"data"), 400, settle=True)


def complete_document(parts):
    return (
        "<CompleteMultipartUpload>"
        + "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in parts)
        + "</CompleteMultipartUpload>"
    ).encode()


@pytest_twisted.ensureDeferred
async def test_complete_refusals_are_aws_codes_and_change_nothing(server, bucket_name):
    big, small, last = os.urandom(MIN_PART_SIZE), os.urandom(MiB), b"last"
    s3, upload_id, done = await new_upload(server, bucket_name, "k", [big, small, last])
    e1, e2, e3 = (p["ETag"] for p in done)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"the old object")
    cases = [
        ("InvalidPart", [(1, e1), (2, '"' + "0" * 32 + '"')]),  # a wrong ETag
        ("InvalidPart", [(1, e1), (4, e1)]),  # a part never uploaded
        ("InvalidPartOrder", [(2, e2), (1, e1)]),
        ("InvalidPartOrder", [(1, e1), (2, e2), (2, e2), (1, e1)]),
        ("InvalidPart", [(1, e1), (1, e2)]),  # a number named again: its last entry counts
        ("EntityTooSmall", [(1, e1), (2, e2), (3, e3)]),  # part 2 is 1 MiB and not the last
        ("InvalidArgument", [(0, e1), (1, e1)]),
        ("InvalidArgument", [(1, e1), (10001, e1)]),
    ]
    for code, parts in cases:
        request = call(server, "POST", f"/{bucket_name}/k?uploadId={upload_id}", body=complete_document(parts))
        await refused(server, code, request, 400, settle=True)
    assert await server.blocking(get, s3, bucket_name, "k") == b"the old object"


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<Other><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Other>",
        b"<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&e;</ETag></Part></CompleteMultipartUpload>",
    ],
    ids=["empty", "garbage", "no-parts", "wrong-root", "no-number", "no-etag", "bad-number", "xxe"],
)
async def test_malformed_complete_documents_are_malformed_xml(server, bucket_name, body):
    _, upload_id, _ = await new_upload(server, bucket_name, "k", [b"x"])
    request = call(server, "POST", f"/{bucket_name}/k?uploadId={upload_id}", body=body)
    _, content = await refused(server, "MalformedXML", request, 400, settle=True)
    assert b"root:" not in content


@pytest_twisted.ensureDeferred
async def test_a_complete_document_over_the_cap_is_refused_unread(server, bucket_name):
    _, upload_id, _ = await new_upload(server, bucket_name, "k", [b"x"])
    body = b"<CompleteMultipartUpload>" + b" " * (5 * MiB) + b"</CompleteMultipartUpload>"
    path = f"/{bucket_name}/k?uploadId={upload_id}"
    head = request_head(server, "POST", path, {"Content-Length": str(len(body))})

    def exchange():
        # Unread, counted in bytes rather than seconds: only the cap (4 MiB) and one byte
        # more are sent; the answer comes with the rest of the body never sent.
        with connect(server, head) as sock:
            sock.sendall(body[: 4 * MiB + 1])
            return read_until_closed(sock)

    async with unchanged(server, settle=True):
        answer, closed = await server.blocking(exchange)
        assert closed and status_of(answer) == 400 and b"<Code>MalformedXML</Code>" in answer, answer


@pytest_twisted.ensureDeferred
async def test_a_part_with_a_wrong_digest_or_checksum_is_not_stored(server, bucket_name):
    s3, upload_id, _ = await new_upload(server, bucket_name, "k", [], ChecksumAlgorithm="CRC32")
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()

    def part(**kwargs):
        return lambda: s3.upload_part(Bucket=bucket_name, Key="k", UploadId=upload_id, PartNumber=1, **kwargs)

    await refused(server, "BadDigest", part(Body=b"data", ContentMD5=wrong_md5), 400, settle=True)
    await refused(server, "BadDigest", part(Body=b"data", ChecksumCRC32=crc32_b64(b"other")), 400, settle=True)
    # The upload said CRC32: a part checked with another algorithm is refused before its body.
    await refused(
        server, "InvalidRequest", part(Body=b"data", ChecksumSHA256=base64.b64encode(b"\0" * 32).decode()), settle=True
    )
    answer = await server.blocking(part(Body=b"data", ChecksumCRC32=crc32_b64(b"data")))
    assert answer["ChecksumCRC32"] == crc32_b64(b"data")


@pytest_twisted.ensureDeferred
async def test_a_part_over_5_gib_is_refused_before_its_body(server, bucket_name):
    _, upload_id, _ = await new_upload(server, bucket_name, "k", [])
    path = f"/{bucket_name}/k?partNumber=1&uploadId={upload_id}"
    head = request_head(server, "PUT", path, {"Content-Length": str(5 * 1024**3 + 1), "Expect": "100-continue"})

    def exchange():
        with connect(server, head) as sock:
            return read_until_closed(sock)

    async with unchanged(server, settle=True):
        answer, closed = await server.blocking(exchange)
        assert closed and status_of(answer) == 400 and b"<Code>EntityTooLarge</Code>" in answer


@pytest_twisted.ensureDeferred
async def test_bad_checksum_declarations_at_create_are_invalid_request(server, bucket_name):
    await make_bucket(server, bucket_name)
    for headers in (
        {"x-amz-checksum-algorithm": "MD4"},
        {"x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-type": "FULL_OBJECT"},
        {"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "COMPOSITE"},
        {"x-amz-checksum-type": "COMPOSITE"},
    ):
        await refused(
            server,
            "InvalidRequest",
            call(server, "POST", f"/{bucket_name}/k?uploads", headers=headers),
            400,
            settle=True,
        )


@pytest_twisted.ensureDeferred
async def test_only_writers_upload_and_only_the_initiator_or_bucket_owner_list_and_abort(server, bucket_name):
    alice, bob, eve = (server.create_user(name) for name in ("alice", "bob", "eve"))
    grants = f'id="{server.user_id("alice")}", id="{server.user_id("bob")}"'
    await make_bucket(server, bucket_name, headers={"x-amz-grant-write": grants})
    as_alice, as_bob, as_eve = server.boto3(alice), server.boto3(bob), server.boto3(eve)
    upload_id, done = await server.blocking(upload_parts, as_alice, bucket_name, "k", [b"from alice"])

    await refused(
        server, "AccessDenied", lambda: as_eve.create_multipart_upload(Bucket=bucket_name, Key="k"), 403, settle=True
    )
    await refused(
        server,
        "AccessDenied",
        lambda: as_eve.upload_part(Bucket=bucket_name, Key="k", UploadId=upload_id, PartNumber=2, Body=b"x"),
        settle=True,
    )
    await refused(server, "AccessDenied", lambda: complete(as_eve, bucket_name, "k", upload_id, done), settle=True)
    await refused(server, "AccessDenied", lambda: as_eve.list_multipart_uploads(Bucket=bucket_name), settle=True)
    # bob may write the bucket, but the upload is alice's.
    await refused(
        server, "AccessDenied", lambda: as_bob.list_parts(Bucket=bucket_name, Key="k", UploadId=upload_id), settle=True
    )
    await refused(
        server,
        "AccessDenied",
        lambda: as_bob.abort_multipart_upload(Bucket=bucket_name, Key="k", UploadId=upload_id),
        settle=True,
    )
    listed = await server.blocking(as_alice.list_parts, Bucket=bucket_name, Key="k", UploadId=upload_id)
    assert listed["Initiator"]["ID"] == listed["Owner"]["ID"] == server.user_id("alice")
    # The bucket's owner may abort it.
    await server.blocking(server.boto3().abort_multipart_upload, Bucket=bucket_name, Key="k", UploadId=upload_id)
    assert uploads_and_parts(server) == (0, 0)


# -- 10,000 parts -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_completing_10000_parts_answers_within_seconds(server, bucket_name):
    """10,000 parts of 5 MiB each (sparse files: no disk used), completed over HTTP."""
    await make_bucket(server, bucket_name)
    s3 = server.boto3()
    upload_id = (await server.blocking(s3.create_multipart_upload, Bucket=bucket_name, Key="k"))["UploadId"]
    etag = hashlib.md5(b"\0" * MIN_PART_SIZE).hexdigest()
    count = 10_000
    await server.blocking(_sparse_parts, server.store, upload_id, count, MIN_PART_SIZE, etag)
    body = complete_document([(n, f'"{etag}"') for n in range(1, count + 1)])

    started = time.monotonic()
    with traced_writes(server.store) as writes:
        response, content = await call(server, "POST", f"/{bucket_name}/k?uploadId={upload_id}", body=body)
    elapsed = time.monotonic() - started
    assert response.code == 200, content
    # "Within seconds" as work, which a loaded machine does not change: one index write, at
    # most a statement per part plus a handful. (The seconds are printed; bench/ measures.)
    (statements,) = writes
    assert len(statements) <= count + 8, sorted({s.split(" (")[0] for s in statements})
    expected_etag = hashlib.md5(bytes.fromhex(etag) * count).hexdigest() + f"-{count}"
    head = await server.blocking(s3.head_object, Bucket=bucket_name, Key="k", PartNumber=count)
    assert (head["ETag"], head["PartsCount"], head["ContentLength"]) == (f'"{expected_etag}"', count, MIN_PART_SIZE)
    # A read across the boundary of parts 5000 and 5001.
    boundary = 5000 * MIN_PART_SIZE
    data = await server.blocking(get, s3, bucket_name, "k", Range=f"bytes={boundary - 2}-{boundary + 1}")
    assert data == b"\0" * 4
    print(f"\nComplete of {count} parts: {elapsed:.2f} s")


def _sparse_parts(store, upload_id, count, size, etag):
    """Part rows 1..count of *upload_id*, each a sparse blob of *size* bytes at home (blocking)."""
    import json

    from objectstore.storage.blobs import new_blob_id

    rows = []
    for number in range(1, count + 1):
        blob = new_blob_id()
        path = store.files.path(blob)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(size)
        rows.append((upload_id, number, blob, size, etag, json.dumps({}), time.time()))

    def insert(conn):
        conn.executemany(
            "INSERT INTO parts (upload, number, blob, size, etag, checksum, modified) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    from twisted.internet import reactor, threads

    threads.blockingCallFromThread(reactor, store.disk.write, insert)


# -- libcloud ---------------------------------------------------------------------------------


def generated(size, seed=b"libcloud"):
    """*size* deterministic bytes from a generator of uneven pieces, and the bytes themselves."""
    data = hashlib.shake_256(seed).digest(size)
    pieces = [data[i : i + 700_001] for i in range(0, size, 700_001)]
    return iter(pieces), data


@pytest_twisted.ensureDeferred
async def test_libcloud_uploads_a_32_mib_generator_in_parts_and_downloads_it_back(server, bucket_name):
    driver = server.libcloud()
    stream, data = generated(32 * MiB)

    def round_trip():
        container = driver.create_container(bucket_name)
        uploaded = driver.upload_object_via_stream(stream, container, "stream.bin")
        obj = driver.get_object(bucket_name, "stream.bin")
        return uploaded, obj, b"".join(driver.download_object_as_stream(obj))

    uploaded, obj, downloaded = await server.blocking(round_trip)
    assert downloaded == data
    libcloud_parts = chunks_of(data, 5 * MiB)  # libcloud's part size
    assert obj.size == len(data) and f'"{obj.hash}"' == composite_etag(libcloud_parts)
    assert uploaded.hash == composite_etag(libcloud_parts)


@pytest_twisted.ensureDeferred
async def test_libcloud_lists_and_cleans_up_uncommitted_uploads_by_prefix(server, bucket_name):
    driver = server.libcloud()
    s3 = server.boto3()
    await make_bucket(server, bucket_name)

    def run():
        container = driver.get_container(bucket_name)
        for key in ("logs/a", "logs/b", "keep/c"):
            s3.create_multipart_upload(Bucket=bucket_name, Key=key)
        listed = sorted((u.key, u.initiator, u.owner) for u in driver.ex_iterate_multipart_uploads(container))
        driver.ex_cleanup_all_multipart_uploads(container, prefix="logs/")
        after_prefix = [u.key for u in driver.ex_iterate_multipart_uploads(container)]
        driver.ex_cleanup_all_multipart_uploads(container)
        return listed, after_prefix, list(driver.ex_iterate_multipart_uploads(container))

    listed, after_prefix, after_all = await server.blocking(run)
    assert listed == [("keep/c", "admin", "admin"), ("logs/a", "admin", "admin"), ("logs/b", "admin", "admin")]
    assert after_prefix == ["keep/c"]
    assert after_all == []
    assert uploads_and_parts(server) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_libcloud_auroraobjects_driver_uploads_in_parts_with_v2_query_signatures(server, bucket_name):
    driver = aurora_driver(server)
    stream, data = generated(12 * MiB, seed=b"aurora")

    def round_trip():
        container = driver.create_container(bucket_name)
        driver.upload_object_via_stream(stream, container, "aurora.bin")
        obj = driver.get_object(bucket_name, "aurora.bin")
        return obj, b"".join(driver.download_object_as_stream(obj))

    obj, downloaded = await server.blocking(round_trip)
    assert downloaded == data
    assert f'"{obj.hash}"' == composite_etag(chunks_of(data, 5 * MiB))


# -- awscli ----------------------------------------------------------------------------------


def _aws_command():
    aws = shutil.which("aws")
    if aws is None:
        return None
    probe = subprocess.run([aws, "--version"], capture_output=True, text=True)
    return [aws] if probe.returncode == 0 else None


@pytest_twisted.ensureDeferred
async def test_awscli_cp_of_100_mib_up_and_down(server, bucket_name, tmp_path):
    aws = _aws_command()
    if aws is None:
        pytest.skip("awscli is not installed (pip install awscli)")
    await make_bucket(server, bucket_name)
    source = tmp_path / "upload.bin"
    with open(source, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(MiB))
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ADMIN_KEYS[0],
        "AWS_SECRET_ACCESS_KEY": ADMIN_KEYS[1],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }

    def cp(*args):
        command = [*aws, "--endpoint-url", server.url, "s3", "cp", "--only-show-errors", *args]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    url = f"s3://{bucket_name}/cli/upload.bin"
    await server.blocking(cp, str(source), url)
    await server.blocking(cp, url, str(tmp_path / "download.bin"))
    assert (tmp_path / "download.bin").read_bytes() == source.read_bytes()
    head = await server.blocking(server.boto3().head_object, Bucket=bucket_name, Key="cli/upload.bin")
    # awscli splits it in parts (8 MiB by default): a multipart object.
    assert head["ETag"].endswith('-13"') and head["ContentLength"] == 100 * MiB
    assert uploads_and_parts(server) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_complete_stating_two_whole_object_checksums_is_invalid_request_and_completes_nothing(
    server, bucket_name
):
    """As PutObject: one x-amz-checksum-* value at most; the upload stays as it was, to be completed."""
    s3, upload_id, done = await new_upload(server, bucket_name, "k", [b"only part"])
    document = complete_document([(part["PartNumber"], part["ETag"]) for part in done])
    headers = {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha256": "c2hh"}
    path = f"/{bucket_name}/k?uploadId={upload_id}"
    _, content = await refused(
        server, "InvalidRequest", call(server, "POST", path, headers=headers, body=document), 400, settle=True
    )
    assert b"Expecting a single x-amz-checksum- header" in content
    await server.blocking(complete, s3, bucket_name, "k", upload_id, done)
    assert await server.blocking(get, s3, bucket_name, "k") == b"only part"
