"""No secret reaches a log: the server daemonised as the README shows, with its access log in twistd.log.

Every request a client can make that carries a secret-derived value (V4
and V2 headers, presigned V4 and V2 URLs, a presigned URL as Referer,
wrong signatures, malformed Authorization headers, EC2 Query requests) is
made; then the whole log is searched for the admin secret and for every
signature and Authorization value that was sent.
"""

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.installed import clean_env, command, wait_until_serving


def _credentials(path):
    text = path.read_text()
    return (
        re.search(r"aws_access_key_id = (\S+)", text).group(1),
        re.search(r"aws_secret_access_key = (\S+)", text).group(1),
    )


@pytest.fixture
def daemonised(tmp_path):
    """``twistd --logfile … --pidfile … objectstore --config …``, as the README daemonises it."""
    config = tmp_path / "objectstore.conf"
    config.write_text(
        f"[objectstore]\nlisten = tcp:0:interface=127.0.0.1\ndata_dir = {tmp_path / 'data'}\naccess_log = -\n"
    )
    log_path, pid_path = tmp_path / "twistd.log", tmp_path / "twistd.pid"
    subprocess.run(
        [command("twistd"), "--logfile", str(log_path), "--pidfile", str(pid_path), "objectstore", "--config", config],
        cwd=tmp_path,
        env=clean_env(),
        check=True,
        timeout=60,
    )
    port = wait_until_serving(log_path, None)
    pid = int(pid_path.read_text())
    try:
        yield port, log_path, tmp_path / "data"
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pid_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


class Sent:
    """Records every Authorization header botocore sends."""

    def __init__(self):
        self.authorizations = []

    def __call__(self, request, **_):
        value = request.headers.get("Authorization")
        if value:
            self.authorizations.append(value.decode() if isinstance(value, bytes) else value)


def _client(service, port, keys, sent, path="", **config):
    client = boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}{path}",
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        region_name="eu-west-1",
        config=BotoConfig(retries={"max_attempts": 1}, **config),
    )
    client.meta.events.register("before-send", sent)
    return client


def _fetch(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code


def test_no_secret_key_signature_or_authorization_value_reaches_the_log(daemonised):
    port, log_path, data_dir = daemonised
    credentials_file = data_dir / "admin.credentials"
    assert oct(credentials_file.stat().st_mode & 0o777) == "0o600"
    keys = _credentials(credentials_file)
    sent = Sent()
    secrets = {keys[1]}

    v4 = _client("s3", port, keys, sent, signature_version="s3v4")
    v4.create_bucket(Bucket="secrets")
    v4.put_object(Bucket="secrets", Key="k", Body=b"x")
    v4.list_buckets()
    v2 = _client("s3", port, keys, sent, signature_version="s3")
    assert v2.get_object(Bucket="secrets", Key="k")["Body"].read() == b"x"

    presigned = [
        v4.generate_presigned_url("get_object", Params={"Bucket": "secrets", "Key": "k"}),
        v2.generate_presigned_url("get_object", Params={"Bucket": "secrets", "Key": "k"}),
    ]
    assert "X-Amz-Signature=" in presigned[0] and "&Signature=" in presigned[1]
    assert _fetch(presigned[0]) == 200
    assert _fetch(presigned[1], {"Referer": presigned[0]}) == 200
    # A presigned URL used for another key: its signature does not match.
    assert _fetch(presigned[0].replace("/secrets/k?", "/secrets/other?")) == 403

    wrong = (keys[0], "not-the-secret-" + keys[1][:10])
    secrets.add(wrong[1])
    with pytest.raises(ClientError) as caught:
        _client("s3", port, wrong, sent).list_objects_v2(Bucket="secrets")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    for header in (
        "AWS4-HMAC-SHA256 Credential=" + keys[0] + "/20261207/eu-west-1/s3/aws4_request, Signature=deadbeef0001",
        "AWS " + keys[0] + ":c2lnbmF0dXJlLXZhbHVlLTAwMDI=",
        "Bearer opaque-token-0003",
        "AWS4-HMAC-SHA256 garbage-0004=" + "\u00e9" * 3,
    ):
        sent.authorizations.append(header)
        # As bytes on the wire, as a client sending UTF-8 would.
        on_the_wire = header.encode("utf-8").decode("latin-1")
        assert _fetch(f"http://127.0.0.1:{port}/secrets", {"Authorization": on_the_wire}) in (400, 403)

    ec2 = _client("ec2", port, keys, sent, path="/services/Cloud")
    ec2.describe_images(Owners=["self"])

    signatures = set(secrets)
    for value in sent.authorizations:
        signatures.add(value)
        signatures.update(re.findall(r"Signature=([^,\s]+)", value))
        signatures.update(re.findall(r"^AWS [^:]+:(\S+)$", value))
    for url in presigned:
        signatures.update(re.findall(r"(?:X-Amz-Signature|Signature)=([^&]+)", url))
    assert len(sent.authorizations) >= 10 and len(signatures) >= 12

    # The server writes its log as it goes; the last request's line comes shortly after its answer.
    deadline = time.monotonic() + 10
    while '"POST /services/Cloud ' not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    assert '"GET /secrets/k?' in text and "REDACTED" in text  # the access log is there, and redacts
    assert "Authorization" not in text
    leaked = sorted(s for s in signatures if s in text)
    assert leaked == []
    assert keys[0] in text  # the access key is named (it is not a secret): the log is the one searched
