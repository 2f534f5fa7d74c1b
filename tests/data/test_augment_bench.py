"""The augmentation benchmark runs and both sides keep the labels (tiny sizes; not timings)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("monai")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_augment.py"


def test_augment_benchmark_runs_against_monai():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result["cases"]) == {"2d", "3d"} and result["torch_threads"] >= 1
    for case in result["cases"].values():
        for side in ("medsight", "monai"):
            assert case["checks"][side]["labels_kept"]
            assert case["checks"][side]["image_shape"] == [case["batch_size"], 1, *case["shape"]]
        assert case["medsight_batches_per_s"] > 0 and case["ratio_medsight_over_monai"] > 0
