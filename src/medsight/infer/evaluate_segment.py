"""Evaluation of segmentations against reference label maps, per case and class, with case-level CIs.

    cases = [SegmentationCase("c01", prediction, reference, patient_id="p01"), ...]
    result = evaluate_segmentations(cases, class_names=["background", "liver", "tumour"])
    result["dice"], result["per_class"]["liver"]["hd95_mm"], result["ci"]["dice"]
    write_segment_evaluation(result, "eval/")      # metrics.json + per_case.csv

Each case is scored with `medsight.tasks.segment.metrics.segmentation_metrics` (its notes define
the metrics and the empty-mask cases). Summaries are means over cases of the values that are
defined; distances are undefined when one mask is empty, and ``per_class`` counts those cases.
``f1_pooled`` is the Dice of all voxels pooled over cases (what DRIVE papers call F1), and
``auc`` the pooled pixel-level AUC of binary tasks whose cases carry a foreground probability
map, both inside the field of view when one is given. Intervals are percentile bootstrap
intervals that resample patients when every case names one, cases otherwise (``resampled``).
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import FormatError, GeometryError
from medsight.image import Image
from medsight.infer.evaluate import json_number, summary
from medsight.io._atomic import atomic_path
from medsight.tasks.bootstrap import bootstrap_ci
from medsight.tasks.segment.metrics import histogram_auc, score_histogram, segmentation_metrics

__all__ = ["SegmentationCase", "evaluate_segmentations", "write_segment_evaluation"]

_BOOT_BINS = 4096  # AUC histogram bins kept per case for the bootstrap (the point estimate uses all)


@dataclass(frozen=True)
class SegmentationCase:
    """One case to score: a predicted and a reference label map on the same grid.

    ``fov`` (non-zero inside the field of view) and ``probability`` (foreground probability,
    one channel, or two with the foreground second) are optional and must share that grid.
    """

    key: str
    prediction: Image
    reference: Image
    patient_id: str | None = None
    fov: Image | None = None
    probability: Image | None = None


def _grid(image: Image) -> str:
    spacing = ", ".join(f"{s:.4g}" for s in image.spacing)
    origin = ", ".join(f"{o:.4g}" for o in image.origin)
    return f"shape {image.spatial_shape}, spacing ({spacing}) mm, origin ({origin}) mm"


def _plane(case: SegmentationCase, image: Image, what: str, channels: tuple[int, ...] = (1,)) -> np.ndarray:
    """The spatial array of `image` after checking its grid against the case's reference."""
    if not image.same_grid(case.reference):
        raise GeometryError(
            f"case {case.key}: the {what} lies on another grid ({_grid(image)}) than the reference "
            f"({_grid(case.reference)})",
            hint=f"Resample the {what} onto the reference grid first (Image.resample(like=reference))",
        )
    if image.num_channels not in channels:
        raise FormatError(
            f"case {case.key}: the {what} has {image.num_channels} channels, expected {channels}"
        )
    return image.array[-1]


def _score_case(
    case: SegmentationCase, n_classes: int, tolerance_mm: float
) -> tuple[dict, np.ndarray | None]:
    """Metrics of every foreground class of one case, and its AUC histogram (None without one)."""
    pred = _plane(case, case.prediction, "prediction")
    ref = _plane(case, case.reference, "reference")
    fov = None if case.fov is None else _plane(case, case.fov, "field-of-view mask")
    for what, array in (("prediction", pred), ("reference", ref)):
        if array.size and array.max() >= n_classes:
            extra = np.unique(array[array >= n_classes])
            raise FormatError(
                f"case {case.key}: the {what} holds label(s) {extra[:5].tolist()} outside the "
                f"{n_classes} declared classes (0 to {n_classes - 1})",
                hint="Declare every class, or relabel the map",
            )
    try:
        rows = segmentation_metrics(
            pred,
            ref,
            spacing=case.reference.spacing,
            labels=range(1, n_classes),
            tolerance_mm=tolerance_mm,
            fov=fov,
        )
        histogram = None
        if case.probability is not None and n_classes == 2:
            prob = _plane(case, case.probability, "probability map", channels=(1, 2))
            histogram = score_histogram(prob, ref, fov=fov)
    except FormatError as exc:
        if exc.problem.startswith(f"case {case.key}:"):
            raise
        raise FormatError(f"case {case.key}: {exc.problem}", hint=exc.hint) from exc
    return rows, histogram


def _statistic(
    values: np.ndarray,
    counts: np.ndarray,
    coarse: np.ndarray | None,
    metrics: list[str],
    foreground: list[str],
) -> Callable[[np.ndarray], dict]:
    """The summaries of the cases in an index array, as `bootstrap_ci` resamples them.

    `values` is (case, class, metric), `counts` (case, class, [overlap, predicted, reference])
    voxels, `coarse` (case, AUC histogram bins) or None.
    """

    def statistic(index: np.ndarray) -> dict:
        with warnings.catch_warnings():  # a metric undefined on every resampled case: NaN, skipped
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(values[index], axis=0)
        pooled = counts[index].sum(0)
        f1 = 2 * pooled[:, 0] / np.maximum(pooled[:, 1] + pooled[:, 2], 1)
        f1[pooled[:, 1] + pooled[:, 2] == 0] = 1.0  # no voxel of the class anywhere: both empty
        out = {"dice": float(values[index, :, 0].mean()), "f1_pooled": float(f1.mean())}
        if coarse is not None:
            hist = np.bincount(index, minlength=len(values)) @ coarse
            out["auc"] = histogram_auc(hist.reshape(2, _BOOT_BINS))[0]
        for c, name in enumerate(foreground):
            out.update({(name, m): means[c, j] for j, m in enumerate(metrics)})
            out[(name, "f1_pooled")] = f1[c]
        return out

    return statistic


def evaluate_segmentations(
    cases: Iterable[SegmentationCase],
    *,
    class_names: Sequence[str],
    tolerance_mm: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Score predicted label maps against references: per case, per class, summaries and CIs.

    Parameters
    ----------
    cases : iterable of SegmentationCase
        Read one at a time (a generator keeps only one case in memory).
    class_names : sequence of str
        Name of each label value, background (label 0) first; a binary task has two.
    tolerance_mm : float
        Tolerance of the normalised surface distance, in mm.
    n_boot, seed, level
        Bootstrap resamples (0: no intervals), their seed, and the intervals' coverage.
    progress : callable, optional
        Called with the number of cases scored so far after each case.

    Returns
    -------
    dict
        JSON-ready: ``dice`` (mean foreground Dice over cases and classes), ``f1_pooled``,
        ``auc`` (None unless binary with probability maps), ``per_class`` ({name: {metric: mean,
        ``n_*`` counts}}), ``ci`` (``[low, high]`` of ``dice``, ``f1_pooled``, ``auc`` and, under
        ``per_class``, of each class's metrics), ``cases`` (one row per case and class; see
        `write_segment_evaluation`), counts, settings and ``notes``. Undefined values are None.
    """
    names = [str(n) for n in class_names]
    if len(names) < 2:
        raise FormatError(f"need the background and at least one class, got class names {names}")
    foreground = names[1:]
    keys, patients, scores, ndims = [], [], [], set()
    fine, coarse = None, []  # pooled AUC histogram, and a coarse one per case for the bootstrap
    with_probability = None
    for case in cases:
        if with_probability is None:
            with_probability = case.probability is not None
        elif with_probability != (case.probability is not None):
            raise FormatError(
                f"case {case.key}: some cases have a probability map and others not; "
                "the pooled AUC needs all or none",
                hint="Give a probability map with every case, or with none",
            )
        rows, histogram = _score_case(case, len(names), tolerance_mm)
        keys.append(str(case.key))
        patients.append(case.patient_id)
        scores.append([rows[label] for label in range(1, len(names))])
        ndims.add(case.reference.ndim)
        if histogram is not None:
            scores[-1][0]["auc"] = histogram_auc(histogram)[0]
            fine = histogram if fine is None else fine + histogram
            coarse.append(histogram.reshape(2, _BOOT_BINS, -1).sum(-1).ravel())
        if progress is not None:
            progress(len(keys))
    if not keys:
        raise FormatError("nothing to evaluate: no cases")
    if len(ndims) > 1:
        raise FormatError("the cases mix 2D and 3D label maps; evaluate them separately")
    size = "volume" if ndims == {3} else "area"
    unit = "ml" if size == "volume" else "mm2"
    metrics = ["dice", "iou", "hd95_mm", "assd_mm", "nsd", f"{size}_diff_{unit}", f"{size}_diff_pct"]
    values = np.array([[[row[m] for m in metrics] for row in case] for case in scores], float)
    values = np.concatenate([values, np.abs(values[..., -1:])], axis=-1)  # absolute relative error
    metrics.append(f"{size}_abs_diff_pct")
    counts = np.array([[[row["n_overlap"], row["n_pred"], row["n_ref"]] for row in case] for case in scores])

    notes = []
    if with_probability and len(names) > 2:
        notes.append("probability maps were given, but the pixel AUC applies to binary tasks only")
    coarse = np.stack(coarse) if fine is not None else None
    groups = patients if all(patients) else None
    if groups is None:
        notes.append(
            f"{sum(not p for p in patients)} of {len(keys)} cases have no patient_id: intervals resample "
            "cases, which understates the uncertainty when patients contribute several cases"
        )

    statistic = _statistic(values, counts, coarse, metrics, foreground)
    point = statistic(np.arange(len(keys)))
    if fine is not None:
        point["auc"] = histogram_auc(fine)[0]
    intervals = (
        bootstrap_ci(statistic, len(keys), groups=groups, n_boot=n_boot, level=level, seed=seed)
        if n_boot
        else {}
    )

    def interval(key) -> list:
        low, high = intervals[key]
        return [json_number(low), json_number(high)]

    per_class, ci_class = {}, {}
    for c, name in enumerate(foreground):
        n_pred, n_ref = counts[:, c, 1], counts[:, c, 2]
        per_class[name] = {m: json_number(point[(name, m)]) for m in [*metrics, "f1_pooled"]}
        per_class[name].update(
            n_empty_reference=int(np.sum((n_ref == 0) & (n_pred > 0))),
            n_empty_prediction=int(np.sum((n_pred == 0) & (n_ref > 0))),
            n_both_empty=int(np.sum((n_pred == 0) & (n_ref == 0))),
            n_distance_undefined=int(np.isnan(values[:, c, 2]).sum()),
        )
        if intervals:
            ci_class[name] = {m: interval((name, m)) for m in [*metrics, "f1_pooled"]}
    top = ["dice", "f1_pooled", *(["auc"] if "auc" in point else [])]
    return {
        "dice": json_number(point["dice"]),
        "auc": json_number(point["auc"]) if "auc" in point else None,
        "f1_pooled": json_number(point["f1_pooled"]),
        "per_class": per_class,
        "ci": ({name: interval(name) for name in top} | {"per_class": ci_class}) if intervals else {},
        "level": level,
        "n_boot": n_boot,
        "seed": seed,
        "n_cases": len(keys),
        "n_patients": len(set(groups)) if groups is not None else None,
        "resampled": "patients" if groups is not None else "cases",
        "classes": names,
        "ndim": ndims.pop(),
        "tolerance_mm": tolerance_mm,
        "notes": notes,
        "cases": [
            {"key": key, "patient": patient or "", "class": name, "label": c + 1}
            | {m: _rounded(value) for m, value in case[c].items()}
            for key, patient, case in zip(keys, patients, scores)
            for c, name in enumerate(foreground)
        ],
    }


def _rounded(value):
    """CSV- and JSON-ready: integers kept, floats to 6 decimals, NaN as None."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = json_number(value)
    return None if value is None else round(value, 6)


def write_segment_evaluation(result: dict, folder: str | Path) -> list[Path]:
    """Write ``metrics.json`` (`summary`) and ``per_case.csv`` into `folder`, each atomically.

    ``per_case.csv`` has one row per case and foreground class: ``key``, ``patient``, ``class``,
    ``label``, then every value `segmentation_metrics` gives (distances in mm, sizes in mL or
    mm^2, voxel counts), and ``auc`` for binary tasks with probability maps. Empty cells are
    undefined values.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metrics_path, rows_path = folder / "metrics.json", folder / "per_case.csv"
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(summary(result), indent=2) + "\n", encoding="utf-8")
    rows = result["cases"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(rows_path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return [metrics_path, rows_path]
