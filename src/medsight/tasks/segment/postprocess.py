"""Post-processing of predicted label maps, chosen on validation as nnU-Net does.

For each class, keeping only its largest connected component is tried on the validation
predictions; it becomes part of the plan for the classes whose mean Dice it improves.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_postprocessing", "choose_postprocessing", "dice_per_class", "keep_largest_component"]


def dice_per_class(predicted: np.ndarray, reference: np.ndarray, n_classes: int) -> list[float]:
    """Dice of label values 1..`n_classes`; NaN where both maps lack the class."""
    out = []
    for value in range(1, n_classes + 1):
        p, r = predicted == value, reference == value
        total = int(p.sum()) + int(r.sum())
        out.append(2 * int(np.logical_and(p, r).sum()) / total if total else float("nan"))
    return out


def keep_largest_component(labels: np.ndarray, value: int) -> np.ndarray:
    """`labels` with all but the largest connected component of `value` set to background."""
    from scipy import ndimage

    components, count = ndimage.label(labels == value)
    if count <= 1:
        return labels
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    out = labels.copy()
    out[(components != int(sizes.argmax())) & (components > 0)] = 0
    return out


def apply_postprocessing(labels: np.ndarray, spec: dict | None) -> np.ndarray:
    """Apply the plan's ``postprocess`` section (``{"largest_component": [values]}``)."""
    for value in (spec or {}).get("largest_component", []):
        labels = keep_largest_component(labels, int(value))
    return labels


def choose_postprocessing(predicted: list, references: list, n_classes: int) -> dict:
    """Which classes gain (mean validation Dice) from keeping their largest component only."""
    before = np.array([dice_per_class(p, r, n_classes) for p, r in zip(predicted, references)])
    chosen = []
    after = before.copy()
    for value in range(1, n_classes + 1):
        trial = np.array(
            [
                dice_per_class(keep_largest_component(p, value), r, n_classes)[value - 1]
                for p, r in zip(predicted, references)
            ]
        )
        if np.nanmean(trial) > np.nanmean(before[:, value - 1]) + 1e-4:
            chosen.append(value)
            after[:, value - 1] = trial

    def mean(column):
        return round(float(np.nanmean(column)), 4) if np.isfinite(column).any() else None

    return {
        "plan": {"largest_component": chosen},
        "dice_before": [mean(before[:, k]) for k in range(n_classes)],
        "dice_after": [mean(after[:, k]) for k in range(n_classes)],
    }
