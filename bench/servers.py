"""Start, stop and measure the servers under test.

Each server runs as a subprocess in its own session, with its working
directory, data and log under a temp directory, listening on 127.0.0.1 only.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.client import Endpoint, S3Client

BENCH_DIR = Path(__file__).resolve().parent
S3RVER_JS = BENCH_DIR / "node_modules" / "s3rver" / "bin" / "s3rver.js"

# The keys the load generator signs with; objectstore is told them through
# its environment.  moto accepts any key; s3rver only knows its built-in pair.
BENCH_ACCESS_KEY = "benchaccesskey"
BENCH_SECRET_KEY = "benchsecretkey/0123456789abcdefghijklmn"
S3RVER_KEY = "S3RVER"


@dataclass(frozen=True)
class ServerSpec:
    name: str
    access_key: str
    secret_key: str

    def command(self, port, data_dir):
        raise NotImplementedError

    def environment(self):
        return {}

    def describe(self):
        """One line saying exactly what is being measured."""
        raise NotImplementedError


class ObjectStoreSpec(ServerSpec):
    # Extra command-line options (the no-fsync variant: neither peer fsyncs).
    options = ()

    def command(self, port, data_dir):
        # twistd from the harness's own environment, so the objectstore that
        # `pip install` put next to this interpreter is the one measured.
        twistd = Path(sys.executable).with_name("twistd")
        if not twistd.exists():
            twistd = shutil.which("twistd")
        if not twistd:
            raise ServerError("twistd not found; pip install the project first")
        return [
            str(twistd),
            "-n",
            "--pidfile=",
            "objectstore",
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
            "--data-dir",
            str(data_dir),
            *self.options,
        ]

    def environment(self):
        return {"OBJECTSTORE_ACCESS_KEY": self.access_key, "OBJECTSTORE_SECRET_KEY": self.secret_key}

    def describe(self):
        # Asked of a fresh interpreter outside the checkout, as twistd sees it.
        probe = subprocess.run(
            [sys.executable, "-c", "import objectstore as o; print(getattr(o, '__version__', '?'), o.__file__)"],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode:
            return "objectstore: not importable"
        version, path = probe.stdout.split(None, 1)
        return f"objectstore {version} from {Path(path.strip()).parent}"


class MotoSpec(ServerSpec):
    def command(self, port, data_dir):
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]

    def describe(self):
        return f"moto {metadata.version('moto')} (python -m moto.server, in memory)"


class S3rverSpec(ServerSpec):
    def command(self, port, data_dir):
        if not S3RVER_JS.exists():
            raise ServerError("s3rver is not installed; run bench/install-s3rver.sh")
        node = shutil.which("node")
        if not node:
            raise ServerError("node not found on PATH")
        # s3rver's continuation tokens use DES, which OpenSSL 3 only has in
        # the legacy provider; --silent drops per-request console logging.
        return [
            node,
            "--openssl-legacy-provider",
            str(S3RVER_JS),
            "-d",
            str(data_dir),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "--silent",
        ]

    def describe(self):
        package = json.loads((S3RVER_JS.parent.parent / "package.json").read_text())
        node = subprocess.run(["node", "--version"], capture_output=True, text=True)
        return f"s3rver {package['version']} on node {node.stdout.strip()} (filesystem)"


class NullSpec(ServerSpec):
    def command(self, port, data_dir):
        return [sys.executable, str(BENCH_DIR / "nullserver.py"), str(port)]

    def describe(self):
        return "null: bench/nullserver.py, discards data (load-generator ceiling)"


class NoFsyncSpec(ObjectStoreSpec):
    """objectstore --no-fsync: the durability moto and s3rver offer, for a like-for-like figure."""

    options = ("--no-fsync",)


SPECS = {
    "objectstore": ObjectStoreSpec("objectstore", BENCH_ACCESS_KEY, BENCH_SECRET_KEY),
    "objectstore-nofsync": NoFsyncSpec("objectstore-nofsync", BENCH_ACCESS_KEY, BENCH_SECRET_KEY),
    "moto": MotoSpec("moto", BENCH_ACCESS_KEY, BENCH_SECRET_KEY),
    "s3rver": S3rverSpec("s3rver", S3RVER_KEY, S3RVER_KEY),
    "null": NullSpec("null", BENCH_ACCESS_KEY, BENCH_SECRET_KEY),
}


class ServerError(RuntimeError):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid):
    """pid and all its descendants, read from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses; fields after
        # the last ')' are fixed: state, ppid, ...
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, ()))
    return tree


def _status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RunningServer:
    def __init__(self, spec, root, port=None, start_timeout=60.0):
        self.spec = spec
        self.port = port or free_port()
        self.root = Path(root) / spec.name
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(parents=True)
        self.log_path = self.root / "server.log"
        self.endpoint = Endpoint("127.0.0.1", self.port, spec.access_key, spec.secret_key)
        env = dict(os.environ, **spec.environment())
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                spec.command(self.port, self.data_dir),
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_serving(start_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def exit_status(self):
        """None while running, else how it ended (e.g. "killed by SIGTERM")."""
        code = self.proc.poll()
        if code is None:
            return None
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def _wait_until_serving(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.exit_status():
                raise ServerError(f"{self.spec.name} {self.exit_status()}:\n" + self.log_tail())
            try:
                # Any HTTP answer to a signed ListBuckets means it is serving.
                S3Client(self.endpoint, timeout=5).request("GET", "/")
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.spec.name} not serving on port {self.port} after {timeout:.0f} s:\n" + self.log_tail()
                )
            time.sleep(0.05)

    def log_tail(self, lines=30):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def rss_kib(self):
        """Current resident set of the server and any children it spawned."""
        return sum(_status_kib(p, "VmRSS:") for p in process_tree(self.pid))

    def peak_rss_kib(self):
        """Peak resident set (VmHWM) since start or the last reset_peak().

        Summed over the process tree, so for a wrapper plus workers it is an
        upper bound (their peaks need not coincide); exact for one process.
        """
        return sum(_status_kib(p, "VmHWM:") for p in process_tree(self.pid))

    def reset_peak(self):
        """Restart VmHWM from the current RSS; False if the kernel refuses."""
        ok = True
        for p in process_tree(self.pid):
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                ok = False
        return ok

    def stop(self, timeout=15.0):
        if self.proc.poll() is not None:
            return
        # The session holds exactly the processes this server started.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                continue


def start(name, root, start_timeout=60.0):
    return RunningServer(SPECS[name], root, start_timeout=start_timeout)
