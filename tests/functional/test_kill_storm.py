"""bench/kill_storm.py, briefly: the real server SIGKILLed under boto3 writes, twice, and no damage."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_kill_storm_finds_no_damage(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.kill_storm", "--rounds", "2", "--seconds-per-round", "1", "--seed", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["rounds"] == "2"
    assert lines["kills"] == "2"
    assert int(lines["acknowledged ops"].split()[0]) > 0
    assert re.fullmatch(r"\d+ \(raised: .*\)", lines["in-doubt ops"])
    for damage in ("lost", "torn", "resurrected", "stale", "listing mismatches"):
        assert lines[damage] == "0", damage
    assert re.fullmatch(
        r"min \d+\.\d{3} / median \d+\.\d{3} / max \d+\.\d{3}", lines["restart seconds (until it answers)"]
    )
    assert lines["result"] == "OK"
