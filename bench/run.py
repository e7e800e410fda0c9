"""Benchmark objectstore against moto and s3rver in one run.

    python -m bench.run [--quick] [--servers objectstore,moto,s3rver] ...

Progress goes to stderr; the markdown report (paste it into
bench/RESULTS.md) goes to stdout.
"""

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report, servers, workloads  # noqa: E402
from bench.report import Metric, Results, Sample  # noqa: E402

WORKLOADS = ("put", "get", "head", "list", "large")

# Buckets per workload, so one workload's objects never change another's
# working set.
PUT_BUCKET = "bench-put"
READ_BUCKET = "bench-read"
LIST_BUCKET = "bench-list"
LARGE_BUCKET = "bench-large"

FULL = dict(reps=3, ops=20000, duration=10.0, read_keys=1000, list_keys=10000, large_size="1GiB")
QUICK = dict(reps=3, ops=1000, duration=2.0, read_keys=200, list_keys=2000, large_size="64MiB")

OPS_S = Metric("ops_s", "throughput", "ops/s", True)
P50 = Metric("p50_ms", "latency p50", "ms", False)
P99 = Metric("p99_ms", "latency p99", "ms", False)


_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9}
_UNITS.update({"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30})


def parse_size(text):
    """Bytes from "4096", "4KiB", "64MiB", "1GiB" or "1.5GB"."""
    text = text.strip().upper()
    number = text.rstrip("KMGIB")
    unit = text[len(number) :]
    if unit not in _UNITS:
        raise ValueError(f"unknown size unit in {text!r}")
    return int(float(number) * _UNITS[unit])


def human_size(n):
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--servers", default="objectstore,moto,s3rver", help="comma-separated subset of: " + ",".join(servers.SPECS)
    )
    p.add_argument("--baseline", default="objectstore", help="server whose advantage over the others is reported")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of: " + ",".join(WORKLOADS))
    p.add_argument("--quick", action="store_true", help="smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    p.add_argument("--reps", type=int, help=f"repetitions per workload per server (default {FULL['reps']})")
    p.add_argument("--object-size", type=parse_size, default=4096, help="small-object size (default 4KiB)")
    p.add_argument("--ops", type=int, help=f"max ops per small-object run (default {FULL['ops']})")
    p.add_argument("--duration", type=float, help=f"max seconds per small-object run (default {FULL['duration']})")
    p.add_argument("--procs", type=int, default=4, help="load-generator processes (default 4)")
    p.add_argument("--conns", type=int, default=2, help="keep-alive connections per process (default 2)")
    p.add_argument("--read-keys", type=int, help=f"objects GET/HEAD cycle over (default {FULL['read_keys']})")
    p.add_argument("--list-keys", type=int, help=f"keys in the listed bucket (default {FULL['list_keys']})")
    p.add_argument("--page-size", type=int, default=1000, help="ListObjectsV2 max-keys (default 1000)")
    p.add_argument("--large-size", type=parse_size, help=f"single-stream object size (default {FULL['large_size']})")
    p.add_argument(
        "--timeout", type=float, default=300.0, help="max seconds for one listing or one large transfer (default 300)"
    )
    p.add_argument("--json", type=Path, help="also write every measurement here")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (data and server logs)")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, parse_size(value) if name == "large_size" else value)
    args.servers = _choices(p, args.servers, servers.SPECS, "--servers")
    args.workloads = _choices(p, args.workloads, WORKLOADS, "--workloads")
    counts = (args.reps, args.ops, args.procs, args.conns, args.read_keys, args.list_keys, args.page_size)
    if min(counts) < 1 or args.large_size < 1 or args.object_size < 1:
        p.error("counts and sizes must be positive")
    return args


def _choices(parser, text, allowed, flag):
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        parser.error(f"{flag}: unknown {unknown}; choose from {', '.join(allowed)}")
    return chosen


def log(message):
    print(time.strftime("[%H:%M:%S] ") + message, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args, running):
        self.args = args
        self.running = running  # name -> RunningServer
        self.results = Results(list(running))
        self.peaks_resettable = all(s.reset_peak() for s in running.values())
        self.stream = workloads.RandomStream(args.large_size)
        self.expected_etag = None
        self.dead = set()

    def setup(self):
        """Untimed: buckets and the objects the read and list workloads use."""
        a = self.args
        if "large" in a.workloads:
            log(f"computing the MD5 of the {human_size(a.large_size)} test stream")
            self.expected_etag = self.stream.md5_hex()
        for name, server in self.running.items():
            ep = server.endpoint
            t0 = time.perf_counter()
            server.reset_peak()
            errors = []
            try:
                for bucket in (PUT_BUCKET, READ_BUCKET, LIST_BUCKET, LARGE_BUCKET):
                    workloads.ensure_bucket(ep, bucket)
            except (workloads.SetupError, *workloads.FAILURES) as e:
                errors.append(str(e))
            if not errors and {"get", "head"} & set(a.workloads):
                out = workloads.seed_small(ep, READ_BUCKET, "obj/", a.read_keys, a.object_size, a.procs, a.conns)
                errors += [out.error_sample] if out.errors else []
            if not errors and "list" in a.workloads:
                out = workloads.seed_small(ep, LIST_BUCKET, "key/", a.list_keys, 16, a.procs, a.conns)
                errors += [out.error_sample] if out.errors else []
            self._record("setup", name, 0, server, {}, len(errors), "; ".join(errors))
            log(f"{name}: setup done in {time.perf_counter() - t0:.1f} s" + (f", ERRORS: {errors}" if errors else ""))

    def run(self):
        a = self.args
        names = list(self.running)
        for workload in a.workloads:
            for rep in range(a.reps):
                # Rotate the order so no server always runs first (or right
                # after the heaviest peer) in a repetition.
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    if self._gone(workload, name, rep):
                        continue
                    if workload in ("put", "get", "head"):
                        self._small(workload, name, rep)
                    else:
                        getattr(self, "_" + workload)(name, rep)

    def _gone(self, workload, name, rep):
        """Record, rather than time, workloads on a server that has died."""
        server = self.running[name]
        status = server.exit_status()
        if status is None:
            return False
        message = f"{name} {status} during the run"
        if name not in self.dead:
            self.dead.add(name)
            log(f"{message}; the end of its log:\n{server.log_tail()}")
        for w in _expand([workload]):
            self.results.add(Sample(w, name, rep, {}, 1, message))
        log(f"{workload} #{rep + 1} {name}: skipped, {message}")
        return True

    def _record(self, workload, name, rep, server, values, errors=0, error_sample=""):
        if self.peaks_resettable:
            values = dict(values, rss_mib=server.peak_rss_kib() / 1024)
        self.results.add(Sample(workload, name, rep, values, errors, error_sample))

    def _small(self, op, name, rep):
        a = self.args
        server = self.running[name]
        # PUT writes fresh keys each repetition; GET and HEAD read the seeded ones.
        bucket, prefix, keys = (PUT_BUCKET, f"r{rep}/", 0) if op == "put" else (READ_BUCKET, "obj/", a.read_keys)
        job = workloads.SmallJob(
            server.endpoint, op, bucket, prefix, keys, a.object_size, a.ops, a.duration, a.procs, a.conns
        )
        server.reset_peak()
        out = workloads.run_small(job)
        values = {"ops_s": out.ops_per_s, "ops": out.ops}
        if out.latencies:
            values.update(p50_ms=out.percentile(50) * 1000, p99_ms=out.percentile(99) * 1000)
        self._record(op, name, rep, server, values, out.errors, out.error_sample)
        log(
            f"{op} #{rep + 1} {name}: {out.ops} ops in {out.seconds:.1f} s = "
            f"{out.ops_per_s:.0f} ops/s, p50 {values.get('p50_ms', 0):.2f} ms, "
            f"p99 {values.get('p99_ms', 0):.2f} ms" + _errors(out)
        )

    def _list(self, name, rep):
        a = self.args
        server = self.running[name]
        server.reset_peak()
        out = workloads.list_all(server.endpoint, LIST_BUCKET, a.list_keys, a.page_size, a.timeout)
        values = {"seconds": out.seconds, "page_p50_ms": out.percentile(50) * 1000}
        self._record("list", name, rep, server, values, out.errors, out.error_sample)
        log(f"list #{rep + 1} {name}: {out.ops} keys in {len(out.latencies)} pages, {out.seconds:.2f} s" + _errors(out))

    def _large(self, name, rep):
        a = self.args
        server = self.running[name]
        key = f"large-{rep}"
        server.reset_peak()
        out = workloads.put_large(server.endpoint, LARGE_BUCKET, key, self.stream, a.timeout, self.expected_etag)
        self._record(
            "large_put", name, rep, server, {"mb_s": out.mb_per_s, "seconds": out.seconds}, out.errors, out.error_sample
        )
        log(f"large PUT #{rep + 1} {name}: {out.mb_per_s:.0f} MB/s ({out.seconds:.1f} s)" + _errors(out))
        server.reset_peak()
        out = workloads.get_large(server.endpoint, LARGE_BUCKET, key, a.large_size, a.timeout)
        self._record(
            "large_get", name, rep, server, {"mb_s": out.mb_per_s, "seconds": out.seconds}, out.errors, out.error_sample
        )
        log(f"large GET #{rep + 1} {name}: {out.mb_per_s:.0f} MB/s ({out.seconds:.1f} s)" + _errors(out))
        # Keep at most one large object per server on disk or in memory.
        try:
            workloads.delete_object(server.endpoint, LARGE_BUCKET, key)
        except (workloads.SetupError, *workloads.FAILURES) as e:
            log(f"{name}: {e!r}")


def _errors(out):
    return f" — {out.errors} ERRORS, first: {out.error_sample[:200]}" if out.errors else ""


def render(args, bench, descriptions, started, elapsed):
    res = bench.results
    size = human_size(args.object_size)
    large = human_size(args.large_size)
    base = args.baseline
    cmd = shlex.join(["python", "-m", "bench.run", *sys.argv[1:]])
    out = [
        f"## Run of {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}",
        "",
        f"Command: `{cmd}`",
        "",
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), "
        f"{_mem_gib():.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
    ]
    out += [f"- {d}" for d in descriptions]
    out += [
        f"- {args.reps} repetitions per workload per server, servers interleaved; "
        f"load generator: {args.procs} processes × {args.conns} keep-alive "
        f"connections, SigV4 header auth, 127.0.0.1",
        f"- small objects: {size}, each run stops at {args.ops} ops or "
        f"{args.duration:g} s; GET/HEAD cycle over {args.read_keys} keys",
        f"- wall time: {elapsed / 60:.1f} min",
        "",
        report.legend(base, res.servers),
    ]
    sections = []
    small = [w for w in ("put", "get", "head") if w in args.workloads]
    if small:
        rows = [
            (w, Metric(m.key, f"{w.upper()} {m.label}", m.unit, m.higher_is_better))
            for w in small
            for m in (OPS_S, P50, P99)
        ]
        sections.append((f"### {size} objects: " + ", ".join(w.upper() for w in small), rows, small))
    if "list" in args.workloads:
        rows = [
            ("list", Metric("seconds", f"list all {args.list_keys} keys", "s", False)),
            ("list", Metric("page_p50_ms", "one page, median", "ms", False)),
        ]
        sections.append((f"### Full listing (ListObjectsV2, pages of {args.page_size})", rows, ["list"]))
    if "large" in args.workloads:
        rows = [
            ("large_put", Metric("mb_s", f"PUT {large}", "MB/s", True)),
            ("large_get", Metric("mb_s", f"GET {large}", "MB/s", True)),
        ]
        sections.append((f"### {large} single-stream PUT and GET", rows, ["large_put", "large_get"]))
    rss_workloads = ["setup", *_expand(args.workloads)]
    if bench.peaks_resettable:
        rows = [(w, Metric("rss_mib", f"during {w}", "MiB", False)) for w in rss_workloads]
        rows.append(("whole run", Metric("rss_mib", "whole run", "MiB", False)))
    else:
        rows = [("whole run", Metric("rss_mib", "whole run", "MiB", False))]
    sections.append(("### Server peak RSS (VmHWM, process and children)", rows, rss_workloads))
    for title, rows, names in sections:
        out += ["", title, "", report.table(res, rows, base)]
        # The RSS table repeats every workload; its notes need only its own rows.
        own = ["setup", "whole run"] if names is rss_workloads else names
        notes = report.error_notes(res, own)
        if notes:
            out += ["", notes]
    return "\n".join(out)


def _remove_in_background(root):
    # Where / is mounted with discard (as on the VM in RESULTS.md) every unlink
    # waits for the device, and the tens of thousands of small objects the
    # servers wrote take minutes to delete; nobody needs to wait for that.
    cmd = ["rm", "-rf", "--", str(root)]
    if shutil.which("ionice"):
        cmd = ["ionice", "-c", "3", *cmd]
    rm = subprocess.Popen(
        cmd, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log(f"removing {root} in the background (pid {rm.pid}); --keep keeps it")


def _expand(names):
    return [x for n in names for x in (("large_put", "large_get") if n == "large" else (n,))]


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_gib():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)


def main(argv=None):
    args = parse_args(argv)
    try:
        return _main(args)
    except servers.ServerError as e:
        log(f"error: {e}")
        return 2


def _main(args):
    started = time.time()
    root = Path(tempfile.mkdtemp(prefix="objectstore-bench-", dir="/tmp"))
    running = {}
    descriptions = []
    try:
        for name in args.servers:
            spec = servers.SPECS[name]
            descriptions.append(spec.describe())
            running[name] = servers.start(name, root)
            log(f"{name}: pid {running[name].pid} on port {running[name].port}, log {running[name].log_path}")
        bench = Bench(args, running)
        bench.setup()
        bench.run()
        # The whole-run peak needs a VmHWM that was never reset, which the
        # per-workload figures have used up; the max of them is the same.
        for name, server in running.items():
            peaks = [s.values["rss_mib"] for s in bench.results.samples if s.server == name and "rss_mib" in s.values]
            peaks.append(server.peak_rss_kib() / 1024)
            status = server.exit_status()
            bench.results.add(
                Sample("whole run", name, 0, {"rss_mib": max(peaks)}, int(status is not None), status or "")
            )
        print(render(args, bench, descriptions, started, time.time() - started), flush=True)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "command": sys.argv,
                        "servers": descriptions,
                        "samples": [asdict(s) for s in bench.results.samples],
                    },
                    indent=1,
                )
            )
    finally:
        for server in running.values():
            server.stop()
        if args.keep:
            log(f"kept {root}")
        else:
            _remove_in_background(root)
    failed = any(s.errors for s in bench.results.samples)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
