"""Benchmark: how long the ``medsight`` command takes to start, against ``python -c pass``.

Times, as fresh processes on a warm cache (median of --repeats after one untimed run):

- ``python -c pass`` (the baseline: the interpreter alone),
- ``python -m medsight --help``,
- ``.venv/bin/medsight --help`` (the installed entry point, when present),
- ``python -m medsight info FILE`` on one synthetic 512 x 512 CT DICOM file,

and runs each command once more under ``python -X importtime`` to report the slowest
top-level imports and whether torch or MONAI were imported (they must not be: see the
"Lazy imports" rule in DESIGN.md). Prints one JSON line.

    python bench/bench_cli_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "monai", "SimpleITK", "pydicom", "nibabel", "scipy", "skimage", "PIL", "rich")


def child_env() -> dict:
    """The environment for child processes: medsight importable even without an install."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def run_once(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def import_profile(cmd: list[str], env: dict, top: int = 6) -> dict:
    """Run `cmd` (a python command) under -X importtime: heavy modules seen, slowest imports."""
    _, proc = run_once([cmd[0], "-X", "importtime", *cmd[1:]], env)
    seen, roots = set(), []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        try:
            _, cumulative, name = line[len("import time:") :].split("|")
            cumulative_us = int(cumulative)
        except ValueError:  # the header line
            continue
        module = name.strip()
        seen.add(module.split(".")[0])
        if not name[1:].startswith(" "):  # no indentation: imported by the program itself
            roots.append((cumulative_us, module))
    roots.sort(reverse=True)
    return {
        "heavy_imported": sorted(m for m in HEAVY if m in seen),
        "torch_imported": "torch" in seen,
        "monai_imported": "monai" in seen,
        "slowest_top_level_imports_ms": {m: round(us / 1000, 1) for us, m in roots[:top]},
    }


def synthetic_dicom(folder: Path) -> Path:
    """One 512 x 512 axial CT slice in HU, written by medsight's own DICOM writer."""
    sys.path.insert(0, str(SRC))
    from medsight.image import Image
    from medsight.io.dicom._write import write_series

    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 512)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    hu = np.where(xx**2 / 0.8 + yy**2 / 0.5 <= 1, 40.0, -1000.0) + rng.normal(0, 12, xx.shape)
    affine = np.diag([-0.7, -0.7, 1.0, 1.0])
    affine[:3, 3] = [179.2, 179.2, -50.0]
    image = Image(np.round(hu).astype(np.int16)[None, :, :, None], affine)
    return write_series(image, folder / "ct", patient={"PatientID": "BENCH"})[0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    env = child_env()
    py = sys.executable
    entry_point = Path(sys.executable).parent / "medsight"

    with tempfile.TemporaryDirectory(prefix="medsight-bench-") as tmp:
        dicom_file = synthetic_dicom(Path(tmp))
        commands = {
            "python -c pass": [py, "-c", "pass"],
            "python -m medsight --help": [py, "-m", "medsight", "--help"],
            "python -m medsight info FILE": [py, "-m", "medsight", "info", str(dicom_file)],
        }
        if entry_point.exists():
            commands["medsight --help (entry point)"] = [str(entry_point), "--help"]
        figures: dict = {}
        for label, cmd in commands.items():
            run_once(cmd, env)  # untimed: warms the page cache and .pyc files
            times, rcs, err = [], set(), ""
            for _ in range(args.repeats):
                seconds, proc = run_once(cmd, env)
                times.append(seconds)
                rcs.add(proc.returncode)
                if proc.returncode and not err:
                    err = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            figures[label] = {
                "median_s": round(statistics.median(times), 4),
                "min_s": round(min(times), 4),
            }
            figures[label]["returncode"] = sorted(rcs)
            if err:
                figures[label]["stderr_last_line"] = err[:300]
            # The entry point is a script, not a python command: profile its module instead.
            profile_cmd = [py, "-m", "medsight", "--help"] if cmd[0] == str(entry_point) else cmd
            if label != "python -c pass":
                figures[label].update(import_profile(profile_cmd, env))

    baseline = figures["python -c pass"]["median_s"]
    for label, fig in figures.items():
        if label != "python -c pass":
            fig["over_baseline_s"] = round(fig["median_s"] - baseline, 4)
    result = {
        "benchmark": "cli_startup",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "repeats": args.repeats,
        "baseline_s": baseline,
        "commands": figures,
        "torch_imported": any(f.get("torch_imported") for f in figures.values()),
        "monai_imported": any(f.get("monai_imported") for f in figures.values()),
        "machine": machine(("typer", "rich", "pydicom", "numpy")),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
