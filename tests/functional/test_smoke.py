"""The basic round trip through every client the product promises."""

import pytest_twisted

from tests.s3http import call, error_code, header


@pytest_twisted.ensureDeferred
async def test_boto3_bucket_and_object_round_trip(server, bucket_name):
    s3 = server.boto3()

    def round_trip():
        s3.create_bucket(Bucket=bucket_name)
        put = s3.put_object(Bucket=bucket_name, Key="dir/hello.txt", Body=b"hello", ContentType="text/plain")
        got = s3.get_object(Bucket=bucket_name, Key="dir/hello.txt")
        return put["ETag"], got["Body"].read(), got["ContentType"]

    etag, body, content_type = await server.blocking(round_trip)
    assert etag == '"5d41402abc4b2a76b9719d911017c592"'
    assert body == b"hello"
    assert content_type == "text/plain"


@pytest_twisted.ensureDeferred
async def test_treq_signed_requests_and_error_document(server, bucket_name):
    response, _ = await call(server, "PUT", f"/{bucket_name}")
    assert response.code == 200
    response, content = await call(server, "GET", f"/{bucket_name}/missing")
    assert response.code == 404
    assert error_code(content) == "NoSuchKey"
    assert header(response, "x-amz-request-id")
    assert b"<Resource>/" + bucket_name.encode() + b"/missing</Resource>" in content


@pytest_twisted.ensureDeferred
async def test_libcloud_upload_and_download(server, bucket_name, tmp_path):
    driver = server.libcloud()
    source = tmp_path / "source"
    source.write_bytes(b"abcdef")

    def round_trip():
        container = driver.create_container(bucket_name)
        obj = driver.upload_object(str(source), container, "x/y")
        return obj.hash, b"".join(driver.download_object_as_stream(driver.get_object(bucket_name, "x/y")))

    etag, body = await server.blocking(round_trip)
    assert body == b"abcdef"
    assert etag == "e80b5017098950fc58aad83c8c14978e"


@pytest_twisted.ensureDeferred
async def test_libcloud_streamed_upload_without_multipart_is_chunked_put(server, bucket_name):
    driver = server.libcloud()
    # Without multipart, libcloud streams the generator as one chunked PUT.
    driver.supports_s3_multipart_upload = False

    def round_trip():
        container = driver.create_container(bucket_name)
        driver.upload_object_via_stream(iter([b"abc", b"def"] * 1000), container, "streamed")
        return b"".join(driver.download_object_as_stream(driver.get_object(bucket_name, "streamed")))

    assert await server.blocking(round_trip) == b"abcdef" * 1000
