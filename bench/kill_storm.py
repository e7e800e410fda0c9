"""kill -9 storm: SIGKILL a writing server over and over, and check nothing acknowledged is lost.

    python -m bench.kill_storm --rounds 20 --seconds-per-round 3

Starts the real server (`objectstore --data-dir DIR --listen tcp:PORT:interface=127.0.0.1`,
admin keys from OBJECTSTORE_ACCESS_KEY / OBJECTSTORE_SECRET_KEY) and, in each round, runs
several boto3 writer threads (small PUTs, ~1 MiB PUTs, overwrites, deletes, multipart uploads
of 2 x 5 MiB), SIGKILLs the server after a random 0.5..N seconds, restarts it on the same data
directory, times the restart until it answers, and verifies every key.

Each writer owns its keys, so the order of operations on a key is that writer's order.  An
acknowledged operation fixes the key's value (a SHA-256 and a size, or "absent"); an operation
that raised (the kill dropped its connection) is in doubt: the key may afterwards hold the value
before it or the value it wrote, nothing else.  After a restart the value found, once checked,
becomes the key's value for the next round (a killed process loses no written page).

Damage, counted per key and round, must be zero:
  lost         an acknowledged value is absent (404)
  torn         content that no operation on the key ever wrote, or a size that disagrees
  resurrected  a key acknowledged deleted (or never written) is present with an old value
  stale        a key holds an older value of its own than the last acknowledged one
  listing      ListObjectsV2 disagrees with GET: a key outside the expected set, one missing,
               or a listed size that is not the object's
Exit status 1 if any damage (or the server fails to come back).
"""

import argparse
import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import Endpoint, S3Client
from bench.servers import BENCH_ACCESS_KEY, BENCH_SECRET_KEY, ServerError, free_port

KiB = 1024
MiB = 1024 * KiB
BUCKET = "storm"
ABSENT = None  # the value of a key that holds no object

# Operation mix, by weight.
MIX = (("small", 35), ("large", 20), ("overwrite", 20), ("delete", 15), ("multipart", 10))


def objectstore_root():
    """The directory holding the objectstore package this interpreter imports (and its twisted/plugins)."""
    import objectstore

    return Path(objectstore.__file__).resolve().parent.parent


def objectstore_command(port, data_dir):
    exe = Path(sys.executable).with_name("objectstore")
    if not exe.exists():
        found = shutil.which("objectstore")
        if not found:
            raise ServerError("objectstore not found; pip install the project first")
        exe = Path(found)
    return [str(exe), "--data-dir", str(data_dir), "--listen", f"tcp:{port}:interface=127.0.0.1"]


class Server:
    """The objectstore process: started, SIGKILLed and restarted on one data directory and port."""

    def __init__(self, root, port=None):
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root / "server.log"
        self.port = port or free_port()
        self.endpoint = Endpoint("127.0.0.1", self.port, BENCH_ACCESS_KEY, BENCH_SECRET_KEY)
        self.proc = None

    def start(self, timeout=60.0):
        """Start the server; return the seconds until it answered a signed ListBuckets."""
        env = dict(os.environ, OBJECTSTORE_ACCESS_KEY=BENCH_ACCESS_KEY, OBJECTSTORE_SECRET_KEY=BENCH_SECRET_KEY)
        # The objectstore this interpreter imports, with its twistd plugin, also when it is an
        # editable install (whose twisted/plugins twistd does not find on its own).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(objectstore_root()), env.get("PYTHONPATH")]))
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                objectstore_command(self.port, self.data_dir),
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"server exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                S3Client(self.endpoint, timeout=5).request("GET", "/")
                return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"server not serving on port {self.port} after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.01)

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def boto3_client(endpoint):
    import boto3
    from botocore.config import Config

    # One session per thread (sessions are not thread-safe); no retries, so a request the kill
    # interrupts raises instead of being replayed against the restarted server.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://{endpoint.host}:{endpoint.port}",
        region_name="us-east-1",
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


@dataclass
class KeyState:
    value: object = ABSENT  # last acknowledged (or verified) value: (sha256 hex, size) or ABSENT
    in_doubt: list = field(default_factory=list)  # values of operations that raised since
    history: set = field(default_factory=set)  # every value any operation on the key ever wrote


@dataclass
class Counts:
    acked: dict = field(default_factory=lambda: {name: 0 for name, _ in MIX})
    in_doubt: int = 0
    errors: dict = field(default_factory=dict)  # exception class of in-doubt operations

    def add(self, other):
        for name, n in other.acked.items():
            self.acked[name] += n
        self.in_doubt += other.in_doubt
        for name, n in other.errors.items():
            self.errors[name] = self.errors.get(name, 0) + n


def payload(size):
    data = os.urandom(size)
    return data, (hashlib.sha256(data).hexdigest(), size)


class Writer:
    def __init__(self, number, keys_per_writer, seed):
        self.prefix = f"w{number}/"
        self.keys = {f"{self.prefix}k{j}": KeyState() for j in range(keys_per_writer)}
        self.random = random.Random(seed)
        self.counts = Counts()

    def run(self, endpoint, stop):
        s3 = boto3_client(endpoint)
        names, weights = zip(*MIX, strict=True)
        while not stop.is_set():
            op = self.random.choices(names, weights)[0]
            key = self.random.choice(sorted(self.keys))
            if op == "overwrite":
                present = [k for k, s in self.keys.items() if s.value is not ABSENT]
                if not present:
                    op = "small"
                else:
                    key = self.random.choice(sorted(present))
            self.apply(s3, op, key)

    def apply(self, s3, op, key):
        state = self.keys[key]
        try:
            if op == "delete":
                new = ABSENT
                state.in_doubt.append(new)  # provisionally, until acknowledged
                s3.delete_object(Bucket=BUCKET, Key=key)
            elif op == "multipart":
                parts = [os.urandom(5 * MiB) for _ in range(2)]
                digest = hashlib.sha256()
                for part in parts:
                    digest.update(part)
                new = (digest.hexdigest(), sum(map(len, parts)))
                state.history.add(new)
                state.in_doubt.append(new)
                upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                done = []
                for number, part in enumerate(parts, 1):
                    etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=part)["ETag"]
                    done.append({"PartNumber": number, "ETag": etag})
                s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": done})
            else:
                size = self.random.randrange(64 * KiB) if op == "small" else MiB + self.random.randrange(64 * KiB)
                if op == "overwrite" and self.random.random() < 0.5:
                    size = self.random.randrange(64 * KiB)
                body, new = payload(size)
                state.history.add(new)
                state.in_doubt.append(new)
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        except Exception as e:  # the kill: the server may or may not have applied it
            self.counts.in_doubt += 1
            name = type(e).__name__
            self.counts.errors[name] = self.counts.errors.get(name, 0) + 1
            return
        # Acknowledged: this value supersedes the one before and anything in doubt.
        state.value = new
        state.in_doubt = []
        self.counts.acked[op] += 1


@dataclass
class Damage:
    lost: int = 0
    torn: int = 0
    resurrected: int = 0
    stale: int = 0
    listing: int = 0

    def total(self):
        return self.lost + self.torn + self.resurrected + self.stale + self.listing


def read_object(client, key):
    """(sha256 hex, size) of the object, ABSENT on 404, or ("torn", ...) if the length disagrees."""
    status, headers, body = client.request("GET", f"/{BUCKET}/{key}")
    if status == 404:
        return ABSENT
    if status != 200:
        raise ServerError(f"GET {key}: HTTP {status}: {body[:300]!r}")
    declared = int(headers.get("Content-Length", len(body)))
    if declared != len(body):
        return ("torn-length", declared, len(body))
    return (hashlib.sha256(body).hexdigest(), len(body))


def list_keys(client):
    """{key: size} from ListObjectsV2, every page."""
    import xml.etree.ElementTree as ET

    found, token = {}, None
    while True:
        query = [("list-type", "2")] + ([("continuation-token", token)] if token else [])
        status, _, body = client.request("GET", f"/{BUCKET}", query=query)
        if status != 200:
            raise ServerError(f"ListObjectsV2: HTTP {status}: {body[:300]!r}")
        root = ET.fromstring(body)
        ns = root.tag.partition("}")[0] + "}" if root.tag.startswith("{") else ""
        for item in root.iter(f"{ns}Contents"):
            found[item.findtext(f"{ns}Key")] = int(item.findtext(f"{ns}Size"))
        if root.findtext(f"{ns}IsTruncated") != "true":
            return found
        token = root.findtext(f"{ns}NextContinuationToken")


def verify(endpoint, writers, log):
    """Check every key against what was acknowledged; adopt what is found as the new value."""
    damage = Damage()
    client = S3Client(endpoint, timeout=60)
    try:
        found = {}
        for writer in writers:
            for key, state in sorted(writer.keys.items()):
                got = read_object(client, key)
                found[key] = got
                allowed = [state.value, *state.in_doubt]
                if got in allowed:
                    state.value, state.in_doubt = got, []
                    continue
                if got is ABSENT:
                    damage.lost += 1
                    kind = "lost"
                elif got not in state.history:
                    damage.torn += 1
                    kind = "torn"
                elif ABSENT in allowed:
                    damage.resurrected += 1
                    kind = "resurrected"
                else:
                    damage.stale += 1
                    kind = "stale"
                log(f"  DAMAGE {kind}: {key} holds {got}, expected one of {allowed}")
                state.value, state.in_doubt = got, []  # judge later rounds from what is there
        listed = list_keys(client)
    finally:
        client.close()
    expected = {key: got[1] for key, got in found.items() if got is not ABSENT}
    for key in sorted(set(listed) | set(expected)):
        if listed.get(key) != expected.get(key):
            damage.listing += 1
            log(f"  DAMAGE listing: {key} listed with size {listed.get(key)}, GET found {expected.get(key)}")
    return damage


def run(args, log):
    root = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="kill-storm-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    server = Server(root)
    writers = [Writer(n, args.keys_per_writer, rng.random()) for n in range(args.writers)]
    damage, totals, restarts, kills = Damage(), Counts(), [], 0
    failed = None
    log(
        f"kill -9 storm: objectstore from {objectstore_root()}, data {server.data_dir}, port {server.port}, "
        f"{args.writers} writers x {args.keys_per_writer} keys"
    )
    try:
        server.start()
        status, _, body = S3Client(server.endpoint).request("PUT", f"/{BUCKET}")
        if status != 200:
            raise ServerError(f"CreateBucket: HTTP {status}: {body[:300]!r}")
        for number in range(1, args.rounds + 1):
            stop = threading.Event()
            threads = [threading.Thread(target=w.run, args=(server.endpoint, stop), daemon=True) for w in writers]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.5, max(0.5, args.seconds_per_round)))
            stop.set()  # no new operation starts; those in flight meet the kill
            server.kill()
            kills += 1
            for t in threads:
                t.join()
            restarts.append(server.start())
            round_damage = verify(server.endpoint, writers, log)
            for name in vars(damage):
                setattr(damage, name, getattr(damage, name) + getattr(round_damage, name))
            log(
                f"round {number}/{args.rounds}: killed, restarted in {restarts[-1]:.3f} s, "
                f"damage {round_damage.total()}"
            )
    except ServerError as e:
        failed = str(e)
        log(f"FAILED: {failed}")
    finally:
        server.stop()
    for w in writers:
        totals.add(w.counts)
    if failed or damage.total() or args.keep:
        log(f"data directory and server log kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return summary(args, kills, totals, damage, restarts, failed)


def summary(args, kills, totals, damage, restarts, failed):
    acked = sum(totals.acked.values())
    mix = ", ".join(f"{name} {n}" for name, n in totals.acked.items())
    errors = ", ".join(f"{name} {n}" for name, n in sorted(totals.errors.items())) or "none"
    if restarts:
        times = f"min {min(restarts):.3f} / median {statistics.median(restarts):.3f} / max {max(restarts):.3f}"
    else:
        times = "none"
    ok = not failed and damage.total() == 0 and kills == args.rounds
    lines = [
        f"rounds: {args.rounds}",
        f"kills: {kills}",
        f"acknowledged ops: {acked} ({mix})",
        f"in-doubt ops: {totals.in_doubt} (raised: {errors})",
        f"lost: {damage.lost}",
        f"torn: {damage.torn}",
        f"resurrected: {damage.resurrected}",
        f"stale: {damage.stale}",
        f"listing mismatches: {damage.listing}",
        f"restart seconds (until it answers): {times}",
        f"result: {'OK' if ok else 'DAMAGE' if damage.total() else 'FAILED'}",
    ]
    return ok, "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds-per-round", type=float, default=3.0, help="kill after a random 0.5..N seconds")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--keys-per-writer", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work-dir", help="where the data directory and server log go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory even when all is well")
    args = parser.parse_args(argv)

    def log(line):
        print(line, file=sys.stderr, flush=True)

    ok, text = run(args, log)
    print(text, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
