"""Classification metrics: AUC, accuracy, sensitivity, specificity, PPV, NPV, F1, calibration.

Binary problems use the positive class's probability and a threshold; multi-class
problems use the arg-max and macro averages (AUC one-vs-rest); multi-label problems
average the per-label binary metrics.
"""

from __future__ import annotations

import numpy as np

__all__ = ["classification_metrics", "expected_calibration_error", "reliability"]


def _binary(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    tn = float(np.sum(~pred & (y == 0)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))

    def ratio(a, b):
        return a / b if b else float("nan")

    sens, spec = ratio(tp, tp + fn), ratio(tn, tn + fp)
    ppv, npv = ratio(tp, tp + fp), ratio(tn, tn + fn)
    both = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "accuracy": ratio(tp + tn, len(y)),
        "sensitivity": sens,
        "specificity": spec,
        "ppv": ppv,
        "npv": npv,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "balanced_accuracy": (sens + spec) / 2,
    }


def classification_metrics(
    y: np.ndarray, probs: np.ndarray, *, multilabel: bool = False, threshold: float = 0.5
) -> dict[str, float]:
    """Metrics of predicted probabilities `probs` ``(N, K)`` against targets `y`.

    `y` holds class indices ``(N,)``, or for multi-label problems a 0/1 matrix ``(N, K)``.
    `threshold` applies to the positive class of binary problems (and to every label of
    multi-label ones).
    """
    from sklearn.metrics import roc_auc_score

    probs = np.asarray(probs, float)
    y = np.asarray(y)
    if multilabel:
        per = [_binary(y[:, k], probs[:, k], threshold) for k in range(probs.shape[1])]
        out = {name: float(np.nanmean([m[name] for m in per])) for name in per[0]}
    elif probs.shape[1] == 2:
        out = _binary(y, probs[:, 1], threshold)
    else:
        pred = probs.argmax(1)
        per = [_binary((y == k).astype(int), (pred == k).astype(float), 0.5) for k in range(probs.shape[1])]
        out = {name: float(np.nanmean([m[name] for m in per])) for name in per[0]}
        out["accuracy"] = float(np.mean(pred == y))
        present = np.unique(y)
        try:
            out["auc"] = float(roc_auc_score(y, probs, multi_class="ovr", labels=np.arange(probs.shape[1])))
        except ValueError:  # a class missing from this (re)sample
            out["auc"] = float("nan") if len(present) < probs.shape[1] else out.get("auc", float("nan"))
    if not multilabel:
        out["ece"] = expected_calibration_error(y, probs)
    return out


def reliability(y: np.ndarray, probs: np.ndarray, *, bins: int = 10) -> dict[str, np.ndarray]:
    """Confidence and accuracy per confidence bin (of the predicted class), and bin counts."""
    probs = np.asarray(probs, float)
    confidence = probs.max(1)
    correct = (probs.argmax(1) == np.asarray(y)).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(which, confidence, bins) / counts
        acc = np.bincount(which, correct, bins) / counts
    return {"edges": edges, "confidence": conf, "accuracy": acc, "count": counts}


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, *, bins: int = 15) -> float:
    """ECE: the count-weighted gap between confidence and accuracy over confidence bins."""
    r = reliability(y, probs, bins=bins)
    used = r["count"] > 0
    gaps = np.abs(r["confidence"][used] - r["accuracy"][used])
    return float(np.sum(gaps * r["count"][used]) / np.sum(r["count"]))
