"""Data dirs written by earlier releases are served by this one exactly as they were by theirs.

Each fixture in tests/fixtures/upgrade/ is a data dir an earlier release
wrote (NAME.tar.gz) and what that release served of it (NAME.json), made by
``python -m tests.upgrade make`` (see tests/upgrade.py). The installed server
opens a copy, upgrading it, and must serve the same snapshot; then it must
go on working on it (an upload begun by the old release completes, new
objects are written) and open it again after a restart.
"""

import json
import pathlib
import sqlite3
import subprocess
import tarfile

import pytest

from objectstore.index.schema import LATEST_VERSION, version_in_header
from tests.installed import clean_env, command
from tests.upgrade import Served, pattern_bytes, snapshot

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "upgrade"


def fixtures():
    found = sorted(p.name[: -len(".tar.gz")] for p in FIXTURES.glob("*.tar.gz"))
    assert found, f"no upgrade fixtures in {FIXTURES}"
    return found


@pytest.fixture(params=fixtures())
def old_data_dir(request, tmp_path):
    with tarfile.open(FIXTURES / f"{request.param}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    recorded = json.loads((FIXTURES / f"{request.param}.json").read_text(encoding="utf-8"))
    return tmp_path / "data", recorded


def _without_crcs(data_dir):
    """Objects with a segment or inline row without its CRC32 (empty ones too), and available images
    without one: what a scrub records."""
    index = sqlite3.connect(data_dir / "meta.sqlite")
    try:
        objects = index.execute(
            "SELECT count(*) FROM objects o WHERE ("
            " EXISTS (SELECT 1 FROM segments s WHERE s.object = o.id AND s.crc32 IS NULL)"
            " OR EXISTS (SELECT 1 FROM inline_data i WHERE i.object = o.id AND i.crc32 IS NULL))"
        ).fetchone()[0]
        images = index.execute("SELECT count(*) FROM images WHERE state = 'available' AND crc32 IS NULL").fetchone()[0]
    finally:
        index.close()
    return objects + images


def test_an_earlier_releases_data_dir_is_served_as_it_was_and_goes_on_working(old_data_dir, tmp_path):
    data_dir, recorded = old_data_dir
    keys = recorded["keys"]
    with open(data_dir / "meta.sqlite", "rb") as f:
        found = version_in_header(f.read(64))
    served = Served(data_dir, tmp_path / "first.log")
    try:
        assert snapshot(served, keys) == recorded["snapshot"]
        index = sqlite3.connect(data_dir / "meta.sqlite")
        assert index.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        index.close()

        # The upload the old release left in progress completes with its old part.
        alice = served.s3(keys["alice"])
        (upload,) = recorded["snapshot"]["buckets"]["alice-data"]["uploads"]
        part = upload["parts"][0]
        completion = {
            "Bucket": "alice-data",
            "Key": upload["key"],
            "UploadId": upload["id"],
            "MultipartUpload": {"Parts": [{"PartNumber": part[0], "ETag": part[2]}]},
        }
        first = alice.complete_multipart_upload(**completion)
        # Sent again, it is answered the same (migration 3's completed_uploads).
        assert alice.complete_multipart_upload(**completion)["ETag"] == first["ETag"]
        body = alice.get_object(Bucket="alice-data", Key=upload["key"])["Body"].read()
        assert body == pattern_bytes("pending1", part[1])
        alice.put_object(Bucket="alice-data", Key="new.txt", Body=b"written after the upgrade")
    finally:
        served.stop()

    # Objects and images from before CRCs were kept pass their scrub (objects against their MD5
    # ETags) and get their CRC32s, so that every read from now on is checked the cheap way.
    # (The server's background scrub may have recorded some already; the upload completed above
    # from a part the old release stored has none until a scrub reads it.)
    legacy = _without_crcs(data_dir)
    assert legacy >= 1 if found < 2 else legacy == 0  # migration 2 brought the CRCs
    done = subprocess.run(
        [command("objectstore-manage"), "--data-dir", str(data_dir), "scrub"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith(f" uncheckable=0 crcs-recorded={legacy}")
    index = sqlite3.connect(data_dir / "meta.sqlite")
    for table in ("segments", "inline_data"):
        assert index.execute(f"SELECT count(*) FROM {table} WHERE crc32 IS NULL").fetchone() == (0,), table
    index.close()
    assert _without_crcs(data_dir) == 0

    again = Served(data_dir, tmp_path / "second.log")
    try:
        alice = again.s3(keys["alice"])
        assert alice.get_object(Bucket="alice-data", Key="new.txt")["Body"].read() == b"written after the upgrade"
        after = snapshot(again, keys)
        assert after["buckets"]["photos"] == recorded["snapshot"]["buckets"]["photos"]
        assert after["images"] == recorded["snapshot"]["images"]
        assert sorted(after["buckets"]["alice-data"]["objects"]) == ["in-progress.bin", "new.txt", "shared.csv"]
        assert after["buckets"]["alice-data"]["uploads"] == []
    finally:
        again.stop()
