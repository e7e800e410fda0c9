"""Data dirs written by earlier releases: how one is made, and what a server shows of it.

Both halves go through interfaces every release has (the installed
``twistd objectstore``, ``objectstore-manage``, ``objectstore-bundle``, and
S3/EC2 requests), never through the index's tables, so that the fixture made
with an old release and the check run by a new one speak of the same things.

Make a fixture with the release it stands for (its commit checked out and
installed in a virtualenv of its own)::

    python -m tests.upgrade make tests/fixtures/upgrade/NAME

which writes ``NAME.tar.gz`` (the stopped server's data dir) and
``NAME.json`` (the snapshot: what the server served). tests/functional/
test_upgrade.py opens every fixture with the current code and compares.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials as BotoCredentials

from tests.installed import clean_env, command

ADMIN = ("AKIDUPGRADEFIXTURE01", "upgrade-fixture-secret-000000000000000001")
REGION = "us-east-1"
MiB = 1024 * 1024


def pattern_bytes(seed: str, size: int) -> bytes:
    """Deterministic, poorly compressible at small scale but cheap to store in a tar.gz at large."""
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


class Served:
    """A running ``twistd -n objectstore`` on a data dir, on a free loopback port."""

    def __init__(self, data_dir, log_path):
        self.data_dir = str(data_dir)
        argv = [command("twistd"), "-n", "--pidfile=", "objectstore", "--listen", "tcp:0:interface=127.0.0.1"]
        argv += ["--data-dir", self.data_dir]
        env = clean_env(OBJECTSTORE_ACCESS_KEY=ADMIN[0], OBJECTSTORE_SECRET_KEY=ADMIN[1])
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            match = re.search(r"(?:serving S3 on http://127\.0\.0\.1:|S3Site starting on )(\d+)", open(log_path).read())
            if match:
                self.port = int(match.group(1))
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the server did not start:\n" + open(log_path).read())
        self.url = f"http://127.0.0.1:{self.port}"
        # Until the store is open, a request may find nothing: wait for an answer.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.s3(ADMIN).list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)

    def s3(self, keys, **config):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=keys[0],
            aws_secret_access_key=keys[1],
            region_name=REGION,
            config=BotoConfig(retries={"max_attempts": 1}, **config),
        )

    def ec2(self, keys):
        return boto3.client(
            "ec2",
            endpoint_url=self.url + "/services/Cloud",
            aws_access_key_id=keys[0],
            aws_secret_access_key=keys[1],
            region_name=REGION,
            config=BotoConfig(retries={"max_attempts": 1}),
        )

    def signed_get(self, keys, path):
        """(status, body) of a SigV4-signed GET of *path* (for the /_images API)."""
        request = AWSRequest(method="GET", url=self.url + path, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        SigV4Auth(BotoCredentials(*keys), "s3", REGION).add_auth(request)
        try:
            with urllib.request.urlopen(
                urllib.request.Request(request.url, headers=dict(request.headers.items())), timeout=60
            ) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def manage(data_dir, *args) -> str:
    result = subprocess.run(
        [command("objectstore-manage"), "--data-dir", str(data_dir), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"objectstore-manage {' '.join(args)}: {result.stderr}")
    return result.stdout


def user_keys(created: str):
    """(access key, secret) from ``objectstore-manage user create``'s output."""
    access = re.search(r"access_key\s*[:=]?\s*(\S+)", created).group(1)
    secret = re.search(r"secret_key\s*[:=]?\s*(\S+)", created).group(1)
    return access, secret


# -- making a fixture --------------------------------------------------------


def populate(served: Served, work: str) -> dict:
    """Fill a fresh server with one of everything a data dir holds; returns the users' keys."""
    data_dir = served.data_dir
    alice = user_keys(manage(data_dir, "user", "create", "alice", "--display-name", "Alice L."))
    ops = user_keys(manage(data_dir, "user", "create", "ops", "--admin"))
    manage(data_dir, "key", "create", "alice")  # a second key pair
    admin_s3, alice_s3 = served.s3(ADMIN), served.s3(alice)

    admin_s3.create_bucket(Bucket="photos")
    admin_s3.create_bucket(Bucket="public-site", ACL="public-read")
    alice_s3.create_bucket(Bucket="alice-data")

    admin_s3.put_object(
        Bucket="photos", Key="small.txt", Body=b"a small object kept inline\n", ContentType="text/plain"
    )
    admin_s3.put_object(
        Bucket="photos",
        Key="dir/large.bin",
        Body=pattern_bytes("large", 300 * 1024),
        Metadata={"camera": "x100", "taken": "2026-12-01"},
        ChecksumAlgorithm="SHA256",
    )
    admin_s3.put_object(Bucket="photos", Key="empty", Body=b"")
    admin_s3.put_object(Bucket="photos", Key="unicode/é ü 中.txt", Body=b"names survive", ACL="public-read")
    admin_s3.put_object(Bucket="public-site", Key="index.html", Body=b"<h1>hi</h1>", ContentType="text/html")
    alice_s3.put_object(
        Bucket="alice-data",
        Key="shared.csv",
        Body=b"a,b\n1,2\n",
        GrantRead=f"id={_canonical_id(alice_s3)}",
        ChecksumAlgorithm="CRC32",
    )

    # A completed multipart object (two parts) and one upload still in progress.
    done = admin_s3.create_multipart_upload(Bucket="photos", Key="multipart.bin", ContentType="application/x-big")
    parts = []
    for number, size in ((1, 5 * MiB), (2, 1000)):
        body = pattern_bytes(f"part{number}", size)
        etag = admin_s3.upload_part(
            Bucket="photos", Key="multipart.bin", UploadId=done["UploadId"], PartNumber=number, Body=body
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    admin_s3.complete_multipart_upload(
        Bucket="photos", Key="multipart.bin", UploadId=done["UploadId"], MultipartUpload={"Parts": parts}
    )
    pending = alice_s3.create_multipart_upload(
        Bucket="alice-data", Key="in-progress.bin", Metadata={"state": "unfinished"}
    )
    alice_s3.upload_part(
        Bucket="alice-data",
        Key="in-progress.bin",
        UploadId=pending["UploadId"],
        PartNumber=1,
        Body=pattern_bytes("pending1", 5 * MiB),
    )

    _register_image(served, alice, work)
    return {"admin": list(ADMIN), "alice": list(alice), "ops": list(ops)}


def _canonical_id(s3):
    return s3.list_buckets()["Owner"]["ID"]


def _register_image(served: Served, alice, work):
    """A bundle made, uploaded and registered by alice with objectstore-bundle, signed by her certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    now = time.time()
    import datetime

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime.fromtimestamp(now - 86400, datetime.timezone.utc))
        .not_valid_after(datetime.datetime.fromtimestamp(now + 3650 * 86400, datetime.timezone.utc))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path, image_path = (os.path.join(work, n) for n in ("alice-cert.pem", "alice-key.pem", "disk.img"))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
    with open(image_path, "wb") as f:
        f.write(pattern_bytes("disk image", 200 * 1024))
    manage(served.data_dir, "cert", "add", "alice", cert_path)
    env = clean_env(OBJECTSTORE_URL=served.url, AWS_ACCESS_KEY_ID=alice[0], AWS_SECRET_ACCESS_KEY=alice[1])
    bundle = command("objectstore-bundle")
    out = os.path.join(work, "bundle")
    for args in (
        ["image", "--image", image_path, "--cert", cert_path, "--privatekey", key_path, "--destination", out],
        ["upload", "--bucket", "alice-bundles", "--manifest", os.path.join(out, "disk.img.manifest.xml")],
        ["register", "alice-bundles/disk.img.manifest.xml", "--name", "disk", "--wait"],
    ):
        subprocess.run([bundle, *args], env=env, check=True, capture_output=True, timeout=300)


def make(prefix: str) -> None:
    """Write PREFIX.tar.gz and PREFIX.json with the installed release."""
    with tempfile.TemporaryDirectory() as work:
        data_dir = os.path.join(work, "data")
        served = Served(data_dir, os.path.join(work, "server.log"))
        try:
            keys = populate(served, work)
            picture = snapshot(served, keys)
        finally:
            served.stop()
        with tarfile.open(prefix + ".tar.gz", "w:gz") as tar:
            tar.add(data_dir, arcname="data")
    with open(prefix + ".json", "w", encoding="utf-8") as f:
        json.dump({"keys": keys, "snapshot": picture}, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


# -- what a server shows of a data dir -----------------------------------------


def snapshot(served: Served, keys: dict) -> dict:
    """Everything the users can see, as plain JSON: buckets, objects (bytes' digests), uploads, keys, images."""
    picture = {"users": manage(served.data_dir, "user", "list").splitlines(), "buckets": {}, "images": {}}
    picture["keys"] = {name: manage(served.data_dir, "key", "list", name).splitlines() for name in ("alice", "ops")}
    picture["keys"]["admin"] = manage(served.data_dir, "key", "list", "admin").splitlines()
    picture["certificates"] = manage(served.data_dir, "cert", "list", "alice").splitlines()
    admin = served.s3(keys["admin"])
    for user, user_keys_ in sorted(keys.items()):
        picture.setdefault("owned", {})[user] = sorted(
            b["Name"] for b in served.s3(user_keys_).list_buckets()["Buckets"]
        )
    for bucket in sorted(name for names in picture["owned"].values() for name in names):
        picture["buckets"][bucket] = _bucket(admin, bucket)
    alice = keys["alice"]
    for image in served.ec2(alice).describe_images(Owners=["self"])["Images"]:
        status, body = served.signed_get(alice, f"/_images/{image['ImageId']}")
        image["download"] = [status, hashlib.sha256(body).hexdigest()]
        picture["images"][image["ImageId"]] = image
    status, listing = served.signed_get(alice, "/_images/")
    picture["images_listing"] = [status, json.loads(listing)]
    return picture


def _bucket(s3, bucket):
    described = {
        "location": s3.get_bucket_location(Bucket=bucket).get("LocationConstraint"),
        "acl": _grants(s3.get_bucket_acl(Bucket=bucket)),
        "objects": {},
        "uploads": [],
    }
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            described["objects"][entry["Key"]] = _object(s3, bucket, entry)
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        parts = s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts", [])
        described["uploads"].append(
            {
                "key": upload["Key"],
                "id": upload["UploadId"],
                "initiated": upload["Initiated"].isoformat(),
                "parts": [[p["PartNumber"], p["Size"], p["ETag"], p["LastModified"].isoformat()] for p in parts],
            }
        )
    return described


def _object(s3, bucket, entry):
    head = s3.head_object(Bucket=bucket, Key=entry["Key"], ChecksumMode="ENABLED")
    body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    checksums = {k: v for k, v in head.items() if k.startswith("Checksum")}
    return {
        "size": entry["Size"],
        "etag": entry["ETag"],
        "modified": entry["LastModified"].isoformat(),
        "content_type": head.get("ContentType"),
        "metadata": head.get("Metadata", {}),
        "checksums": checksums,
        "sha256": hashlib.sha256(body).hexdigest(),
        "acl": _grants(s3.get_object_acl(Bucket=bucket, Key=entry["Key"])),
    }


def _grants(answer):
    grants = [[g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"]] for g in answer.get("Grants", [])]
    return {"owner": answer["Owner"]["ID"], "grants": sorted(grants)}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "make":
        sys.exit("usage: python -m tests.upgrade make tests/fixtures/upgrade/NAME")
    make(sys.argv[2])
