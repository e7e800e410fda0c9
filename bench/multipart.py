"""Server memory while a large object goes in and out as a multipart upload.

    python -m bench.multipart [--size 1GiB] [--part-size 8MiB] [--concurrency 4] [--limit 100MiB]

Uploads one object (default 1 GiB) to a fresh objectstore in parts (8 MiB,
4 in flight, as boto3's transfer manager sends them: UploadPart through
boto3 with its CRC32 checksum, a header over plain HTTP), completes it, then reads
it back by ``partNumber``, 4 parts in flight. The server's resident set
(its process and children, from /proc) is sampled every 50 ms; the peak per
phase, the VmHWM beside it, the MB/s and the time Complete took are
printed as markdown. Exits 1 if a peak reaches --limit or a transfer fails.
"""

import argparse
import hashlib
import shlex
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/multipart.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import servers, workloads  # noqa: E402
from bench.memory import RssSampler  # noqa: E402
from bench.run import human_size, log, parse_size  # noqa: E402

BUCKET = "bench-multipart"
KEY = "large-multipart-object"
# Distinct part bodies cycled through: incompressible, and the client holds only these.
DISTINCT_PARTS = 8


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m bench.multipart", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    p.add_argument("--part-size", type=parse_size, default=parse_size("8MiB"))
    p.add_argument("--concurrency", type=int, default=4, help="parts in flight")
    p.add_argument("--limit", type=parse_size, default=parse_size("100MiB"), help="peak RSS must stay below this")
    p.add_argument("--interval", type=float, default=0.05, help="sampling period, s")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = p.parse_args(argv)
    if args.size % args.part_size:
        p.error("--size must be a multiple of --part-size")
    return args


def client(server):
    import boto3
    from botocore.config import Config

    ep = server.endpoint
    return boto3.client(
        "s3",
        endpoint_url=f"http://{ep.host}:{ep.port}",
        aws_access_key_id=ep.access_key,
        aws_secret_access_key=ep.secret_key,
        region_name=ep.region,
        config=Config(max_pool_connections=32, retries={"max_attempts": 0}, read_timeout=300),
    )


class Parts:
    """The parts' bodies: DISTINCT_PARTS random blocks, cycled."""

    def __init__(self, size, part_size):
        self.count = size // part_size
        self.bodies = [
            hashlib.shake_256(b"objectstore-multipart-%d" % i).digest(part_size) for i in range(DISTINCT_PARTS)
        ]
        self.md5s = [hashlib.md5(body).digest() for body in self.bodies]

    def body(self, number):
        return self.bodies[(number - 1) % DISTINCT_PARTS]

    def etag(self):
        md5s = b"".join(self.md5s[(n - 1) % DISTINCT_PARTS] for n in range(1, self.count + 1))
        return f'"{hashlib.md5(md5s).hexdigest()}-{self.count}"'


def upload(s3, parts, concurrency):
    """Create, upload every part (*concurrency* in flight), complete; (seconds uploading, seconds completing)."""
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY, ChecksumAlgorithm="CRC32")["UploadId"]

    def send(number):
        answer = s3.upload_part(
            Bucket=BUCKET,
            Key=KEY,
            UploadId=upload_id,
            PartNumber=number,
            Body=parts.body(number),
            ChecksumAlgorithm="CRC32",
        )
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]}

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(send, range(1, parts.count + 1)))
    t1 = time.perf_counter()
    result = s3.complete_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=upload_id, MultipartUpload={"Parts": done})
    t2 = time.perf_counter()
    if result["ETag"] != parts.etag():
        raise RuntimeError(f"Complete answered ETag {result['ETag']}, expected {parts.etag()}")
    return t1 - t0, t2 - t1


def download(s3, parts, concurrency):
    """Read every part back by partNumber (*concurrency* in flight), checked against its MD5; seconds."""

    def fetch(number):
        body = s3.get_object(Bucket=BUCKET, Key=KEY, PartNumber=number)["Body"]
        md5 = hashlib.md5()
        for chunk in iter(lambda: body.read(1 << 20), b""):
            md5.update(chunk)
        if md5.digest() != parts.md5s[(number - 1) % DISTINCT_PARTS]:
            raise RuntimeError(f"part {number} came back different")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(fetch, range(1, parts.count + 1)))
    return time.perf_counter() - t0


def measure(args, server):
    """[(phase, MB/s or None, sampled peak KiB, VmHWM KiB)], Complete's seconds, the sample count."""
    s3 = client(server)
    workloads.ensure_bucket(server.endpoint, BUCKET)
    parts = Parts(args.size, args.part_size)
    sampler = RssSampler(server, args.interval)
    sampler.start()
    rows = []
    try:
        server.reset_peak()
        sampler.enter("idle")
        time.sleep(1)
        sampler.leave()
        rows.append(("idle, before the upload", None, sampler.peaks_kib.get("idle", 0), server.peak_rss_kib()))
        server.reset_peak()
        sampler.enter("upload")
        sending, completing = upload(s3, parts, args.concurrency)
        sampler.leave()
        rows.append(
            (
                "UploadPart ×%d + Complete" % parts.count,
                args.size / sending / 1e6,
                sampler.peaks_kib.get("upload", 0),
                server.peak_rss_kib(),
            )
        )
        log(
            f"upload: {args.size / sending / 1e6:.0f} MB/s, Complete {completing * 1000:.0f} ms, "
            f"peak RSS {rows[-1][2] / 1024:.1f} MiB, VmHWM {rows[-1][3] / 1024:.1f} MiB"
        )
        server.reset_peak()
        sampler.enter("download")
        reading = download(s3, parts, args.concurrency)
        sampler.leave()
        rows.append(
            (
                "GET ?partNumber ×%d" % parts.count,
                args.size / reading / 1e6,
                sampler.peaks_kib.get("download", 0),
                server.peak_rss_kib(),
            )
        )
        log(f"download: {args.size / reading / 1e6:.0f} MB/s, peak RSS {rows[-1][2] / 1024:.1f} MiB")
    finally:
        sampler.stop()
    return rows, completing, sampler.samples


def render(args, server, rows, completing, samples):
    limit_mib = args.limit / (1 << 20)
    count = args.size // args.part_size
    lines = [
        f"## Memory: {human_size(args.size)} multipart upload, {human_size(args.part_size)} parts, "
        f"{args.concurrency} in flight",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.multipart', *sys.argv[1:]])}`",
        "",
        f"- {server.spec.describe()}",
        f"- client: boto3 UploadPart (x-amz-checksum-crc32 header) from {args.concurrency} threads, "
        f"then CompleteMultipartUpload of {count} parts, then GET ?partNumber= from {args.concurrency} threads",
        f"- RSS of the server process and its children, sampled every {args.interval * 1000:.0f} ms "
        f"({samples} samples); VmHWM from /proc/<pid>/status, reset before each phase",
        f"- CompleteMultipartUpload of {count} parts answered in {completing * 1000:.0f} ms",
        "",
        f"| phase | MB/s | peak RSS, sampled (MiB) | VmHWM (MiB) | < {limit_mib:.0f} MiB |",
        "|---|---:|---:|---:|:---:|",
    ]
    for phase, rate, sampled, hwm in rows:
        ok = "yes" if max(sampled, hwm) / 1024 < limit_mib else "**no**"
        shown = "–" if rate is None else f"{rate:,.0f}"
        lines.append(f"| {phase} | {shown} | {sampled / 1024:.1f} | {hwm / 1024:.1f} | {ok} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="objectstore-multipart-", dir="/tmp"))
    try:
        server = servers.start("objectstore", root)
    except servers.ServerError as e:
        log(f"error: {e}")
        return 2
    try:
        log(f"objectstore: pid {server.pid} on port {server.port}")
        try:
            rows, completing, samples = measure(args, server)
        except Exception as e:  # a transfer failed: report it, as bench.memory does
            log(f"error: {e!r}")
            return 1
    finally:
        server.stop()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(render(args, server, rows, completing, samples))
    over = any(max(s, h) >= args.limit / 1024 for _, _, s, h in rows)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
