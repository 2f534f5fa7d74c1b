"""What every benchmark records about the machine it ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata


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
