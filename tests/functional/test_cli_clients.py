"""awscli and s3cmd, installed from PyPI and configured as the README tells people to configure them.

The server is the installed one (``twistd -n objectstore``) with a generated
admin key pair; the clients are the installed commands, in a HOME of their
own so that nothing of the machine's own configuration is read. Retries are
off: a request that only succeeds when retried fails here.
"""

import hashlib
import pathlib
import re
import subprocess

import boto3
import pytest

from tests.installed import clean_env, command, start_server, stop, wait_until_serving

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIG = 11 * 1024 * 1024  # in parts for both tools (awscli from 8 MiB; s3cmd with 5 MiB chunks)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(port, data dir, a HOME for the clients) of a freshly started server."""
    tmp_path = tmp_path_factory.mktemp("cli-clients")
    process, log_path = start_server(tmp_path, clean_env())
    try:
        port = wait_until_serving(log_path, process)
        home = tmp_path / "home"
        home.mkdir()
        yield port, tmp_path / "data", home
    finally:
        stop(process)


def readme_block(heading, language):
    """The first ```language block under *heading* in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(heading + "\n") :]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def _file(folder, name, size):
    path = folder / name
    with open(path, "wb") as f:
        block = hashlib.sha256(name.encode()).digest() * 4096
        while size > 0:
            f.write(block[: min(size, len(block))])
            size -= len(block)
    return path


def _run(argv, home, **env):
    environment = clean_env(HOME=str(home), **env)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION"):
        environment.pop(name, None)
    result = subprocess.run(argv, cwd=home, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (argv, result.stdout, result.stderr)
    return result.stdout


def test_awscli_with_the_saved_credentials_and_another_default_region(served, tmp_path):
    port, data_dir, home = served
    config = home / "aws-config"
    config.write_text("[default]\nregion = eu-west-1\n")

    def aws(*args):
        # As the README says: the profile is the admin.credentials file the first start wrote.
        return _run(
            [command("aws"), "--endpoint-url", f"http://127.0.0.1:{port}", *args],
            home,
            AWS_SHARED_CREDENTIALS_FILE=str(data_dir / "admin.credentials"),
            AWS_CONFIG_FILE=str(config),
            AWS_MAX_ATTEMPTS="1",
        )

    assert aws("s3", "ls") == ""
    aws("s3", "mb", "s3://from-awscli")
    big = _file(tmp_path, "big.bin", BIG)
    small = _file(tmp_path, "small.txt", 1000)
    aws("s3", "cp", str(big), "s3://from-awscli/dir/big.bin")
    aws("s3", "cp", str(small), "s3://from-awscli/small.txt")
    assert re.search(r"\bfrom-awscli\n", aws("s3", "ls"))
    listing = aws("s3", "ls", "--recursive", "s3://from-awscli")
    assert re.search(rf"\b{BIG} dir/big.bin\n", listing) and re.search(r"\b1000 small.txt\n", listing)
    aws("s3", "cp", "s3://from-awscli/dir/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    assert '"LocationConstraint": "eu-west-1"' in aws("s3api", "get-bucket-location", "--bucket", "from-awscli")
    aws("s3", "rb", "--force", "s3://from-awscli")
    assert "from-awscli" not in aws("s3", "ls")


def test_s3cmd_with_a_minimal_s3cfg(served, tmp_path):
    port, data_dir, home = served
    saved = (data_dir / "admin.credentials").read_text()
    access_key = re.search(r"aws_access_key_id = (\S+)", saved).group(1)
    secret_key = re.search(r"aws_secret_access_key = (\S+)", saved).group(1)
    s3cfg = home / ".s3cfg"
    # The README's .s3cfg, word for word but for the port and keys.
    s3cfg.write_text(
        readme_block("## Using it from s3cmd", "ini")
        .replace("127.0.0.1:3333", f"127.0.0.1:{port}")
        .replace("ACCESS_KEY", access_key)
        .replace("SECRET_KEY", secret_key)
    )

    def s3cmd(*args):
        return _run([command("s3cmd"), "--config", str(s3cfg), "--max-retries=1", *args], home)

    s3cmd("mb", "s3://from-s3cmd")
    big = _file(tmp_path, "big.bin", BIG)
    s3cmd("put", "--multipart-chunk-size-mb=5", str(big), "s3://from-s3cmd/big.bin")
    s3cmd("put", str(_file(tmp_path, "small.txt", 1000)), "s3://from-s3cmd/small.txt")
    assert "s3://from-s3cmd" in s3cmd("ls")
    listing = s3cmd("ls", "s3://from-s3cmd")
    assert re.search(rf"\b{BIG}\s+s3://from-s3cmd/big.bin\n", listing), listing
    s3cmd("get", "s3://from-s3cmd/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    assert "File size: 11534336" in s3cmd("info", "s3://from-s3cmd/big.bin")
    # Uploaded in three parts, as asked: a multipart ETag says how many.
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )
    assert s3.head_object(Bucket="from-s3cmd", Key="big.bin")["ETag"].endswith('-3"')
    s3cmd("del", "s3://from-s3cmd/big.bin", "s3://from-s3cmd/small.txt")
    s3cmd("rb", "s3://from-s3cmd")
    assert "from-s3cmd" not in s3cmd("ls")
