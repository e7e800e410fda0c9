"""``objectstore-bundle`` end to end: the command line, as a user runs it, against a live server.

Each command runs as a subprocess (``python -m objectstore.bundletool``)
with its endpoint and keys in the environment, the way euca2ools scripts
set them. Its stderr is a pipe, so no progress bar may show.
"""

import fcntl
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios

import pytest
import pytest_twisted
from twisted.internet import defer, endpoints, reactor, task, threads
from twisted.protocols import portforward

from images import crypto
from objectstore import __version__
from tests.conftest import live_server
from tests.functional.test_tls import make_certificate
from tests.helpers import unchanged
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

    def environment(self, url=None, standard=True, **extra):
        """The caller's environment without its own cloud settings; with *standard*, this server and user's keys."""
        env = {name: value for name, value in os.environ.items() if not name.startswith(FOREIGN)}
        env["PYTHONPATH"] = REPO
        if standard:
            env.update(
                OBJECTSTORE_URL=url or self.server.url,
                AWS_ACCESS_KEY_ID=self.user.keys[0],
                AWS_SECRET_ACCESS_KEY=self.user.keys[1],
            )
        env.update(extra)
        return env

    def start(self, *args, url=None, standard=True, stderr=subprocess.PIPE, **extra):
        """The command as a running process (stdout and, unless told otherwise, stderr piped)."""
        return subprocess.Popen(
            [sys.executable, "-m", "objectstore.bundletool", *args],
            env=self.environment(url, standard, **extra),
            cwd=str(self.folder),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )

    async def finish(self, process):
        """(exit status, stdout, stderr), waited for in a thread: the server runs in this reactor."""
        try:
            out, err = await threads.deferToThread(process.communicate, timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        return process.returncode, out, err

    async def run(self, *args, url=None, standard=True, **extra):
        return await self.finish(self.start(*args, url=url, standard=standard, **extra))

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
    conn = server.store.index.reader()
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
            await first_of(gate.closed, exited(process))
            assert process.poll() is None, "the upload ended before the connection stalled"
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
        assert err.strip().splitlines()[-1] == (
            f"objectstore-bundle: {image_id} failed: the bundle's key cannot be decrypted with this private key:"
            " the bundle was made for another certificate, or its manifest is corrupt"
        ), err


async def refused(tool, *args, status=1, **environment):
    """The one line a refused command printed; it must also exit *status* and print nothing on stdout."""
    code, out, err = await tool.run(*args, **environment)
    assert (code, out) == (status, ""), err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("objectstore-bundle: "), err
    return lines[0]


@pytest_twisted.ensureDeferred
async def test_refused_requests_are_one_line_with_exit_1_and_change_nothing(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        manifest = await tool.bundle(random_image(str(tmp_path / "disk.img"), 300 * 1024), tmp_path / "bundle")
        upload = ("upload", "--bucket", "bundles", "--manifest", manifest)
        async with unchanged(server):
            message = await refused(tool, *upload, AWS_SECRET_ACCESS_KEY="wrong")
            assert message.endswith("(SignatureDoesNotMatch, HTTP 403)"), message
            message = await refused(tool, *upload, "--retries", "0", url="http://127.0.0.1:1")
            assert message.endswith("connection refused (is the server running at that address?)"), message
            message = await refused(tool, "register", "bundles/nothing.manifest.xml")
            assert message == "objectstore-bundle: The specified bucket does not exist (InvalidManifest, HTTP 400)"
            message = await refused(tool, *upload, "--acl", "everyone")
            assert message.startswith("objectstore-bundle: unknown canned ACL 'everyone'"), message


@pytest_twisted.ensureDeferred
async def test_bad_settings_and_files_are_one_line_before_anything_is_sent(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        manifest = await tool.bundle(random_image(str(tmp_path / "disk.img"), 300 * 1024), tmp_path / "bundle")
        async with unchanged(server):
            message = await refused(tool, "upload", "--bucket", "bundles", "--manifest", manifest, standard=False)
            assert "no access keys" in message and "EC2_ACCESS_KEY" in message
            message = await refused(tool, "upload", "--bucket", "bundles", "--manifest", str(tmp_path / "missing.xml"))
            assert message.startswith(f"objectstore-bundle: cannot read the manifest {tmp_path / 'missing.xml'}")
            message = await refused(tool, "upload", "--bucket", "bundles", status=2)
            assert message == "objectstore-bundle: --manifest is required"
            message = await refused(
                tool, "unbundle", "--manifest", manifest, "--privatekey", str(tmp_path / "none.pem")
            )
            assert message == f"objectstore-bundle: your private key {tmp_path / 'none.pem'} is not a file"
            message = await refused(tool, "image", "--image", str(tmp_path / "none.img"), "--cert", tool.cert)
            assert (
                message
                == f"objectstore-bundle: cannot read the image {tmp_path / 'none.img'}: No such file or directory"
            )


@pytest_twisted.ensureDeferred
async def test_a_damaged_local_part_is_refused_before_it_is_sent_and_the_manifest_never_is(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        manifest = await tool.bundle(random_image(str(tmp_path / "disk.img"), 300 * 1024), tmp_path / "bundle")
        with open(tmp_path / "bundle" / "disk.img.part.00", "r+b") as f:
            f.write(b"\0" * 16)
        message = await refused(tool, "upload", "--bucket", "bundles", "--manifest", manifest)
        assert message.endswith("does not match its digest in the manifest: the bundle is damaged"), message
        assert keys_in(server, "bundles") == []


@pytest_twisted.ensureDeferred
async def test_unbundling_with_another_key_is_refused_and_writes_nothing(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        manifest = await tool.bundle(random_image(str(tmp_path / "disk.img"), 300 * 1024), tmp_path / "bundle")
        other_key, _ = crypto.new_key_and_certificate("someone else")
        message = await refused(
            tool, "unbundle", "--manifest", manifest, "--privatekey", _write(tmp_path / "other.pem", other_key),
            "--destination", str(tmp_path / "out"),
        )  # fmt: skip
        assert message == (
            f"objectstore-bundle: cannot unbundle {manifest}: the bundle's key cannot be decrypted with this"
            " private key: the bundle was made for another certificate, or its manifest is corrupt"
        )
        assert os.listdir(tmp_path / "out") == []


@pytest_twisted.ensureDeferred
async def test_ctrl_c_while_bundling_stops_at_once_and_leaves_nothing(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        image = random_image(str(tmp_path / "disk.img"), 96 * MiB)
        destination = tmp_path / "bundle"
        # No --cloud-cert: the server is asked first, under the reactor, then bundling starts.
        process = tool.start("image", "--image", image, "--cert", tool.cert, "--privatekey", tool.key,
                             "--destination", str(destination), "--part-size", "1M")  # fmt: skip
        while not (destination.exists() and os.listdir(destination)) and process.poll() is None:
            await task.deferLater(reactor, 0.01, lambda: None)
        process.send_signal(signal.SIGINT)
        status, out, err = await tool.finish(process)
        assert (status, out) == (130, ""), err
        assert err.strip().endswith("objectstore-bundle: interrupted")
        assert os.listdir(destination) == []


@pytest_twisted.ensureDeferred
async def test_delete_by_local_manifest_and_clear_removes_the_bucket_too(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        manifest = await tool.bundle(random_image(str(tmp_path / "disk.img"), 300 * 1024), tmp_path / "bundle")
        status, _, err = await tool.run("upload", "--bucket", "scratch", "--manifest", manifest)
        assert status == 0, err
        status, out, err = await tool.run("delete", "--bucket", "scratch", "--manifest", manifest, "--clear")
        assert (status, out) == (0, "Deleted scratch/disk.img.manifest.xml and its 1 part(s); deleted bucket scratch\n")
        assert server.store.index.reader().execute("SELECT name FROM buckets WHERE name = 'scratch'").fetchall() == []


@pytest_twisted.ensureDeferred
async def test_a_resumed_upload_still_sets_the_acl_it_is_asked_for(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        manifest = await tool.bundle(random_image(str(tmp_path / "disk.img"), 300 * 1024), tmp_path / "bundle")
        s3 = server.boto3(tool.user.keys)

        def grants():
            return len(s3.get_object_acl(Bucket="bundles", Key="disk.img.manifest.xml")["Grants"])

        status, _, err = await tool.run("upload", "--bucket", "bundles", "--manifest", manifest, "--acl", "private")
        assert status == 0, err
        assert await server.blocking(grants) == 1
        status, _, err = await tool.run("upload", "--bucket", "bundles", "--manifest", manifest)
        assert "0 file(s) sent, 2 already there" in err
        assert await server.blocking(grants) == 2  # aws-exec-read: the owner, and the registry's read


@pytest_twisted.ensureDeferred
async def test_eucarc_variables_alone_bundle_upload_and_register(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        cloud_cert = tmp_path / "cloud-cert.pem"
        cloud_cert.write_bytes(server.site.resource.registrar.cloud_key.certificate_pem())
        eucarc = {
            "S3_URL": server.url,
            "EC2_URL": server.url + "/services/Eucalyptus",
            "EC2_ACCESS_KEY": tool.user.keys[0],
            "EC2_SECRET_KEY": tool.user.keys[1],
            "EC2_CERT": tool.cert,
            "EC2_PRIVATE_KEY": tool.key,
            "EUCALYPTUS_CERT": str(cloud_cert),
        }
        image = random_image(str(tmp_path / "disk.img"), 300 * 1024)
        status, out, err = await tool.run(
            "image", "--image", image, "--user", tool.user.user_id, "--destination", str(tmp_path / "b"),
            standard=False, **eucarc,
        )  # fmt: skip
        assert status == 0 and "note:" not in err, err  # nothing fetched: all of it was given
        manifest = out.split(" ", 2)[2].strip()
        status, _, err = await tool.run(
            "upload", "--bucket", "bundles", "--manifest", manifest, standard=False, **eucarc
        )
        assert status == 0, err
        status, out, err = await tool.run(
            "register", "bundles/disk.img.manifest.xml", "--wait", "--interval", "0.1", standard=False, **eucarc
        )
        assert status == 0 and out.startswith("IMAGE\tami-"), err


@pytest_twisted.ensureDeferred
async def test_https_with_a_private_ca_needs_the_ca_bundle(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        key_path, cert_path = make_certificate(tmp_path)
        tls = await endpoints.serverFromString(
            reactor, f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"
        ).listen(server.site)
        try:
            url = f"https://127.0.0.1:{tls.getHost().port}"
            manifest = await tool.bundle(random_image(str(tmp_path / "disk.img"), 300 * 1024), tmp_path / "bundle")
            upload = ("upload", "--bucket", "bundles", "--manifest", manifest)
            message = await refused(tool, *upload, url=url)
            assert "certificate verify failed" in message and "--ca-bundle" in message, message
            status, out, err = await tool.run(*upload, url=url, AWS_CA_BUNDLE=str(cert_path))
            assert (status, out) == (0, "Uploaded bundles/disk.img.manifest.xml\n"), err
        finally:
            await tls.stopListening()


@pytest_twisted.ensureDeferred
async def test_progress_bars_show_on_a_terminal(tmp_path):
    async with live_server(tmp_path) as server:
        tool = await new_tool(server, tmp_path)
        manifest = await tool.bundle(random_image(str(tmp_path / "disk.img"), 2 * MiB), tmp_path / "bundle")
        controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        try:
            process = tool.start("upload", "--bucket", "bundles", "--manifest", manifest, stderr=terminal)
            os.close(terminal)
            shown = await threads.deferToThread(_read_all, controller)
            status, _, _ = await tool.finish(process)
        finally:
            os.close(controller)
        assert status == 0
        assert "uploading: 100%" in shown, shown


def _read_all(fd):
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def exited(process):
    """A Deferred that fires once *process* has exited."""
    return defer.ensureDeferred(_poll_exit(process))


async def _poll_exit(process):
    while process.poll() is None:
        await task.deferLater(reactor, 0.05, lambda: None)


def first_of(*deferreds):
    return defer.DeferredList(list(deferreds), fireOnOneCallback=True, fireOnOneErrback=True, consumeErrors=True)
