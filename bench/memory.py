"""Server memory while it streams one large object in and out.

    python -m bench.memory [--size 2GiB] [--limit 100MiB]

PUTs then GETs one object (default 2 GiB) against a fresh objectstore,
sampling the server's resident set (its process and children, from /proc)
every 50 ms, and prints the peak per phase and the MB/s as markdown.  The
kernel's VmHWM is reported beside the samples because it also catches
spikes shorter than the interval.  Exits 1 if a peak reaches --limit.
"""

import argparse
import shlex
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/memory.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import servers, workloads  # noqa: E402
from bench.run import human_size, log, parse_size  # noqa: E402

BUCKET = "bench-memory"
KEY = "large-object"


class RssSampler(threading.Thread):
    """Keeps the highest sampled RSS per phase.

    Each phase is also sampled when it starts and ends, so a phase shorter
    than the interval still has figures.
    """

    def __init__(self, server, interval):
        super().__init__(daemon=True)
        self.server = server
        self.interval = interval
        self.peaks_kib = {}
        self.samples = 0
        self._phase = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def _sample(self):
        rss = self.server.rss_kib()
        with self._lock:
            if self._phase is not None:
                self.peaks_kib[self._phase] = max(self.peaks_kib.get(self._phase, 0), rss)
                self.samples += 1

    def enter(self, phase):
        with self._lock:
            self._phase = phase
        self._sample()

    def leave(self):
        self._sample()
        with self._lock:
            self._phase = None

    def run(self):
        while not self._done.is_set():
            self._sample()
            self._done.wait(self.interval)

    def stop(self):
        self._done.set()
        self.join()


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", type=parse_size, default=parse_size("2GiB"))
    p.add_argument(
        "--limit",
        type=parse_size,
        default=parse_size("100MiB"),
        help="target: peak RSS must stay below this (default 100MiB)",
    )
    p.add_argument("--interval", type=float, default=0.05, help="sampling period, s")
    p.add_argument("--timeout", type=float, default=900.0, help="max seconds for each transfer")
    p.add_argument(
        "--server",
        default="objectstore",
        choices=list(servers.SPECS),
        help="server to measure (others only to check this harness)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    return p.parse_args(argv)


def measure(args, server):
    sampler = RssSampler(server, args.interval)
    sampler.start()
    rows = []
    try:
        workloads.ensure_bucket(server.endpoint, BUCKET)
        stream = workloads.RandomStream(args.size)
        log(f"computing the MD5 of the {human_size(args.size)} test stream")
        etag = stream.md5_hex()
        server.reset_peak()
        sampler.enter("idle")
        time.sleep(1)
        sampler.leave()
        rows.append(("idle, before PUT", None, sampler.peaks_kib.get("idle", 0), server.peak_rss_kib()))
        for phase in ("PUT", "GET"):
            server.reset_peak()
            sampler.enter(phase)
            if phase == "PUT":
                out = workloads.put_large(server.endpoint, BUCKET, KEY, stream, args.timeout, etag)
            else:
                out = workloads.get_large(server.endpoint, BUCKET, KEY, args.size, args.timeout)
            sampler.leave()
            rows.append((phase, out, sampler.peaks_kib.get(phase, 0), server.peak_rss_kib()))
            log(
                f"{phase}: {out.mb_per_s:.0f} MB/s, peak sampled RSS "
                f"{rows[-1][2] / 1024:.1f} MiB, VmHWM {rows[-1][3] / 1024:.1f} MiB"
                + (f", ERROR: {out.error_sample}" if out.errors else "")
            )
    finally:
        sampler.stop()
    return rows, sampler.samples


def render(args, server, rows, samples):
    limit_mib = args.limit / (1 << 20)
    lines = [
        f"## Memory: {human_size(args.size)} single-stream PUT then GET",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.memory', *sys.argv[1:]])}`",
        "",
        f"- {server.spec.describe()}",
        f"- RSS of the server process and its children, sampled every "
        f"{args.interval * 1000:.0f} ms ({samples} samples); VmHWM from "
        f"/proc/<pid>/status, reset before each phase",
        "",
        f"| phase | MB/s | peak RSS, sampled (MiB) | VmHWM (MiB) | < {limit_mib:.0f} MiB |",
        "|---|---:|---:|---:|:---:|",
    ]
    for phase, out, sampled, hwm in rows:
        peak = max(sampled, hwm) / 1024
        ok = "yes" if peak < limit_mib else "**no**"
        if out is None:
            rate = "–"
        elif out.errors:
            rate = f"⚠ failed: `{out.error_sample[:200]}`"
        else:
            rate = f"{out.mb_per_s:,.0f}"
        lines.append(f"| {phase} | {rate} | {sampled / 1024:.1f} | {hwm / 1024:.1f} | {ok} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="objectstore-memory-", dir="/tmp"))
    try:
        server = servers.start(args.server, root)
    except servers.ServerError as e:
        log(f"error: {e}")
        return 2
    try:
        log(f"{args.server}: pid {server.pid} on port {server.port}")
        rows, samples = measure(args, server)
    finally:
        server.stop()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(render(args, server, rows, samples))
    over = any(max(s, h) >= args.limit / 1024 for _, _, s, h in rows)
    failed = any(out is not None and out.errors for _, out, _, _ in rows)
    return 1 if over or failed else 0


if __name__ == "__main__":
    sys.exit(main())
