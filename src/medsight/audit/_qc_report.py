"""`Finding` and `Report`: what a quality check found, and everything a QC run found."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from medsight.errors import NotFoundError
from medsight.io._atomic import atomic_path

SEVERITIES = ("error", "warning", "info")
FAIL_ON = ("error", "warning", "never")
REPORT_FORMAT = "medsight-qc"


def count(n: int, noun: str) -> str:
    """``"1 image"``, ``"3 images"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True)
class Finding:
    """One problem (or fact) a check reports.

    Parameters
    ----------
    check : str
        The check's name, e.g. ``"duplicate"``.
    severity : {"error", "warning", "info"}
    message : str
        One line saying what is wrong.
    files : tuple of str
        The files concerned, as the manifest names them.
    patients : tuple of str
        The patient ids concerned.
    details : dict
        Machine-readable figures (counts, splits, values), JSON-serialisable.
    """

    check: str
    severity: str
    message: str
    files: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def to_dict(self) -> dict:
        out = {"check": self.check, "severity": self.severity, "message": self.message}
        out["files"] = list(self.files)
        out["patients"] = list(self.patients)
        if self.details:
            out["details"] = self.details
        return out


@dataclass
class Report:
    """The findings of a QC run over one dataset, errors first.

    Attributes
    ----------
    data : str
        The dataset as given (manifest file or folder).
    root : str
        The folder the findings' file names are relative to.
    n_samples, n_readable : int
        Samples in the dataset, and those whose image could be read.
    findings : list of Finding
    checks : list of str
        The checks that ran, in order.
    thresholds : dict
        The thresholds used.
    seconds : dict
        Time per phase: reading and measuring samples (summed over workers) and each check.
    """

    data: str
    root: str
    n_samples: int
    n_readable: int
    findings: list[Finding]
    checks: list[str]
    thresholds: dict
    seconds: dict = field(default_factory=dict)

    def __post_init__(self):
        rank = {s: n for n, s in enumerate(SEVERITIES)}
        order = {c: n for n, c in enumerate(self.checks)}
        self.findings = sorted(
            self.findings, key=lambda f: (rank[f.severity], order.get(f.check, len(order)))
        )

    @property
    def summary(self) -> dict:
        """Counts: samples, readable samples, findings per severity and per check."""
        counts = {s: 0 for s in SEVERITIES}
        per_check: dict[str, dict[str, int]] = {}
        for finding in self.findings:
            counts[finding.severity] += 1
            per_check.setdefault(finding.check, {s: 0 for s in SEVERITIES})[finding.severity] += 1
        return {"samples": self.n_samples, "readable": self.n_readable, **counts, "checks": per_check}

    def fails(self, fail_on: str = "error") -> bool:
        """Whether the run fails at level `fail_on`: "error", "warning" (or worse), or "never"."""
        if fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {FAIL_ON}, not {fail_on!r}")
        if fail_on == "never":
            return False
        failing = ("error",) if fail_on == "error" else ("error", "warning")
        return any(f.severity in failing for f in self.findings)

    def to_dict(self) -> dict:
        return {
            "format": REPORT_FORMAT,
            "version": 1,
            "data": self.data,
            "root": self.root,
            "summary": self.summary,
            "findings": [f.to_dict() for f in self.findings],
            "checks": list(self.checks),
            "thresholds": self.thresholds,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }

    def write_json(self, path: str | Path) -> Path:
        """Write `to_dict()` as JSON, atomically."""
        path = Path(path)
        if not path.parent.is_dir():
            raise NotFoundError("output folder does not exist", path=path.parent, hint="Create it first")
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path
