"""Integrity and leakage checks: unreadable files, duplicates, patients across splits, masks, labels.

Each check takes the scanned `Facts` (in manifest order), the manifest and the thresholds,
and returns findings. Leakage (the same pixels or patient in two splits) is an error;
duplicates within one split are warnings.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from medsight.audit._qc_hash import near_groups
from medsight.audit._qc_report import Finding, count
from medsight.audit._qc_scan import Facts, patients_of
from medsight.data.manifest import SPLITS, Manifest

if TYPE_CHECKING:
    from medsight.audit.qc import Thresholds


def split_order(splits) -> list[str]:
    """Split names in the usual order (train, val, test), others after, alphabetically."""
    known = [s for s in SPLITS if s in splits]
    return known + sorted(s for s in splits if s not in SPLITS)


def _members(group: list[Facts]) -> list[dict]:
    return [{"file": f.key, "split": f.split, "patient_id": f.patient_id} for f in group]


def check_unreadable(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Every file a reader refused, with the reader's reason."""
    return [
        Finding("unreadable", "error", reason, files=(file,), patients=patients_of([f]))
        for f in facts
        for file, reason in f.unreadable
    ]


def _duplicate_finding(check: str, group: list[Facts], what: str, details: dict) -> Finding:
    splits = split_order({f.split for f in group if f.split})
    if len(splits) > 1:
        severity, where = "error", f"in {' and '.join(splits)}: leakage between splits"
    else:
        severity, where = "warning", f"within {splits[0]}" if splits else "(no split given)"
    if len({f.files for f in group}) == 1:
        message = f"the same file listed by {len(group)} samples {where}"
    else:
        message = f"{what}, {count(len(group), 'image')} {where}"
    files = tuple(dict.fromkeys(f.key for f in group))
    return Finding(check, severity, message, files=files, patients=patients_of(group), details=details)


def check_duplicate(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Samples whose decoded voxels are identical (whatever file format holds them)."""
    by_hash: dict[str, list[Facts]] = defaultdict(list)
    for f in facts:
        if f.pixel_hash:
            by_hash[f.pixel_hash].append(f)
    return [
        _duplicate_finding("duplicate", group, "identical pixels", {"members": _members(group)})
        for group in by_hash.values()
        if len(group) > 1
    ]


def check_near_duplicate(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Samples whose perceptual hashes differ by few bits, exact duplicates of each other aside.

    2D images (one-slice volumes included) and 3D volumes (hashed on their mean over k) are
    compared among their own kind.
    """
    findings = []
    for planar in (True, False):
        kind = [f for f in facts if f.phash is not None and (f.ndim == 2 or f.shape[-1] == 1) == planar]
        if len(kind) < 2:
            continue
        hashes = np.stack([f.phash for f in kind])
        ids = {h: n for n, h in enumerate(dict.fromkeys(f.pixel_hash for f in kind))}
        exact = np.array([ids[f.pixel_hash] for f in kind])
        for group, nearest, farthest in near_groups(hashes, limits.near_duplicate_bits, unlinked=exact):
            members = [kind[i] for i in group]
            apart = f"{nearest}" if nearest == farthest else f"{nearest}-{farthest}"
            what = f"near-identical images (perceptual hashes {apart} bits apart)"
            details = {"members": _members(members), "hash_bits": hashes.shape[1] * 64}
            findings.append(_duplicate_finding("near_duplicate", members, what, details))
    return findings


def check_patient_leakage(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Patients whose samples sit in more than one split."""
    by_patient: dict[str, list[Facts]] = defaultdict(list)
    for f in facts:
        if f.patient_id and f.split:
            by_patient[f.patient_id].append(f)
    findings = []
    for patient, group in by_patient.items():
        splits = split_order({f.split for f in group})
        if len(splits) < 2:
            continue
        counts = {s: sum(f.split == s for f in group) for s in splits}
        spread = ", ".join(f"{s} ({n})" for s, n in counts.items())
        findings.append(
            Finding(
                "patient_leakage",
                "error",
                f"patient {patient} is in {len(splits)} splits: {spread}",
                files=tuple(f.key for f in group),
                patients=(patient,),
                details={"splits": counts},
            )
        )
    return findings


def check_grid(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Masks, field-of-view masks and channel files not on their image's voxel grid."""
    return [
        Finding("grid", "error", what, files=(f.key, file), patients=patients_of([f]))
        for f in facts
        for file, what in f.grid_problems
    ]


def check_empty_mask(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Masks without a single labelled voxel: one warning with their count and files."""
    read = [f for f in facts if f.mask_values is not None]
    empty = [f for f in read if not any(f.mask_values)]
    if not empty:
        return []
    by_split = defaultdict(int)
    for f in empty:
        by_split[f.split or "none"] += 1
    share = f"{len(empty)} of {len(read)} masks are empty (no labelled voxel)"
    return [
        Finding(
            "empty_mask",
            "warning",
            f"{share}: expected only for negative cases",
            files=tuple(f.masks[0] for f in empty),
            patients=patients_of(empty),
            details={"empty": len(empty), "masks": len(read), "by_split": dict(by_split)},
        )
    ]


def check_label_set(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Class labels outside ``classes``, mask values outside ``label_names``, fractional masks."""
    findings = []
    if manifest.classes:
        declared = list(manifest.classes)
        unknown: dict[str, list[Facts]] = defaultdict(list)
        for f in facts:
            for label in f.labels:
                if label not in declared:
                    unknown[label].append(f)
        for label, group in unknown.items():
            close = difflib.get_close_matches(label, declared, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            findings.append(
                Finding(
                    "label_set",
                    "error",
                    f"label {label!r} is not a declared class ({', '.join(declared)}){guess}",
                    files=tuple(f.key for f in group),
                    patients=patients_of(group),
                    details={"label": label, "samples": len(group)},
                )
            )
    if manifest.label_names:
        allowed = {0, *manifest.label_names}
        names = ", ".join(f"{k} {v}" for k, v in sorted(manifest.label_names.items()))
        strays: dict[int, list[Facts]] = defaultdict(list)
        for f in facts:
            for value in sorted(set(f.mask_values or ()) - allowed):
                strays[value].append(f)
        for value, group in sorted(strays.items()):
            findings.append(
                Finding(
                    "label_set",
                    "error",
                    f"mask value {value} is not a declared label (0 background, {names})",
                    files=tuple(f.masks[0] for f in group),
                    patients=patients_of(group),
                    details={"value": value, "masks": len(group)},
                )
            )
    fractional = [f for f in facts if f.mask_fractional]
    if fractional:
        findings.append(
            Finding(
                "label_set",
                "error",
                f"{count(len(fractional), 'mask')} with non-integer values: probability maps? "
                "Threshold them, or set the manifest's mask_threshold",
                files=tuple(f.masks[0] for f in fractional),
                patients=patients_of(fractional),
            )
        )
    return findings


def check_box_bounds(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Boxes that do not fit their image (voxel index units, upper corners exclusive)."""
    findings = []
    for f in facts:
        if f.box_problems:
            more = f" (and {len(f.box_problems) - 1} more)" if len(f.box_problems) > 1 else ""
            findings.append(
                Finding(
                    "box_bounds",
                    "error",
                    f"{f.box_problems[0]}{more}",
                    files=(f.key,),
                    patients=patients_of([f]),
                    details={"problems": f.box_problems},
                )
            )
    return findings
