"""What every benchmark records about the machine it ran on, and the per-dataset run loop."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path


def machine(packages: tuple[str, ...]) -> dict:
    """CPU count, Python, platform, and the versions of `packages` (None when missing)."""
    versions = {}
    for package in ("medsight", *packages):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "versions": versions,
    }


def run_datasets(benchmark: str, names: list[str], run: Callable, work: Path | None) -> dict:
    """``run(name, work)`` for each dataset in `work` (a temporary folder unless given); each
    finished row goes to stderr at once, then the whole result to stdout as one JSON line."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in names:
            results.append(run(name, work))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    out = {
        "benchmark": benchmark,
        "date": datetime.date.today().isoformat(),
        "machine": machine(("torch", "monai")),
        "results": results,
    }
    print(json.dumps(out))
    return out
