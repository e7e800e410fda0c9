"""S3 over TLS: an ssl: strports endpoint with a generated certificate."""

import contextlib
import datetime
import ipaddress
import os

import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import endpoints, reactor
from twisted.internet.threads import deferToThread

from objectstore.config import Config
from objectstore.service import build
from tests.conftest import ADMIN_KEYS, REGION


def make_certificate(folder):
    """A self-signed certificate for 127.0.0.1; returns (key path, cert path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@contextlib.asynccontextmanager
async def tls_boto3(tmp_path):
    """A boto3 client of a server listening on an ssl: endpoint with a generated certificate."""
    import boto3

    key_path, cert_path = make_certificate(tmp_path)
    top, site, _ = build(Config(listen=(), data_dir=str(tmp_path / "data"), admin_keys=ADMIN_KEYS), reactor)
    top.startService()
    endpoint = endpoints.serverFromString(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"
    )
    port = await endpoint.listen(site)
    try:
        yield boto3.client(
            "s3",
            endpoint_url=f"https://127.0.0.1:{port.getHost().port}",
            aws_access_key_id=ADMIN_KEYS[0],
            aws_secret_access_key=ADMIN_KEYS[1],
            region_name=REGION,
            verify=str(cert_path),
        )
    finally:
        await port.stopListening()
        top.stopService()


@pytest_twisted.ensureDeferred
async def test_boto3_round_trip_over_tls(tmp_path):
    async with tls_boto3(tmp_path) as s3:

        def round_trip():
            s3.create_bucket(Bucket="tls-bucket")
            # Over HTTPS boto3 sends aws-chunked bodies only with checksums on; the
            # plain body still has to arrive intact through TLS.
            s3.put_object(Bucket="tls-bucket", Key="secret", Body=b"x" * 300_000)
            return s3.get_object(Bucket="tls-bucket", Key="secret")["Body"].read()

        assert await deferToThread(round_trip) == b"x" * 300_000


class _UnseekableStream:
    """A body of unknown length: boto3 cannot measure it in advance."""

    def __init__(self, data, piece=100_000):
        self._data = data
        self._piece = piece

    def read(self, size=-1):
        size = self._piece if size is None or size < 0 else min(size, self._piece)
        data, self._data = self._data[:size], self._data[size:]
        return data


@pytest_twisted.ensureDeferred
async def test_boto3_streams_a_body_of_unknown_length_over_tls_and_no_framing_leaks(tmp_path):
    data = os.urandom(1_000_003)
    async with tls_boto3(tmp_path) as s3:
        sent = []
        s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers)))

        def round_trip():
            s3.create_bucket(Bucket="tls-stream")
            s3.put_object(Bucket="tls-stream", Key="stream", Body=_UnseekableStream(data))
            return s3.get_object(Bucket="tls-stream", Key="stream")["Body"].read()

        assert await deferToThread(round_trip) == data
    # Both framings stacked, and no length known to either: aws-chunked inside HTTP chunking.
    (headers,) = sent
    assert headers.get("Transfer-Encoding") == b"chunked"
    assert "Content-Length" not in headers
    names = {name.lower(): value for name, value in headers.items()}
    assert "x-amz-decoded-content-length" not in names
    assert names["x-amz-content-sha256"] == b"STREAMING-UNSIGNED-PAYLOAD-TRAILER"
