"""Data quality checks: `check_quality(data) -> Report` over any dataset `load_dataset` reads.

Each sample is read once (image, mask, field-of-view mask) by a few threads; what the
checks need is kept (shape, spacing, orientation, value range and percentiles, hashes)
and the voxels are dropped, so memory stays bounded. Then the checks run on those facts:

================  ===========  ==========================================================
check             severity     finds
================  ===========  ==========================================================
unreadable        error        files a reader refuses, each with the reader's reason
duplicate         error        identical decoded pixels in two splits (leakage)
                  warning      ... within one split (or without splits)
near_duplicate    error        perceptual hashes within ``near_duplicate_bits`` of 256,
                               across splits; warning within one split
patient_leakage   error        a patient_id in more than one split
grid              error        a mask, field-of-view mask or channel file not on the
                               grid of the sample's image
empty_mask        warning      masks without a labelled voxel (one finding, with the count)
label_set         error        labels outside ``classes``, mask values outside
                               ``label_names``, non-integer masks
box_bounds        error        boxes outside their image
geometry          warning      spacing or size far from the typical (robust: median, MAD),
                               an orientation other than the usual one; info when mixed
ct_units          error        CT not in Hounsfield units: no negative value, or a 1st-99th
                               percentile spread under 20 (normalised)
                  warning      CT whose air is not near -1000 HU: the darkest voxels
                               (padding aside) below -1100 (intercept applied twice), or
                               padding around the scan but nothing inside below -850
intensity         error        NaN or infinite voxels
                  warning      constant images; value range far from comparable images'
                               (same modality, dimension, channels), in 1st-99th
                               percentiles and in min-max both
class_balance     info         class counts, overall and per split
                  warning      imbalance, declared classes without samples, a class
                               absent from a split
missing           warning      no patient_id at all (no patient-level splits), or fields
                               and attributes present on some samples but not others
================  ===========  ==========================================================

Why CT not in HU is an error while other intensity outliers are warnings: every HU-based
step (windows, thresholds, the plan's normalisation) is silently wrong on such a CT, while
an MR or photograph with an unusual range may be legitimate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path

from medsight.audit._qc_balance import check_class_balance, check_missing
from medsight.audit._qc_checks import (
    check_box_bounds,
    check_duplicate,
    check_empty_mask,
    check_grid,
    check_label_set,
    check_near_duplicate,
    check_patient_leakage,
    check_unreadable,
)
from medsight.audit._qc_outliers import check_ct_units, check_geometry, check_intensity
from medsight.audit._qc_report import FAIL_ON, SEVERITIES, Finding, Report
from medsight.audit._qc_scan import Facts, scan
from medsight.data.manifest import Manifest

__all__ = ["CHECKS", "FAIL_ON", "SEVERITIES", "Finding", "Report", "Thresholds", "check_quality"]


@dataclass(frozen=True)
class Thresholds:
    """Where the checks draw their lines.

    Parameters
    ----------
    near_duplicate_bits : int
        Largest Hamming distance (of 256 perceptual-hash bits) for a near duplicate. JPEG
        re-encoding, halving the size or mild noise move a hash by 0-6 bits; distinct
        fundus photographs (DRIVE) stay 18 or more apart.
    outlier_ratio : float
        Spacing or size (per axis) must differ from the median by at least this factor...
    outlier_z : float
        ... and by this many robust standard deviations (of the logarithm) to be an outlier.
    orientation_majority : float
        Share the most common orientation needs for the others to be flagged.
    intensity_z : float
        Robust standard deviations of the 1st or 99th percentile for an intensity outlier...
    intensity_floor : float
        ... where the standard deviation counts as at least this share of the typical range.
    min_group : int
        Fewest comparable images for outlier statistics.
    imbalance_ratio : float
        Largest over smallest class count above which classes are imbalanced.
    minority_share : float
        Smallest class's share of samples below which classes are imbalanced (two classes;
        scaled by 2 / K for K classes).
    """

    near_duplicate_bits: int = 10
    outlier_ratio: float = 2.0
    outlier_z: float = 5.0
    orientation_majority: float = 0.8
    intensity_z: float = 5.0
    intensity_floor: float = 0.1
    min_group: int = 8
    imbalance_ratio: float = 10.0
    minority_share: float = 0.1


Check = Callable[[list[Facts], Manifest, Thresholds], list[Finding]]

# In report order.
CHECKS: dict[str, Check] = {
    "unreadable": check_unreadable,
    "duplicate": check_duplicate,
    "near_duplicate": check_near_duplicate,
    "patient_leakage": check_patient_leakage,
    "grid": check_grid,
    "empty_mask": check_empty_mask,
    "label_set": check_label_set,
    "box_bounds": check_box_bounds,
    "geometry": check_geometry,
    "ct_units": check_ct_units,
    "intensity": check_intensity,
    "class_balance": check_class_balance,
    "missing": check_missing,
}


def check_quality(
    data: str | os.PathLike | Manifest,
    *,
    thresholds: Thresholds | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Run every quality check on a dataset.

    Parameters
    ----------
    data : path or Manifest
        A manifest (``.json``/``.csv``) or any layout `medsight.data.load_dataset` reads.
    thresholds : Thresholds, optional
        Where the checks draw their lines; the defaults are documented on `Thresholds`.
    workers : int, optional
        Threads reading samples; by default up to 4, no more than the CPUs. Each holds one
        sample's voxels at a time.
    progress : callable, optional
        Called as ``progress(done, total)`` after each sample is read.

    Returns
    -------
    Report
        Findings (errors first) with summary counts, the thresholds and timings.
    """
    if isinstance(data, Manifest):
        manifest, source = data, data.source or data.name or str(data.root)
    else:
        from medsight.data import load_dataset

        manifest, source = load_dataset(data), str(data)
    thresholds = thresholds or Thresholds()
    workers = workers or min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    clock = time.perf_counter()
    facts = _scan_all(manifest, workers, progress)
    seconds = {"scan": time.perf_counter() - clock}
    for phase in ("read", "stats", "hash", "mask"):
        seconds[f"scan_{phase}"] = sum(f.seconds.get(phase, 0.0) for f in facts)
    findings = []
    for name, check in CHECKS.items():
        clock = time.perf_counter()
        findings += check(facts, manifest, thresholds)
        seconds[name] = time.perf_counter() - clock
    return Report(
        data=source,
        root=str(Path(manifest.root).resolve()),
        n_samples=len(facts),
        n_readable=sum(f.readable for f in facts),
        findings=findings,
        checks=list(CHECKS),
        thresholds=asdict(thresholds),
        seconds=seconds,
    )


def _scan_all(manifest: Manifest, workers: int, progress) -> list[Facts]:
    total = len(manifest.samples)
    if progress:
        progress(0, total)
    if workers <= 1 or total < 2:
        results = map(scan, repeat(manifest), manifest.samples, range(total))
        return [_tick(f, n, total, progress) for n, f in enumerate(results, 1)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medsight-qc") as pool:
        results = pool.map(scan, repeat(manifest), manifest.samples, range(total))
        return [_tick(f, n, total, progress) for n, f in enumerate(results, 1)]


def _tick(facts: Facts, done: int, total: int, progress) -> Facts:
    if progress:
        progress(done, total)
    return facts
