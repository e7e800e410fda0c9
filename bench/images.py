"""Registering a large image bundle, against the machine's raw AES-128-CBC speed.

    python -m bench.images [--size 1GiB] [--probe-interval 0.02]

Bundles an image of --size (half random, half zero 1 MiB blocks, so gzip
has something to do, as with a real disk image) with ``images``, uploads it
to a fresh objectstore as euca-upload-bundle does (parts then manifest,
``aws-exec-read``), registers it through ``PUT /_images/`` and polls until it
is available. Meanwhile it samples the server's RSS and times small GETs,
to show the S3 service keeps answering while the bundle is unpacked.

The baseline, measured in the same run: how fast this machine decrypts
AES-128-CBC alone (cryptography/OpenSSL, 1 MiB chunks, median of 3), the
floor under any registrar, which must also check SHA1s, gunzip, untar and
write the image.
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/images.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from bench import servers, workloads  # noqa: E402
from bench.client import S3Client  # noqa: E402
from bench.memory import RssSampler  # noqa: E402
from bench.run import human_size, log, parse_size  # noqa: E402
from images import crypto  # noqa: E402
from images.bundle import bundle_image  # noqa: E402

BUCKET = "bench-bundles"
MiB = 1 << 20


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m bench.images", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    p.add_argument("--probe-interval", type=float, default=0.02, help="seconds between small GETs")
    p.add_argument("--timeout", type=float, default=1800.0, help="max seconds for the registration")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    return p.parse_args(argv)


def aes_decrypt_mb_per_s(total=256 * MiB, reps=3):
    """This machine's AES-128-CBC decryption speed, MB/s (median of *reps*)."""
    data = os.urandom(MiB)
    # Into one reused buffer: the cipher's own speed, without a fresh 1 MiB
    # result object (and its page faults) per call.
    out = bytearray(MiB + 16)
    rates = []
    for _ in range(reps):
        decryptor = Cipher(algorithms.AES(os.urandom(16)), modes.CBC(os.urandom(16))).decryptor()
        started = time.perf_counter()
        for _ in range(total // MiB):
            decryptor.update_into(data, out)
        rates.append(total / (time.perf_counter() - started) / 1e6)
    return statistics.median(rates)


def write_image(path, size):
    zeros = bytes(MiB)
    with open(path, "wb") as f:
        for index in range(0, size, MiB):
            n = min(MiB, size - index)
            f.write(os.urandom(n) if (index // MiB) % 2 == 0 else zeros[:n])


class GetProber(threading.Thread):
    """Small GETs, one every *interval*, each timed; phases as RssSampler's."""

    def __init__(self, endpoint, interval):
        super().__init__(daemon=True)
        self.client = S3Client(endpoint, timeout=30)
        self.interval = interval
        self.latencies = {}
        self.failures = 0
        self._phase = None
        self._done = threading.Event()

    def enter(self, phase):
        self._phase = phase

    def run(self):
        while not self._done.is_set():
            phase = self._phase
            started = time.perf_counter()
            status, _, _ = self.client.request("GET", f"/{BUCKET}/probe")
            if phase is not None:
                self.latencies.setdefault(phase, []).append(time.perf_counter() - started)
                self.failures += status != 200
            self._done.wait(self.interval)

    def stop(self):
        self._done.set()
        self.join()
        self.client.close()


def upload(endpoint, folder, result):
    upload_files(endpoint, BUCKET, [*result.part_paths, result.manifest_path])


def upload_files(endpoint, bucket, paths):
    """PUT each file in turn (as euca-upload-bundle does), on one connection, UNSIGNED-PAYLOAD."""
    client = S3Client(endpoint, timeout=300)
    try:
        for path in paths:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                resp = client.open(
                    "PUT",
                    f"/{bucket}/{os.path.basename(path)}",
                    body=f,
                    headers={"content-length": str(size), "x-amz-acl": "aws-exec-read"},
                    payload_hash="UNSIGNED-PAYLOAD",
                )
                data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"upload of {path}: HTTP {resp.status} {data[:200]!r}")
    finally:
        client.close()


def register_and_wait(endpoint, manifest_name, timeout):
    """(image id, seconds from the registration's answer until it was seen available)."""
    client = S3Client(endpoint, timeout=60)
    try:
        status, _, data = client.request("PUT", "/_images/", query=(("image_location", f"{BUCKET}/{manifest_name}"),))
        if status != 200:
            raise RuntimeError(f"register: HTTP {status} {data[:300]!r}")
        image_id = json.loads(data)["imageId"]
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            status, _, data = client.request("GET", "/_images/")
            image = next(i for i in json.loads(data) if i["imageId"] == image_id)
            if image["imageState"] == "available":
                return image_id, time.perf_counter() - started
            if image["imageState"] == "failed":
                raise RuntimeError(f"registration failed: {image['stateReason']}")
            time.sleep(0.05)
        raise RuntimeError(f"registration not done after {timeout} s")
    finally:
        client.close()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv=None):
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="objectstore-images-", dir="/tmp"))
    try:
        log("measuring AES-128-CBC decryption alone")
        aes = aes_decrypt_mb_per_s()
        log(f"AES-128-CBC decrypt: {aes:,.0f} MB/s")
        server = servers.start("objectstore", root)
        try:
            return run(args, root, server, aes)
        finally:
            server.stop()
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def run(args, root, server, aes):
    endpoint = server.endpoint
    workloads.ensure_bucket(endpoint, BUCKET)
    S3Client(endpoint).request("PUT", f"/{BUCKET}/probe", body=os.urandom(4096))
    image_path = root / "image.img"
    log(f"writing a {human_size(args.size)} image")
    write_image(image_path, args.size)
    cloud_cert = crypto.load_certificate((server.data_dir / "cloud-cert.pem").read_bytes())
    folder = root / "bundle"
    folder.mkdir()
    log("bundling it")
    started = time.perf_counter()
    result = bundle_image(str(image_path), str(folder), user_id="bench", cloud_certificate=cloud_cert)
    bundle_seconds = time.perf_counter() - started
    ciphertext = sum(os.path.getsize(p) for p in result.part_paths)
    image_path.unlink()  # the disk is shared: keep one copy of the data at a time
    log(f"bundled in {bundle_seconds:.1f} s ({len(result.part_paths)} parts, {human_size(ciphertext)}); uploading")
    upload(endpoint, folder, result)
    shutil.rmtree(folder)

    sampler = RssSampler(server, 0.05)
    prober = GetProber(endpoint, args.probe_interval)
    sampler.start()
    prober.start()
    try:
        sampler.enter("idle")
        prober.enter("idle")
        time.sleep(2)
        sampler.leave()
        server.reset_peak()
        sampler.enter("registering")
        prober.enter("registering")
        image_id, seconds = register_and_wait(endpoint, os.path.basename(result.manifest_path), args.timeout)
        prober.enter(None)
        sampler.leave()
        hwm = server.peak_rss_kib()
    finally:
        prober.stop()
        sampler.stop()
    log(f"{image_id} available after {seconds:.1f} s")
    rate = args.size / seconds / 1e6
    lines = [
        f"## Image registration: {human_size(args.size)} image",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.images', *sys.argv[1:]])}`",
        "",
        f"- {server.spec.describe()}; the image is half random, half zero 1 MiB blocks; "
        f"{len(result.part_paths)} parts, {human_size(ciphertext)} of ciphertext",
        f"- bundling (tar, gzip -6, AES, 10 MiB parts, in the harness): {bundle_seconds:.1f} s, "
        f"{args.size / bundle_seconds / 1e6:,.0f} MB/s",
        "",
        "| measure | figure |",
        "|---|---:|",
        f"| AES-128-CBC decrypt alone, this machine (MB/s) | {aes:,.0f} |",
        f"| registration, register to available (s) | {seconds:.1f} |",
        f"| registration throughput, image bytes (MB/s) | {rate:,.0f} |",
        f"| registration throughput, ciphertext bytes (MB/s) | {ciphertext / seconds / 1e6:,.0f} |",
        f"| registration ÷ raw AES decrypt (ciphertext) | {ciphertext / seconds / 1e6 / aes:.2f} |",
        f"| server peak RSS while registering, sampled / VmHWM (MiB) | "
        f"{sampler.peaks_kib.get('registering', 0) / 1024:.1f} / {hwm / 1024:.1f} |",
        f"| server RSS idle before (MiB) | {sampler.peaks_kib.get('idle', 0) / 1024:.1f} |",
    ]
    for phase in ("idle", "registering"):
        values = prober.latencies.get(phase, [])
        if values:
            lines.append(
                f"| 4 KiB GET while {phase}: n, p50 / p99 / max (ms) | {len(values)}, "
                f"{percentile(values, 0.5) * 1000:.1f} / {percentile(values, 0.99) * 1000:.1f} / "
                f"{max(values) * 1000:.1f} |"
            )
    lines.append(f"| GETs that failed | {prober.failures} |")
    print("\n".join(lines))
    return 1 if prober.failures else 0


if __name__ == "__main__":
    sys.exit(main())
