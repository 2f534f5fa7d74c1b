"""The benchmark scripts still run and agree with the competitor (tiny sizes; not timings)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run(script, *args):
    out = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_dicom_load_benchmark_runs_and_matches_simpleitk():
    result = run("bench_dicom_load.py", "--slices", "4", "--size", "64", "--repeats", "1")
    for storage in ("uncompressed", "jpeg2000"):
        figures = result["storages"][storage]
        assert figures["voxels_identical"] and figures["affine_max_abs_diff"] == 0.0
        assert figures["medsight_s"] > 0 and figures["ratio_medsight_over_sitk"] > 0


def test_cli_startup_benchmark_runs():
    result = run("bench_cli_startup.py", "--repeats", "1")
    assert result["torch_imported"] is False
    assert all(c["returncode"] == [0] for c in result["commands"].values())


def test_sliding_window_benchmark_runs_and_matches_monai():
    result = run("bench_sliding_window.py", "--quick")
    assert (
        result["windows"]["medsight"] == result["windows"]["monai"] == result["windows"]["medsight_bf16"] > 0
    )
    agreement = result["label_agreement_with_monai"]
    assert agreement["medsight"] == 1.0 and result["max_probability_diff_float32"] < 1e-4
    assert agreement["medsight_bf16"] > 0.5  # a random network's logits are close: bfloat16 moves some
    assert result["medsight"]["seconds"] > 0 and result["monai"]["peak_rss_mb"] > 0
