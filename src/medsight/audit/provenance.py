"""Provenance sidecars: what went in (with SHA-256), what came out, how, and when.

Every command that writes a file records a ``<output>.provenance.json`` beside it (for a
folder output, ``provenance.json`` inside it)::

    with Provenance(inputs=[src], parameters={"window": None}) as prov:
        write(image, out)
        prov.add_output(out)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from medsight.io._atomic import atomic_path, sha256_file

SIDECAR_SUFFIX = ".provenance.json"


def _describe(path: Path) -> dict:
    """A file with its hash and size; a folder with each file inside (sorted)."""
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith("provenance.json")
        )
        return {"path": str(path), "files": [_describe(p) for p in files]}
    return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def sidecar_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output / "provenance.json" if output.is_dir() else output.with_name(output.name + SIDECAR_SUFFIX)


class Provenance:
    """Collects a run's record; `write_sidecars` (called on a clean exit) saves it per output.

    Parameters
    ----------
    inputs : list of paths
        Files or folders read; hashed when the record is written.
    parameters : dict, optional
        Options that shaped the output (JSON-serialisable).
    command : list of str, optional
        The command line; ``sys.argv`` by default.
    """

    def __init__(self, *, inputs=(), parameters: dict | None = None, command: list[str] | None = None):
        from medsight import __version__

        self.inputs = [Path(p) for p in inputs]
        self.outputs: list[Path] = []
        self.parameters = dict(parameters or {})
        self.command = list(sys.argv if command is None else command)
        self.version = __version__
        self.started = datetime.now(timezone.utc)
        self._t0 = time.perf_counter()

    def add_output(self, path: str | os.PathLike) -> None:
        self.outputs.append(Path(path))

    def record(self) -> dict:
        finished = datetime.now(timezone.utc)
        return {
            "medsight_version": self.version,
            "command": self.command,
            "parameters": self.parameters,
            "inputs": [_describe(p) for p in self.inputs],
            "outputs": [_describe(p) for p in self.outputs],
            "started": self.started.isoformat(timespec="milliseconds"),
            "finished": finished.isoformat(timespec="milliseconds"),
            "duration_s": round(time.perf_counter() - self._t0, 4),
            "python": platform.python_version(),
            "platform": platform.platform(),
        }

    def write_sidecars(self) -> list[Path]:
        """Write one sidecar per output, atomically; returns their paths."""
        record = json.dumps(self.record(), indent=2)
        written = []
        for output in self.outputs:
            target = sidecar_path(output)
            with atomic_path(target) as tmp:
                tmp.write_text(record + "\n", encoding="utf-8")
            written.append(target)
        return written

    def __enter__(self) -> Provenance:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:  # a failed run leaves no record claiming an output
            self.write_sidecars()
