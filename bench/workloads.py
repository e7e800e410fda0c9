"""The measured operations: small-object ops/s, full listing, large streams.

Every workload is bounded both in operations and in time, and returns its
measurements plus an error count rather than raising, so that one
misbehaving server cannot stop the comparison.
"""

import hashlib
import http.client
import math
import multiprocessing
import os
import re
import threading
import time
from array import array
from dataclasses import dataclass, field
from html import unescape

from bench.client import S3Client
from bench.sigv4 import UNSIGNED_PAYLOAD

FAILURES = (OSError, http.client.HTTPException)
_MAX_CONSECUTIVE_ERRORS = 50


@dataclass
class Outcome:
    """What one run of one workload on one server measured."""

    seconds: float = 0.0
    ops: int = 0
    nbytes: int = 0
    latencies: list = field(default_factory=list)  # seconds, sorted
    errors: int = 0
    error_sample: str = ""

    def fail(self, message):
        self.errors += 1
        if not self.error_sample:
            self.error_sample = message

    @property
    def ops_per_s(self):
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self):
        return self.nbytes / self.seconds / 1e6 if self.seconds else 0.0

    def percentile(self, p):
        """Nearest-rank percentile of the latencies, in seconds."""
        if not self.latencies:
            return float("nan")
        rank = min(len(self.latencies), max(1, math.ceil(p / 100 * len(self.latencies))))
        return self.latencies[rank - 1]


# ---------------------------------------------------------------- setup


class SetupError(RuntimeError):
    pass


def _request_once(endpoint, method, path):
    client = S3Client(endpoint)
    try:
        return client.request(method, path)
    finally:
        client.close()


def ensure_bucket(endpoint, bucket):
    status, _, body = _request_once(endpoint, "PUT", f"/{bucket}")
    # A 409 means it exists already; s3rver says BucketAlreadyExists even
    # to its owner, where S3 says BucketAlreadyOwnedByYou.
    if status not in (200, 409):
        raise SetupError(f"create bucket {bucket}: HTTP {status} {body[:300]!r}")


def delete_object(endpoint, bucket, key):
    status, _, body = _request_once(endpoint, "DELETE", f"/{bucket}/{key}")
    if status not in (200, 204):
        raise SetupError(f"delete {bucket}/{key}: HTTP {status} {body[:300]!r}")


# ------------------------------------------------------- small objects


@dataclass(frozen=True)
class SmallJob:
    """op is "put", "get" or "head".

    With key_count 0 (PUT only) every op writes a fresh key under
    key_prefix; otherwise ops cycle over key_prefix + 0..key_count-1, each
    connection starting where the previous one's share ends, so ops ==
    key_count touches every key exactly once (that is how keys are seeded).
    """

    endpoint: object
    op: str
    bucket: str
    key_prefix: str
    key_count: int
    size: int
    ops: int
    duration: float
    procs: int
    conns: int


def small_key(prefix, n):
    return f"{prefix}{n:08d}"


def _slot_keys(job, slot):
    nslots = job.procs * job.conns
    share, extra = divmod(job.ops, nslots)
    quota = share + (1 if slot < extra else 0)
    if job.key_count == 0:
        return [f"{job.key_prefix}{slot}/{i:08d}" for i in range(quota)]
    start = slot * share + min(slot, extra)
    return [small_key(job.key_prefix, (start + i) % job.key_count) for i in range(quota)]


def _one_small_op(client, job, body, key):
    path = f"/{job.bucket}/{key}"
    if job.op == "put":
        resp = client.open("PUT", path, body=body)
    else:
        resp = client.open(job.op.upper(), path)
    data = resp.read()
    if resp.will_close:
        client.close()
    if resp.status != 200:
        return f"{job.op.upper()} {key}: HTTP {resp.status} {data[:200]!r}"
    if job.op == "get" and len(data) != job.size:
        return f"GET {key}: {len(data)} bytes, expected {job.size}"
    return None


def _small_thread(job, slot, barrier, body, results):
    client = S3Client(job.endpoint, timeout=30)
    out = Outcome()
    lat = array("d")
    keys = _slot_keys(job, slot)
    if keys:
        # Warm the connection up (the same op on this slot's first key) so
        # the timed part measures requests, not connection set-up.
        try:
            err = _one_small_op(client, job, body, keys[0])
        except FAILURES as e:
            err = repr(e)
        if err:
            out.fail("warm-up: " + err)
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        # Another connection never got ready; report rather than hang.
        out.fail("load generator: start barrier broken")
        results.append((time.perf_counter(), time.perf_counter(), lat, out.errors, out.error_sample))
        return
    t0 = time.perf_counter()
    deadline = t0 + job.duration
    consecutive = 0
    for key in keys:
        start = time.perf_counter()
        if start >= deadline:
            break
        try:
            err = _one_small_op(client, job, body, key)
        except FAILURES as e:
            err = f"{job.op.upper()} {key}: {e!r}"
        if err:
            out.fail(err)
            consecutive += 1
            if consecutive >= _MAX_CONSECUTIVE_ERRORS:
                break
            continue
        consecutive = 0
        lat.append(time.perf_counter() - start)
    t1 = time.perf_counter()
    client.close()
    results.append((t0, t1, lat, out.errors, out.error_sample))


def _small_process(job, proc_index, barrier, queue):
    body = os.urandom(job.size) if job.op == "put" else None
    results = []
    threads = [
        threading.Thread(target=_small_thread, args=(job, proc_index * job.conns + c, barrier, body, results))
        for c in range(job.conns)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(results)


def run_small(job):
    """Run ``job`` from procs x conns keep-alive connections at once.

    Throughput is successful ops over the wall time from the common start
    (a barrier after every connection has warmed up) to the last finish.
    """
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(job.procs * job.conns)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_small_process, args=(job, i, barrier, queue), daemon=True) for i in range(job.procs)]
    for p in procs:
        p.start()
    out = Outcome()
    thread_results = []
    try:
        for _ in procs:
            thread_results.extend(queue.get(timeout=job.duration + 300))
    except Exception as e:  # queue.Empty: a worker died or hung
        out.fail(f"load generator: {e!r}")
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    lat = array("d")
    for _, _, thread_lat, errors, sample in thread_results:
        lat.extend(thread_lat)
        out.errors += errors
        out.error_sample = out.error_sample or sample
    if thread_results:
        out.seconds = max(r[1] for r in thread_results) - min(r[0] for r in thread_results)
    out.ops = len(lat)
    out.nbytes = out.ops * job.size if job.op != "head" else 0
    out.latencies = sorted(lat)
    return out


def seed_small(endpoint, bucket, prefix, count, size, procs, conns, timeout=600):
    """PUT objects prefix+0..count-1 (untimed), for GET/HEAD and listing."""
    return run_small(SmallJob(endpoint, "put", bucket, prefix, count, size, count, timeout, procs, conns))


# ------------------------------------------------------------- listing

_KEY_RE = re.compile(rb"<Key>")
_TRUNCATED_RE = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>")
_TOKEN_RE = re.compile(rb"<NextContinuationToken>(.*?)</NextContinuationToken>", re.S)


def list_all(endpoint, bucket, expected_keys, page_size, timeout):
    """Time a full ListObjectsV2 walk of ``bucket`` on one connection.

    Parsing is deliberately cheap (count <Key>, find the token) so the
    time is the server's; the page count is bounded in case a server keeps
    answering IsTruncated.
    """
    out = Outcome()
    client = S3Client(endpoint, timeout=timeout)
    max_pages = expected_keys // page_size + 10
    token = None
    keys = pages = 0
    t0 = time.perf_counter()
    try:
        while pages < max_pages:
            query = [("list-type", "2"), ("max-keys", str(page_size))]
            if token is not None:
                query.append(("continuation-token", token))
            start = time.perf_counter()
            status, _, body = client.request("GET", f"/{bucket}", query)
            if status != 200:
                out.fail(f"list page {pages}: HTTP {status} {body[:200]!r}")
                break
            out.latencies.append(time.perf_counter() - start)
            pages += 1
            keys += len(_KEY_RE.findall(body))
            if not _TRUNCATED_RE.search(body):
                break
            match = _TOKEN_RE.search(body)
            if not match:
                out.fail(f"list page {pages}: truncated but no NextContinuationToken")
                break
            token = unescape(match.group(1).decode())
            if time.perf_counter() - t0 > timeout:
                out.fail(f"listing exceeded {timeout} s")
                break
        else:
            out.fail(f"listing still truncated after {max_pages} pages")
    except FAILURES as e:
        out.fail(f"list: {e!r}")
    out.seconds = time.perf_counter() - t0
    client.close()
    out.ops = keys
    out.latencies.sort()
    if not out.errors and keys != expected_keys:
        out.fail(f"listed {keys} keys, expected {expected_keys}")
    return out


# ------------------------------------------------------ large streams

_CHUNK = 1 << 20


class RandomStream:
    """``size`` bytes of incompressible data, yielded 1 MiB at a time.

    Cycling a fixed random pool keeps client memory and CPU near zero at any
    size; the pool is large enough that no server could dedupe or compress.
    """

    def __init__(self, size, pool_mib=16, seed=b"objectstore-bench"):
        self.size = size
        blocks = []
        h = hashlib.sha256(seed).digest()
        # Deterministic, so the expected MD5 can be computed once per size.
        for i in range(pool_mib):
            blocks.append(hashlib.shake_256(h + i.to_bytes(4, "big")).digest(_CHUNK))
        self._pool = [memoryview(b) for b in blocks]

    def chunks(self, deadline=None):
        sent = 0
        i = 0
        while sent < self.size:
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError("large PUT exceeded its time limit")
            chunk = self._pool[i % len(self._pool)][: self.size - sent]
            i += 1
            sent += len(chunk)
            yield chunk

    def md5_hex(self):
        md5 = hashlib.md5()
        for chunk in self.chunks():
            md5.update(chunk)
        return md5.hexdigest()


def put_large(endpoint, bucket, key, stream, timeout, expected_etag=None):
    """Time one single-stream PUT of ``stream`` (no multipart)."""
    out = Outcome()
    client = S3Client(endpoint, timeout=min(timeout, 120))
    t0 = time.perf_counter()
    try:
        resp = client.open(
            "PUT",
            f"/{bucket}/{key}",
            body=stream.chunks(t0 + timeout),
            headers={"content-length": str(stream.size), "content-type": "application/octet-stream"},
            payload_hash=UNSIGNED_PAYLOAD,
        )
        data = resp.read()
        out.seconds = time.perf_counter() - t0
        if resp.status != 200:
            out.fail(f"PUT: HTTP {resp.status} {data[:200]!r}")
        elif expected_etag:
            etag = (resp.getheader("ETag") or "").strip('"')
            if etag != expected_etag:
                out.fail(f"PUT: ETag {etag!r}, expected MD5 {expected_etag!r}")
    except (*FAILURES, TimeoutError) as e:
        out.seconds = time.perf_counter() - t0
        out.fail(f"PUT: {e!r}")
    finally:
        client.close()
    if not out.errors:
        out.ops, out.nbytes = 1, stream.size
    return out


def get_large(endpoint, bucket, key, size, timeout):
    """Time one GET, reading and discarding the body in 1 MiB chunks."""
    out = Outcome()
    client = S3Client(endpoint, timeout=min(timeout, 120))
    buf = bytearray(_CHUNK)
    received = 0
    t0 = time.perf_counter()
    deadline = t0 + timeout
    try:
        resp = client.open("GET", f"/{bucket}/{key}")
        if resp.status != 200:
            out.fail(f"GET: HTTP {resp.status} {resp.read(200)!r}")
        else:
            while True:
                n = resp.readinto(buf)
                if not n:
                    break
                received += n
                if time.perf_counter() > deadline:
                    out.fail(f"GET exceeded {timeout} s")
                    break
            if received != size and not out.errors:
                out.fail(f"GET: {received} bytes, expected {size}")
        out.seconds = time.perf_counter() - t0
    except FAILURES as e:
        out.seconds = time.perf_counter() - t0
        out.fail(f"GET after {received} bytes: {e!r}")
    finally:
        client.close()
    if not out.errors:
        out.ops, out.nbytes = 1, received
    return out
