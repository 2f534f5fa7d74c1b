"""Dataset-level checks that need no voxels: class balance and missing attributes."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from medsight.audit._qc_checks import split_order
from medsight.audit._qc_report import Finding
from medsight.audit._qc_scan import Facts, patients_of
from medsight.data.manifest import Manifest

if TYPE_CHECKING:
    from medsight.audit.qc import Thresholds

# Sample fields that may be absent; when some samples have one and others do not, say so.
_OPTIONAL_FIELDS = ("label", "mask", "fov", "boxes", "timepoint", "split")


def check_class_balance(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Class counts (info); imbalance, empty classes and classes absent from a split (warnings).

    Imbalance: the largest class outnumbers the smallest by more than ``imbalance_ratio``,
    or the smallest holds less than ``minority_share`` of the samples (for two classes;
    ``minority_share * 2 / K`` for K classes, so balanced many-class data passes).
    Labels outside declared classes are left to the ``label_set`` check.
    """
    labelled = [f for f in facts if f.labels]
    if not labelled:
        return []
    classes = list(manifest.classes) if manifest.classes else sorted({c for f in labelled for c in f.labels})
    counts = Counter({c: 0 for c in classes})
    per_split: dict[str, Counter] = {}
    for f in labelled:
        for label in f.labels:
            if label in counts:
                counts[label] += 1
                per_split.setdefault(f.split or "none", Counter())[label] += 1
    spread = ", ".join(f"{c} {counts[c]}" for c in classes)
    by_split = {s: {c: per_split[s][c] for c in classes} for s in split_order(per_split)}
    findings = [
        Finding(
            "class_balance",
            "info",
            f"class counts: {spread}",
            details={"counts": {c: counts[c] for c in classes}, "by_split": by_split},
        )
    ]
    if len(classes) < 2:
        return findings
    empty = [c for c in classes if counts[c] == 0]
    if empty:
        findings.append(
            Finding("class_balance", "warning", f"declared classes without samples: {', '.join(empty)}")
        )
    present = [c for c in classes if counts[c]]
    if len(present) >= 2:
        ranked = sorted(present, key=lambda c: -counts[c])
        largest, smallest = ranked[0], ranked[-1]
        most, least = counts[largest], counts[smallest]
        share = least / sum(counts.values())
        if most / least > limits.imbalance_ratio or share < limits.minority_share * 2 / len(present):
            findings.append(
                Finding(
                    "class_balance",
                    "warning",
                    f"class imbalance: {smallest!r} has {least} samples ({share:.1%}), "
                    f"{largest!r} {most} (ratio {most / least:.3g}:1)",
                    details={"counts": {c: counts[c] for c in classes}},
                )
            )
    for split in split_order(per_split):
        if split == "none":
            continue
        missing = [c for c in present if per_split[split][c] == 0]
        if missing:
            findings.append(
                Finding(
                    "class_balance",
                    "warning",
                    f"split {split} has no samples of class {', '.join(missing)}",
                    details={"split": split, "classes": missing},
                )
            )
    return findings


def _is_missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def check_missing(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Fields and attributes present on some samples but not others; samples without patient_id."""
    samples = manifest.samples
    n = len(samples)
    if n == 0:
        return []
    findings = []
    without_patient = [f for f, s in zip(facts, samples) if _is_missing(s.patient_id)]
    if len(without_patient) == n:
        findings.append(
            Finding(
                "missing",
                "warning",
                "no sample has a patient_id: splits cannot be made or checked at patient level",
                details={"field": "patient_id", "missing": n, "samples": n},
            )
        )
    elif without_patient:
        findings.append(_partial("patient_id", without_patient, n, ": leakage cannot be checked for them"))
    for name in _OPTIONAL_FIELDS:
        lacking = [f for f, s in zip(facts, samples) if _is_missing(getattr(s, name))]
        if 0 < len(lacking) < n:
            findings.append(_partial(name, lacking, n))
    attributes = dict.fromkeys(key for s in samples for key in s.attributes)
    for key in attributes:
        lacking = [f for f, s in zip(facts, samples) if _is_missing(s.attributes.get(key))]
        if lacking:
            findings.append(_partial(key, lacking, n))
    return findings


def _partial(name: str, lacking: list[Facts], n: int, why: str = "") -> Finding:
    return Finding(
        "missing",
        "warning",
        f"{name} missing on {len(lacking)} of {n} samples{why}",
        files=tuple(f.key for f in lacking),
        patients=patients_of(lacking),
        details={"field": name, "missing": len(lacking), "samples": n},
    )
