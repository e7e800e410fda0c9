"""objectstore-bundle end to end on a large image, against a plain sequential upload.

    python -m bench.bundletool [--size 512MiB] [--reps 3]

Runs the tool as a user does (a subprocess, keys in the environment)
against a fresh objectstore: ``image``, then ``upload`` with --jobs 1 and
with --jobs 4, a second ``upload`` that finds every part already there
(the resume path), and ``register --wait``. The baselines, in the same run:
the harness's own client uploading the same files one after the other with
UNSIGNED-PAYLOAD (no hashing on the client, no process to start), as
bench.images does; and awscli's ``aws s3 cp --recursive`` (a command like
ours: it starts a process and uploads in parallel). Figures are medians
of --reps.
"""

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/bundletool.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import servers  # noqa: E402
from bench.client import S3Client  # noqa: E402
from bench.images import upload_files, write_image  # noqa: E402
from bench.run import human_size, log, parse_size  # noqa: E402
from images import crypto  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m bench.bundletool", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", type=parse_size, default=parse_size("512MiB"))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    return p.parse_args(argv)


class Tool:
    def __init__(self, endpoint, folder):
        self.folder = folder
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "EC2_", "S3_URL", "OBJECTSTORE_", "EUCALYPTUS_CERT"))
        }
        self.env.update(
            OBJECTSTORE_URL=f"http://{endpoint.host}:{endpoint.port}",
            AWS_ACCESS_KEY_ID=endpoint.access_key,
            AWS_SECRET_ACCESS_KEY=endpoint.secret_key,
            PYTHONPATH=str(REPO),
        )

    def run(self, *args):
        """Seconds the command took; it must succeed."""
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "objectstore.bundletool", "--no-progress", *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"objectstore-bundle {shlex.join(args)}: {done.stderr.strip()}")
        return seconds, done.stdout


def awscli_upload(endpoint, bucket, folder, env):
    """``aws s3 cp --recursive`` of the bundle's folder: seconds (None when awscli is not installed)."""
    aws = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
    if not os.path.exists(aws):
        return None
    started = time.perf_counter()
    done = subprocess.run(
        [aws, "--endpoint-url", f"http://{endpoint.host}:{endpoint.port}", "s3", "cp", str(folder),
         f"s3://{bucket}/", "--recursive", "--quiet", "--acl", "aws-exec-read"],
        env=dict(env, AWS_DEFAULT_REGION="us-east-1"),
        capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"aws s3 cp: {done.stderr.strip()}")
    return time.perf_counter() - started


def sequential_upload(endpoint, bucket, paths):
    """The baseline: each file PUT in turn, one connection, no client-side hashing; seconds."""
    started = time.perf_counter()
    upload_files(endpoint, bucket, paths)
    return time.perf_counter() - started


def main(argv=None):
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="objectstore-bundletool-", dir="/tmp"))
    try:
        server = servers.start("objectstore", root)
        try:
            return run(args, root, server)
        finally:
            server.stop()
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def run(args, root, server):
    endpoint = server.endpoint
    key_pem, cert_pem = crypto.new_key_and_certificate("bench")
    (root / "key.pem").write_bytes(key_pem)
    (root / "cert.pem").write_bytes(cert_pem)
    tool = Tool(endpoint, root)
    image = root / "disk.img"
    log(f"writing a {human_size(args.size)} image (half random, half zero 1 MiB blocks)")
    write_image(image, args.size)

    log("bundling it with objectstore-bundle image")
    bundle_s, out = tool.run(
        "image", "--image", str(image), "--cert", "cert.pem", "--privatekey", "key.pem", "--destination", "bundle"
    )
    manifest = Path(out.split(" ", 2)[2].strip())
    files = sorted((root / "bundle").iterdir())
    total = sum(path.stat().st_size for path in files)
    image.unlink()  # the disk is shared: keep one copy of the data at a time
    log(f"{len(files) - 1} parts, {human_size(total)}")

    timings = {"baseline": [], "awscli": [], "jobs1": [], "jobs4": [], "resume": [], "startup": []}
    for rep in range(args.reps):
        timings["startup"].append(tool.run("--version")[0])
        for name in ("baseline", "awscli", "jobs1", "jobs4"):
            bucket = f"bench-{name}-{rep}"
            if name == "baseline":
                servers_bucket(endpoint, bucket)
                seconds = sequential_upload(endpoint, bucket, files)
            elif name == "awscli":
                servers_bucket(endpoint, bucket)
                seconds = awscli_upload(endpoint, bucket, root / "bundle", tool.env)
                if seconds is None:
                    continue
            else:
                jobs = name[-1]
                seconds, _ = tool.run("upload", "--bucket", bucket, "--manifest", str(manifest), "--jobs", jobs)
            timings[name].append(seconds)
            log(f"{name} #{rep + 1}: {seconds:.2f} s, {total / seconds / 1e6:,.0f} MB/s")
        seconds, _ = tool.run("upload", "--bucket", f"bench-jobs4-{rep}", "--manifest", str(manifest))
        timings["resume"].append(seconds)
        log(f"resume #{rep + 1}: {seconds:.2f} s")

    register_s, out = tool.run("register", f"bench-jobs4-0/{manifest.name}", "--wait", "--interval", "0.2")
    log(f"registered {out.split()[1]} in {register_s:.1f} s")

    medians = {name: statistics.median(values) for name, values in timings.items() if values}
    rate = {name: total / seconds / 1e6 for name, seconds in medians.items()}
    lines = [
        f"## objectstore-bundle: {human_size(args.size)} image",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.bundletool', *sys.argv[1:]])}`",
        "",
        f"- {server.spec.describe()}; {len(files) - 1} parts + manifest, {human_size(total)}; medians of {args.reps}",
        "",
        "| step | seconds | MB/s of bundle | × baseline |",
        "|---|---:|---:|---:|",
        f"| image (tar, gzip -6, AES, sign) | {bundle_s:.1f} | {args.size / bundle_s / 1e6:,.0f} (of image) | – |",
        f"| baseline: sequential PUTs, no client hashing | {medians['baseline']:.2f} | {rate['baseline']:,.0f} "
        "| 1.00× |",
    ]
    if "awscli" in medians:
        lines.append(
            f"| baseline: aws s3 cp --recursive (process start included) | {medians['awscli']:.2f} "
            f"| {rate['awscli']:,.0f} | {medians['baseline'] / medians['awscli']:.2f}× |"
        )
    lines.append(f"| objectstore-bundle --version (process start alone) | {medians['startup']:.2f} | – | – |")
    for name, label in (("jobs1", "upload --jobs 1"), ("jobs4", "upload --jobs 4 (default)")):
        lines.append(
            f"| {label} | {medians[name]:.2f} | {rate[name]:,.0f} | {medians['baseline'] / medians[name]:.2f}× |"
        )
    lines.append(f"| upload again, every part present (resume) | {medians['resume']:.2f} | – | – |")
    if "awscli" in medians:
        lines.append(f"| upload --jobs 4 ÷ aws s3 cp time | {medians['jobs4'] / medians['awscli']:.2f} | – | – |")
    lines.append(
        f"| register --wait (to available) | {register_s:.1f} | {args.size / register_s / 1e6:,.0f} (of image) | – |"
    )
    print("\n".join(lines))
    return 0


def servers_bucket(endpoint, bucket):
    status, _, data = S3Client(endpoint).request("PUT", f"/{bucket}")
    if status != 200:
        raise RuntimeError(f"create {bucket}: HTTP {status} {data[:200]!r}")


if __name__ == "__main__":
    sys.exit(main())
