"""Evaluation of a classification bundle on one split of a dataset: metrics with patient-level CIs.

    result = evaluate_classifier("MODEL_DIR", "data/manifest.json", split="test")
    result["auc"], result["ci"]["auc"]          # point estimate, [low, high]
    write_evaluation(result, "eval/")           # metrics.json + predictions.csv

Binary problems are decided at the bundle's calibrated threshold (chosen on validation),
multi-class problems by arg-max with macro averages, multi-label problems per label and
averaged. Intervals are percentile bootstrap intervals that resample patients when every
sample names one (images of one patient are not independent), images otherwise; the
result says which in ``resampled``. Values that cannot be computed (AUC on a split with
one class) are ``None``.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from medsight.data import Manifest, load_dataset
from medsight.errors import FormatError, MedsightError
from medsight.io._atomic import atomic_path
from medsight.tasks.bootstrap import bootstrap_ci
from medsight.tasks.classify.metrics import classification_metrics, expected_calibration_error, reliability
from medsight.tasks.classify.targets import encode_targets

__all__ = [
    "METRICS",
    "evaluate_classifier",
    "evaluate_predictions",
    "prediction_arrays",
    "summary",
    "write_evaluation",
]

METRICS = ("auc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "balanced_accuracy", "ece")
RELIABILITY_BINS = 10


def json_number(value) -> float | None:
    """JSON-ready: NaN (undefined on this data) becomes None."""
    value = float(value)
    return value if np.isfinite(value) else None


def _metrics(y: np.ndarray, probs: np.ndarray, multilabel: bool, threshold: float) -> dict[str, float]:
    with warnings.catch_warnings():  # nanmean over labels undefined on a resample: NaN, skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        out = classification_metrics(y, probs, multilabel=multilabel, threshold=threshold)
    if multilabel:  # every label as a binary problem, pooled
        p = probs.ravel()
        out["ece"] = expected_calibration_error(y.ravel().astype(int), np.stack([1 - p, p], 1))
    return {name: out[name] for name in METRICS}


def _decisions(probs: np.ndarray, multilabel: bool, threshold: float) -> np.ndarray:
    """Class index per row (a 0/1 matrix for multi-label), as `Classifier.decide` decides."""
    if multilabel:
        return (probs >= threshold).astype(int)
    if probs.shape[1] == 2:
        return (probs[:, 1] >= threshold).astype(int)
    return probs.argmax(1)


def _confusion(y: np.ndarray, decided: np.ndarray, k: int, multilabel: bool) -> list:
    """Rows truth, columns prediction; multi-label: one ``[[tn, fp], [fn, tp]]`` per label."""
    if multilabel:
        return [
            [[int(np.sum((y[:, j] == t) & (decided[:, j] == d))) for d in (0, 1)] for t in (0, 1)]
            for j in range(k)
        ]
    matrix = np.zeros((k, k), int)
    np.add.at(matrix, (y, decided), 1)
    return matrix.tolist()


def _per_class(
    y: np.ndarray, probs: np.ndarray, classes: list[str], multilabel: bool, threshold: float
) -> dict[str, dict]:
    """One-vs-rest metrics of each class (multi-class: decided by arg-max, AUC from its probability)."""
    from sklearn.metrics import roc_auc_score

    decided = probs.argmax(1)
    out = {}
    for k, name in enumerate(classes):
        if multilabel:
            truth, p, t = y[:, k].astype(int), probs[:, k], threshold
        else:
            truth, p, t = (y == k).astype(int), (decided == k).astype(float), 0.5
        m = classification_metrics(truth, np.stack([1 - p, p], 1), threshold=t)
        if not multilabel:
            m["auc"] = roc_auc_score(truth, probs[:, k]) if len(np.unique(truth)) == 2 else float("nan")
        out[name] = {"n": int(truth.sum()), **{key: json_number(m[key]) for key in METRICS if key != "ece"}}
    return out


def evaluate_predictions(
    y,
    probs,
    *,
    classes: list[str],
    multilabel: bool = False,
    threshold: float = 0.5,
    groups=None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Metrics, bootstrap intervals, confusion matrix and calibration of predicted probabilities.

    Parameters
    ----------
    y : array
        Class indices ``(N,)``, or for multi-label problems a 0/1 matrix ``(N, K)``.
    probs : array ``(N, K)``
        Calibrated probabilities, columns in the order of `classes`.
    threshold : float
        Decision threshold on the positive class (``classes[1]``) of binary problems and on
        every label of multi-label ones; multi-class problems take the arg-max.
    groups : sequence, optional
        Patient of each row: the bootstrap resamples whole patients. None resamples rows.
    n_boot, seed, level
        Bootstrap resamples, their seed, and the interval's coverage.

    Returns
    -------
    dict
        Every name of `METRICS` as a number (None where undefined), ``ci`` mapping each to
        ``[low, high]``, ``confusion_matrix``, ``reliability`` (10 confidence bins),
        ``per_class`` (multi-class and multi-label), counts and the settings used.
    """
    y = np.asarray(y)
    probs = np.asarray(probs, float)
    k = len(classes)
    if probs.ndim != 2 or probs.shape != (len(y), k):
        raise FormatError(f"probabilities of shape {probs.shape} do not fit {len(y)} targets and {k} classes")
    if not len(y):
        raise FormatError("nothing to evaluate: no predictions")
    if groups is not None and len(groups) != len(y):
        raise FormatError(f"{len(groups)} patient ids for {len(y)} predictions")
    binary = k == 2 and not multilabel
    point = _metrics(y, probs, multilabel, threshold)
    intervals = (
        bootstrap_ci(
            lambda index: _metrics(y[index], probs[index], multilabel, threshold),
            len(y),
            groups=groups,
            n_boot=n_boot,
            level=level,
            seed=seed,
        )
        if n_boot
        else {}
    )
    if multilabel:
        flat = probs.ravel()
        curve = reliability(y.ravel().astype(int), np.stack([1 - flat, flat], 1), bins=RELIABILITY_BINS)
        counts = y.sum(0).astype(int).tolist()
    else:
        curve = reliability(y, probs, bins=RELIABILITY_BINS)
        counts = np.bincount(y, minlength=k).tolist()
    result = {name: json_number(point[name]) for name in METRICS}
    result.update(
        {
            "ci": {name: [json_number(lo), json_number(hi)] for name, (lo, hi) in intervals.items()},
            "level": level,
            "n_boot": n_boot,
            "seed": seed,
            "n": len(y),
            "n_patients": len(set(map(str, groups))) if groups is not None else None,
            "resampled": "patients" if groups is not None else "images",
            "classes": list(classes),
            "class_counts": dict(zip(classes, counts)),
            "multilabel": multilabel,
            "decision": "threshold" if binary or multilabel else "argmax",
            "threshold": threshold if binary or multilabel else None,
            "positive_class": classes[1] if binary else None,
            "confusion_matrix": _confusion(y, _decisions(probs, multilabel, threshold), k, multilabel),
            "reliability": {
                key: (values.tolist() if key == "count" else [json_number(v) for v in values])
                for key, values in curve.items()
            },
        }
    )
    if not binary:
        result["per_class"] = _per_class(y, probs, list(classes), multilabel, threshold)
    return result


def _split_samples(manifest: Manifest, split: str, where) -> list:
    samples = [s for s in manifest if s.split == split]
    if samples:
        return samples
    present = Counter(s.split for s in manifest if s.split)
    if not manifest.samples:
        raise FormatError("the dataset has no samples", path=where)
    if not present:
        raise FormatError(
            f"the dataset is not split, so it has no {split!r} split",
            path=where,
            hint="Split it first (medsight dataset split), or give a manifest with splits",
        )
    listed = ", ".join(f"{name} ({count})" for name, count in sorted(present.items()))
    raise FormatError(
        f"no samples in split {split!r}; the splits here are {listed}",
        path=where,
        hint="Choose one of them with --split",
    )


def _targets(samples: list, classes: list[str], multilabel: bool, where) -> np.ndarray:
    """Targets in the model's class order; clear errors for labels the model cannot score."""
    unlabelled = [s.key for s in samples if not s.labels]
    if unlabelled:
        raise FormatError(
            f"{len(unlabelled)} sample(s) to evaluate have no label, e.g. {', '.join(unlabelled[:3])}",
            path=where,
            hint="Label them, or evaluate a split whose samples all have labels",
        )
    unknown = sorted({label for s in samples for label in s.labels} - set(classes))
    if unknown:
        files = [s.key for s in samples if set(s.labels) & set(unknown)][:3]
        raise FormatError(
            f"label(s) {unknown} are not classes of the model ({', '.join(classes)}), e.g. in "
            f"{', '.join(files)}",
            path=where,
            hint="Evaluate on data labelled with the model's classes, or rename the labels",
        )
    if multilabel:
        return encode_targets(samples, classes, multilabel).astype(int)
    several = [s.key for s in samples if len(s.labels) > 1]
    if several:
        raise FormatError(
            f"{len(several)} sample(s) carry several labels, but the model is single-label, "
            f"e.g. {', '.join(several[:3])}",
            path=where,
            hint="Give each sample one label",
        )
    return encode_targets(samples, classes, multilabel).astype(int)


def evaluate_classifier(
    model: str | Path,
    data: str | Path | Manifest,
    *,
    split: str = "test",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    engine: str = "torch",
    device: str = "cpu",
    batch_size: int = 64,
    layout: str = "auto",
    progress=None,
) -> dict:
    """Predict one split of `data` with the bundle in `model`, then `evaluate_predictions`.

    Images are read, prepared with the bundle's plan and predicted `batch_size` at a time,
    so memory stays bounded whatever the split's size. `data` is a `Manifest` or anything
    `load_dataset` reads (in `layout`). `engine` is ``"torch"`` or ``"onnx"`` (after
    `medsight.infer.onnx.export_onnx`). `progress`, if given, is called as
    ``progress(done, total)`` after each batch.

    Returns
    -------
    dict
        What `evaluate_predictions` returns, plus ``split``, ``model``, ``data``, ``engine``,
        ``temperature``, ``notes`` and ``predictions`` (one row per image: path, patient,
        truth, prediction and ``p_<class>`` per class; see `write_evaluation`).
    """
    from medsight.infer.onnx import load_predictor
    from medsight.tasks.classify.preprocess import prepare

    predictor = load_predictor(model, engine=engine, device=device)
    predictor.batch_size = batch_size
    plan = predictor.bundle.plan
    manifest = data if isinstance(data, Manifest) else load_dataset(data, layout=layout)
    where = data if not isinstance(data, Manifest) else manifest.root
    samples = _split_samples(manifest, split, where)
    multilabel = bool(plan.get("multilabel"))
    y = _targets(samples, predictor.classes, multilabel, where)

    logits, problems = [], []
    for start in range(0, len(samples), batch_size):
        arrays = []
        for s in samples[start : start + batch_size]:
            try:
                arrays.append(prepare(manifest.load_image(s), plan["preprocess"]))
            except MedsightError as exc:
                problems.append(f"{s.key} ({exc.problem})")
        if arrays and not problems:  # once one image fails, read on only to name every failure
            logits.append(predictor.logits(np.stack(arrays)))
        if progress is not None:
            progress(min(start + batch_size, len(samples)), len(samples))
    if problems:
        raise FormatError(
            f"{len(problems)} image(s) of split {split!r} cannot be used: {'; '.join(problems[:5])}",
            path=where,
            hint="Fix or remove them (medsight qc lists every problem)",
        )
    probs = predictor.probabilities(np.concatenate(logits))

    notes = []
    patients = [s.patient_id for s in samples]
    groups = patients if all(patients) else None
    if groups is None:
        missing = sum(not p for p in patients)
        notes.append(
            f"{missing} of {len(samples)} samples have no patient_id: intervals resample images, "
            "which understates the uncertainty when patients contribute several images"
        )
    threshold = float(plan.get("calibration", {}).get("threshold", 0.5))
    result = evaluate_predictions(
        y,
        probs,
        classes=predictor.classes,
        multilabel=multilabel,
        threshold=threshold,
        groups=groups,
        n_boot=n_boot,
        seed=seed,
        level=level,
    )
    if result["auc"] is None:
        notes.append("AUC is undefined: the split does not hold every class")
    rows = []
    for s, p, decision in zip(samples, probs, predictor.decide(probs)):
        row = {
            "path": str(manifest.path(s.key)),
            "patient": s.patient_id or "",
            "truth": "|".join(s.labels),
            "prediction": "|".join(decision) if multilabel else decision,
        }
        row.update({f"p_{c}": round(float(v), 6) for c, v in zip(predictor.classes, p)})
        rows.append(row)
    result.update(
        split=split,
        model=str(model),
        data=str(where),
        engine=engine,
        temperature=float(plan.get("calibration", {}).get("temperature", 1.0)),
        notes=notes,
        predictions=rows,
    )
    return result


def summary(result: dict) -> dict:
    """The result without its per-image or per-case rows: what ``metrics.json`` and ``--json`` hold."""
    return {key: value for key, value in result.items() if key not in ("predictions", "cases")}


def prediction_arrays(result: dict) -> tuple[np.ndarray, np.ndarray]:
    """Targets and probabilities back from the result's rows, as `evaluate_predictions` takes them."""
    classes = result["classes"]
    index = {c: i for i, c in enumerate(classes)}
    rows = result["predictions"]
    probs = np.array([[row[f"p_{c}"] for c in classes] for row in rows], float).reshape(
        len(rows), len(classes)
    )
    if result["multilabel"]:
        y = np.zeros(probs.shape, int)
        for r, row in enumerate(rows):
            y[r, [index[label] for label in row["truth"].split("|") if label]] = 1
    else:
        y = np.array([index[row["truth"]] for row in rows], int)
    return y, probs


def write_evaluation(result: dict, folder: str | Path) -> list[Path]:
    """Write ``metrics.json`` and ``predictions.csv`` into `folder` (created), each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metrics_path, rows_path = folder / "metrics.json", folder / "predictions.csv"
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(summary(result), indent=2) + "\n", encoding="utf-8")
    rows = result["predictions"]
    buffer = io.StringIO()
    fields = ["path", "patient", "truth", "prediction", *(f"p_{c}" for c in result["classes"])]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(rows_path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return [metrics_path, rows_path]
