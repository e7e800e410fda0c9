"""``objectstore-bundle`` end to end: the command line, as a user runs it, against a live server.

Each command runs as a subprocess (``python -m objectstore.bundletool``)
with its endpoint and keys in the environment, the way euca2ools scripts
set them. Its stderr is a pipe, so no progress bar may show.
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, endpoints, reactor, task, threads
from twisted.protocols import portforward

from images import crypto
from objectstore import __version__
from tests.conftest import live_server
from tests.imaging import UserKeys, random_image
from tests.s3http import call

MiB = 1024 * 1024
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Variables of the caller's own environment that would point the tool elsewhere.
FOREIGN = ("AWS_", "EC2_", "S3_URL", "OBJECTSTORE_", "EUCALYPTUS_CERT")


class Tool:
    """Runs objectstore-bundle for one user against one server."""

    def __init__(self, server, user, folder):
        self.server = server
        self.user = user
        self.folder = folder
        self.cert = _write(folder / "user-cert.pem", user.cert_pem)
        self.key = _write(folder / "user-key.pem", user.key_pem)

    def environment(self, url=None, **extra):
        env = {name: value for name, value in os.environ.items() if not name.startswith(FOREIGN)}
        env.update(
            OBJECTSTORE_URL=url or self.server.url,
            AWS_ACCESS_KEY_ID=self.user.keys[0],
            AWS_SECRET_ACCESS_KEY=self.user.keys[1],
            PYTHONPATH=REPO,
        )
        env.update(extra)
        return env

    def start(self, *args, url=None, **extra):
        """The command as a running process (stdout and stderr piped)."""
        return subprocess.Popen(
            [sys.executable, "-m", "objectstore.bundletool", *args],
            env=self.environment(url, **extra),
            cwd=str(self.folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def finish(self, process):
        """(exit status, stdout, stderr), waited for in a thread: the server runs in this reactor."""
        out, err = await threads.deferToThread(process.communicate, timeout=120)
        return process.returncode, out, err

    async def run(self, *args, url=None, **extra):
        return await self.finish(self.start(*args, url=url, **extra))

    async def bundle(self, image_path, destination, *more):
        status, out, err = await self.run(
            "image", "--image", image_path, "--cert", self.cert, "--privatekey", self.key,
            "--destination", str(destination), *more,
        )  # fmt: skip
        assert status == 0, err
        prefix = "Wrote manifest "
        assert out.startswith(prefix), out
        return out[len(prefix) :].strip()


def _write(path, data):
    path.write_bytes(data)
    return str(path)


async def new_tool(server, tmp_path, name="alice"):
    keys = server.create_user(name)
    folder = tmp_path / name
    folder.mkdir()
    return Tool(server, UserKeys(keys, server.user_id(name), name), folder)


def keys_in(server, bucket):
    conn = server.store.meta.reader()
    return sorted(row[0] for row in conn.execute("SELECT key FROM objects WHERE bucket = ?", (bucket,)))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def _installed_script():
    script = shutil.which("objectstore-bundle") or os.path.join(os.path.dirname(sys.executable), "objectstore-bundle")
    if not os.path.exists(script):
        pytest.fail("objectstore-bundle is not installed: run the README's install command")
    return [script]


@pytest.mark.parametrize(
    "command",
    [_installed_script, lambda: [sys.executable, os.path.join(REPO, "bin", "objectstore-bundle")]],
    ids=["console-script", "bin-launcher"],
)
def test_the_console_script_and_the_bin_launcher_run_the_tool(command, tmp_path):
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    version = subprocess.run([*command(), "--version"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert (version.returncode, version.stdout) == (0, f"objectstore-bundle {__version__}\n"), version.stderr
    usage = subprocess.run([*command(), "upload", "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert usage.returncode == 0 and "Usage: objectstore-bundle upload [options]" in usage.stdout


@pytest_twisted.ensureDeferred
async def test_bundle_upload_register_wait_download_unbundle_delete(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        image = random_image(str(tmp_path / "disk.img"), 3 * MiB + 12345)

        # Neither the cloud certificate nor the user id is given: the tool asks the server.
        manifest = await tool.bundle(image, tmp_path / "bundle", "--part-size", "1M", "--prefix", "disk")
        assert manifest == str(tmp_path / "bundle" / "disk.manifest.xml")
        assert sorted(os.listdir(tmp_path / "bundle")) == [
            "disk.manifest.xml", "disk.part.00", "disk.part.01", "disk.part.02", "disk.part.03",
        ]  # fmt: skip

        status, out, err = await tool.run("upload", "--bucket", "bundles/v1", "--manifest", manifest)
        assert (status, out) == (0, "Uploaded bundles/v1/disk.manifest.xml\n"), err
        assert "5 file(s) sent, 0 already there; created bucket bundles" in err
        assert "uploading" not in err  # no progress bar on a pipe
        assert keys_in(server, "bundles") == [
            "v1/disk.manifest.xml", "v1/disk.part.00", "v1/disk.part.01", "v1/disk.part.02", "v1/disk.part.03",
        ]  # fmt: skip

        status, out, err = await tool.run(
            "register", "bundles/v1/disk.manifest.xml", "--wait", "--name", "my disk", "--interval", "0.1"
        )
        assert status == 0, err
        assert out.startswith("IMAGE\tami-"), out
        image_id = out.split("\t")[1].strip()
        assert f"{image_id} is available" in err

        response, content = await call(server, "GET", f"/_images/{image_id}", keys=tool.user.keys)
        assert response.code == 200
        assert content == read(image)
        response, content = await call(server, "GET", "/_images/", keys=tool.user.keys)
        assert b'"displayName": "my disk"' in content and b'"progress": 100' in content

        # The user's own key reverses the bundle, without the server.
        status, out, err = await tool.run(
            "unbundle", "--manifest", manifest, "--destination", str(tmp_path), "--privatekey", tool.key
        )
        assert (status, out) == (0, f"Wrote {tmp_path / 'disk'}\n"), err
        assert read(tmp_path / "disk") == read(image)

        status, out, err = await tool.run("delete", "--bucket", "bundles/v1", "--prefix", "disk")
        assert (status, out) == (0, "Deleted bundles/v1/disk.manifest.xml and its 4 part(s)\n"), err
        assert keys_in(server, "bundles") == []
        # The registered image does not depend on the bundle any more.
        response, content = await call(server, "GET", f"/_images/{image_id}", keys=tool.user.keys)
        assert response.code == 200 and content == read(image)


class _Gate:
    """Lets *limit* bytes through from the tool to the server, then holds everything back."""

    def __init__(self, limit):
        self.limit = limit
        self.forwarded = 0
        self.closed = defer.Deferred()

    def admit(self, data):
        room = self.limit - self.forwarded
        if room <= 0:
            return b""
        if len(data) >= room:
            data = data[:room]
            self.closed.callback(None)
        self.forwarded += len(data)
        return data


class _GatedProxy(portforward.ProxyServer):
    def dataReceived(self, data):
        data = self.factory.gate.admit(data)
        if data:
            super().dataReceived(data)


async def gated_proxy(server, limit):
    factory = portforward.ProxyFactory("127.0.0.1", server.port)
    factory.protocol = _GatedProxy
    factory.gate = _Gate(limit)
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    return port, factory.gate


@pytest_twisted.ensureDeferred
async def test_an_interrupted_upload_resumes_and_sends_only_what_is_missing_or_wrong(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        image = random_image(str(tmp_path / "disk.img"), 3 * MiB + 12345)
        manifest = await tool.bundle(image, tmp_path / "bundle", "--part-size", "1M")
        s3 = server.boto3(tool.user.keys)
        await server.blocking(s3.create_bucket, Bucket="bundles")

        # The connection stalls midway through the third part; then the user presses Ctrl-C.
        port, gate = await gated_proxy(server, limit=int(2.5 * MiB))
        try:
            process = tool.start(
                "upload", "--bucket", "bundles", "--manifest", manifest, "--jobs", "1",
                url=f"http://127.0.0.1:{port.getHost().port}",
            )  # fmt: skip
            await gate.closed
            await task.deferLater(reactor, 0.2, lambda: None)
            process.send_signal(signal.SIGINT)
            status, out, err = await tool.finish(process)
        finally:
            await port.stopListening()
        assert (status, out) == (130, ""), err
        assert err.strip().endswith("objectstore-bundle: interrupted")
        # Two whole parts arrived; the third, cut off, left nothing; the manifest was not sent.
        assert keys_in(server, "bundles") == ["disk.img.part.00", "disk.img.part.01"]

        # A part that is there but wrong (another upload's leftover) is sent again.
        await server.blocking(s3.put_object, Bucket="bundles", Key="disk.img.part.00", Body=b"not this part")

        status, out, err = await tool.run("upload", "--bucket", "bundles", "--manifest", manifest)
        assert (status, out) == (0, "Uploaded bundles/disk.img.manifest.xml\n"), err
        assert "4 file(s) sent, 1 already there" in err
        for name in sorted(os.listdir(tmp_path / "bundle")):
            stored = await server.blocking(lambda key: s3.get_object(Bucket="bundles", Key=key)["Body"].read(), name)
            assert stored == read(tmp_path / "bundle" / name), name

        status, out, err = await tool.run("register", "bundles/disk.img.manifest.xml", "--wait", "--interval", "0.1")
        assert status == 0, err


@pytest_twisted.ensureDeferred
async def test_a_failed_registration_exits_1_with_the_registry_reason(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        image = random_image(str(tmp_path / "disk.img"), 300 * 1024)
        # Encrypted for another cloud: this registry cannot unwrap the key.
        _, other_cloud = crypto.new_key_and_certificate("another cloud")
        other_cert = _write(tmp_path / "other-cloud.pem", other_cloud)
        manifest = await tool.bundle(image, tmp_path / "bundle", "--cloud-cert", other_cert)
        status, out, err = await tool.run("upload", "--bucket", "bundles", "--manifest", manifest)
        assert status == 0, err

        status, out, err = await tool.run("register", "bundles/disk.img.manifest.xml", "--wait", "--interval", "0.1")
        assert status == 1
        assert out.startswith("IMAGE\tami-")
        image_id = out.split("\t")[1].strip()
        message = err.strip().splitlines()[-1]
        assert message.startswith(f"objectstore-bundle: {image_id} failed: "), err
        assert "key" in message.lower()


@pytest_twisted.ensureDeferred
async def test_failures_are_one_line_with_a_non_zero_exit_and_change_nothing(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        image = random_image(str(tmp_path / "disk.img"), 300 * 1024)
        manifest = await tool.bundle(image, tmp_path / "bundle")
        before = server.snapshot()

        async def refused(*args, status=1, **environment):
            code, out, err = await tool.run(*args, **environment)
            assert (code, out) == (status, ""), err
            lines = err.strip().splitlines()
            assert lines[0].startswith("objectstore-bundle: "), err
            assert "Traceback" not in err
            return lines[0]

        upload = ("upload", "--bucket", "bundles", "--manifest", manifest)
        message = await refused(*upload, AWS_SECRET_ACCESS_KEY="wrong")
        assert "SignatureDoesNotMatch, HTTP 403" in message
        message = await refused(*upload, "--retries", "0", url="http://127.0.0.1:1")
        assert "connection refused" in message
        message = await refused(*upload, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
        assert "no access keys" in message and "EC2_ACCESS_KEY" in message
        message = await refused("upload", "--bucket", "bundles", "--manifest", str(tmp_path / "missing.xml"))
        assert "cannot read the manifest" in message
        message = await refused("register", "bundles/nothing.manifest.xml")
        assert "(InvalidManifest, HTTP 400)" in message or "HTTP 404" in message
        message = await refused("upload", "--bucket", "bundles", status=2)
        assert "--manifest is required" in message
        message = await refused("unbundle", "--manifest", manifest, "--privatekey", str(tmp_path / "none.pem"))
        assert "none.pem" in message and "is not a file" in message
        assert server.snapshot() == before

        # A damaged local part is refused before it is sent, and the manifest never is.
        with open(tmp_path / "bundle" / "disk.img.part.00", "r+b") as f:
            f.write(b"\0" * 16)
        message = await refused(*upload)
        assert "does not match its digest in the manifest" in message
        assert keys_in(server, "bundles") == []
