"""bench/bench_qc.py still runs and finds what it plants (tiny sizes; not timings)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_qc.py"


def test_qc_benchmark_runs_finds_its_duplicates_and_agrees_with_imagehash():
    pytest.importorskip("imagehash")
    out = subprocess.run(
        [sys.executable, str(BENCH), "--n", "40", "--size", "64", "--n3d", "3", "--repeats", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    figures = result["images_2d"]
    assert figures["found"] == {"duplicate": 10, "near_duplicate": 10}
    assert figures["summary"]["warning"] == 0 and figures["summary"]["error"] == 20
    assert figures["workers_1"]["s_per_1000"] > 0 and figures["cli_s_per_1000"] > 0
    assert abs(sum(figures["share_of_time"].values()) - 1) < 0.01
    assert result["hashing_2d"]["bits_differing_from_imagehash"]["max"] <= 6  # of 256
    assert result["volumes_3d"]["summary"]["readable"] == 3
