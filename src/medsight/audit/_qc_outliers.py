"""Geometry and intensity outliers, and CT that is not in Hounsfield units.

Outliers are judged with robust statistics (median and MAD, so the outliers themselves do
not move the yardstick) among comparable images: same dimension for geometry; same
modality, dimension and channel count for intensities. A value is an outlier only when it
is far both in robust standard deviations and in absolute terms, so a dataset whose
images are all alike (MAD 0) does not flag tiny differences.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

import numpy as np

from medsight.audit._qc_report import Finding, count
from medsight.audit._qc_scan import AIR_HU, Facts, patients_of
from medsight.data.manifest import Manifest

if TYPE_CHECKING:
    from medsight.audit.qc import Thresholds

# Below these, an image said to be CT is not in Hounsfield units.
_CT_MIN_SPREAD_HU = 20.0  # 1st to 99th percentile: normalised data spans a few units
_CT_MIN_PADDING = 0.001  # share of voxels at the minimum that makes it a padding value


def _robust(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD-based standard deviation (1.4826 MAD), per column."""
    median = np.median(values, axis=0)
    return median, 1.4826 * np.median(np.abs(values - median), axis=0)


def _dims(values, unit: str = "") -> str:
    return " x ".join(f"{v:.4g}" for v in values) + unit


def _listing(group: list[Facts], describe) -> str:
    shown = ", ".join(describe(f) for f in group[:3])
    return shown + (f", +{len(group) - 3} more" if len(group) > 3 else "")


def check_geometry(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Spacing and size far from the dataset's typical values; orientations not the usual one."""
    findings = []
    for ndim in (2, 3):
        group = [f for f in facts if f.ndim == ndim]
        if len(group) < limits.min_group:
            continue
        for kind, unit, value in (("spacing", " mm", lambda f: f.spacing), ("size", "", lambda f: f.shape)):
            logs = np.log(np.array([value(f) for f in group], dtype=float))
            median, sigma = _robust(logs)
            distance = np.abs(logs - median)
            far = (distance > np.log(limits.outlier_ratio)) & (distance > limits.outlier_z * sigma)
            outliers = [f for f, row in zip(group, far) if row.any()]
            if not outliers:
                continue
            typical = _dims(np.exp(median), unit)
            findings.append(
                Finding(
                    "geometry",
                    "warning",
                    f"{kind} far from the typical {typical}: "
                    + _listing(outliers, lambda f, v=value, u=unit: _dims(v(f), u)),
                    files=tuple(f.key for f in outliers),
                    patients=patients_of(outliers),
                    details={
                        "kind": kind,
                        "typical": [float(v) for v in np.exp(median)],
                        "values": {f.key: list(value(f)) for f in outliers},
                    },
                )
            )
        findings += _orientation(group, limits)
    return findings


def _orientation(group: list[Facts], limits: Thresholds) -> list[Finding]:
    counts = Counter(f.orientation for f in group)
    if len(counts) < 2:
        return []
    usual, n_usual = counts.most_common(1)[0]
    spread = ", ".join(f"{code} {n}" for code, n in counts.most_common())
    if n_usual < limits.orientation_majority * len(group):
        return [
            Finding("geometry", "info", f"mixed orientations: {spread}", details={"counts": dict(counts)})
        ]
    findings = []
    for code, n in counts.items():
        if code == usual:
            continue
        odd = [f for f in group if f.orientation == code]
        findings.append(
            Finding(
                "geometry",
                "warning",
                f"orientation {code} ({count(n, 'image')}) differs from the usual "
                f"{usual} ({n_usual} of {len(group)})",
                files=tuple(f.key for f in odd),
                patients=patients_of(odd),
                details={"kind": "orientation", "counts": dict(counts)},
            )
        )
    return findings


def ct_problem(f: Facts) -> tuple[str, str] | None:
    """``(severity, reason)`` when a CT's values are not (or look not) Hounsfield units.

    Errors: no negative value at all, or a tiny spread (normalised). Warnings: the darkest
    voxels (padding aside) lie below air, as when the rescale intercept was applied twice;
    or padding surrounds the scan but nothing inside is as dark as air.
    """
    if f.modality != "CT" or not f.readable or np.isnan(f.lo):
        return None
    low, high = AIR_HU
    if f.lo >= 0:
        return "error", f"no negative values, minimum {f.lo:g}"
    if f.p99 - f.p1 < _CT_MIN_SPREAD_HU:
        return "error", f"values span only {f.p1:.3g} to {f.p99:.3g} (1st-99th percentile)"
    if f.floor < low:
        return "warning", f"darkest voxels at {f.floor:.4g}, below air"
    if f.lo < low and f.padding >= _CT_MIN_PADDING and f.floor > high:
        return "warning", f"padding at {f.lo:g} but the darkest voxels inside at {f.floor:.4g}"
    return None


def check_ct_units(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """CT whose values are not Hounsfield units (error), or whose air is not near -1000 HU (warning)."""
    problems = {f.index: ct_problem(f) for f in facts}
    low, high = AIR_HU
    claim = {
        "error": (
            "not in Hounsfield units",
            "stored values without rescale slope and intercept, or normalised?",
        ),
        "warning": (f"without air near -1000 HU ({low:g} to {high:g})", "check the rescale intercept"),
    }
    findings = []
    for severity, (what, advice) in claim.items():
        group = [f for f in facts if problems[f.index] and problems[f.index][0] == severity]
        if not group:
            continue
        reasons = {f.key: problems[f.index][1] for f in group}
        listing = _listing(group, lambda f, r=reasons: r[f.key])
        findings.append(
            Finding(
                "ct_units",
                severity,
                f"{count(len(group), 'CT image')} {what} ({listing}): {advice}",
                files=tuple(reasons),
                patients=patients_of(group),
                details={"reasons": reasons},
            )
        )
    return findings


def check_intensity(facts: list[Facts], manifest: Manifest, limits: Thresholds) -> list[Finding]:
    """Non-finite voxels (error), constant images and intensity ranges far from the rest (warnings)."""
    findings = []
    nonfinite = [f for f in facts if f.nonfinite]
    if nonfinite:
        findings.append(
            Finding(
                "intensity",
                "error",
                f"{count(len(nonfinite), 'image')} with NaN or infinite values",
                files=tuple(f.key for f in nonfinite),
                patients=patients_of(nonfinite),
                details={"nonfinite_voxels": {f.key: f.nonfinite for f in nonfinite}},
            )
        )
    constant = [f for f in facts if f.readable and f.lo == f.hi]
    if constant:
        findings.append(
            Finding(
                "intensity",
                "warning",
                f"{count(len(constant), 'constant image')} ("
                + _listing(constant, lambda f: f"all {f.lo:g}")
                + ")",
                files=tuple(f.key for f in constant),
                patients=patients_of(constant),
            )
        )
    groups: dict[tuple, list[Facts]] = defaultdict(list)
    for f in facts:
        if f.readable and f.lo < f.hi and not ct_problem(f):  # CT already reported
            groups[(f.modality, f.ndim, f.channels)].append(f)
    for (modality, _, _), group in groups.items():
        if len(group) >= limits.min_group:
            findings += _range_outliers(group, modality, limits)
    return findings


def _far(values: np.ndarray, limits: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``(low, high)`` far from the group's median (robust z, floored); and the median."""
    median, sigma = _robust(values)
    typical_range = max(float(median[1] - median[0]), 1e-12)
    allowed = limits.intensity_z * np.maximum(sigma, limits.intensity_floor * typical_range)
    return (np.abs(values - median) > allowed).any(axis=1), median


def _range_outliers(group: list[Facts], modality: str, limits: Thresholds) -> list[Finding]:
    """Images whose 1st-99th percentile range and min-max range are both far from the rest.

    Percentiles alone would flag sparse images (a small object on a blank background has a
    99th percentile of 0); extremes alone, a single hot pixel. Both together mean the
    values are on another scale.
    """
    far_percentiles, median = _far(np.array([(f.p1, f.p99) for f in group]), limits)
    far_extremes, _ = _far(np.array([(f.lo, f.hi) for f in group]), limits)
    outliers = [f for f, a, b in zip(group, far_percentiles, far_extremes) if a and b]
    if not outliers:
        return []
    what = f"{modality} " if modality else ""
    typical = f"{median[0]:.4g} to {median[1]:.4g}"
    return [
        Finding(
            "intensity",
            "warning",
            f"{what}intensity range far from the typical {typical} (1st-99th percentile): "
            + _listing(outliers, lambda f: f"{f.p1:.4g} to {f.p99:.4g}"),
            files=tuple(f.key for f in outliers),
            patients=patients_of(outliers),
            details={
                "typical": [float(v) for v in median],
                "values": {f.key: [f.p1, f.p99] for f in outliers},
            },
        )
    ]
