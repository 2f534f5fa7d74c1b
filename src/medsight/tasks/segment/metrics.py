"""Segmentation metrics per case and class: overlap, surface distances in mm, sizes, pixel AUC.

    rows = segmentation_metrics(pred, ref, spacing=(0.8, 0.8, 5.0), labels=[1, 2], tolerance_mm=1.0)
    rows[1]["dice"], rows[1]["hd95_mm"], rows[1]["volume_diff_ml"]

Definitions (those of MONAI's ``compute_hausdorff_distance``, ``compute_average_surface_distance``
with ``symmetric=True`` and ``compute_surface_dice``, which the tests check against):

- The *surface* of a mask is its voxels with a background neighbour along an axis (the mask minus
  its erosion by the cross-shaped element; the image border counts as background). Distances are
  Euclidean between voxel centres in mm, exact (a KD-tree over surface voxels, scaled by the
  spacing, so anisotropic grids are exact too).
- HD95: the larger of the two directed 95th percentiles (linear interpolation) of the distances
  from each surface voxel of one mask to the other's surface. ASSD: the mean of both directed
  distance sets pooled. NSD (surface Dice): the fraction of surface voxels of both masks that lie
  within `tolerance_mm` of the other's surface (plus 1e-6 mm, so a tolerance equal to a multiple
  of the spacing is not lost to rounding).
- Sizes are voxel counts times the voxel volume: ``volume_*_ml`` for 3D images, ``area_*_mm2``
  for 2D ones. Differences are prediction minus reference, ``*_diff_pct`` in % of the reference.

Edge cases, decided here once:

- Both masks empty: Dice and IoU 1, distances 0, NSD 1, size differences 0 (also in %).
- One mask empty: Dice and IoU 0, distances NaN (undefined; JSON ``null``), NSD 0, relative size
  difference NaN when the reference is the empty one.

With a field-of-view mask `fov`, voxels outside it count as background in both maps, so nothing
outside it changes any metric. (Keeping the whole masks' surfaces inside the field of view, as
MONAI's ``mask`` does, would not: a prediction zeroed outside the field of view would gain a
boundary along its border wherever the reference crosses it. Here both are cut there alike.)

Pixel AUC is computed from histograms of the logit of the foreground probability (2^20 bins over
logits -40 to 40), so cases can be pooled without holding every voxel; pairs of voxels falling in
the same bin count as ties, and `histogram_auc` returns the largest error this can cause, which is
far below 1e-3 on real probability maps (the tests compare with scikit-learn's exact AUC).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medsight.errors import FormatError, MedsightError

__all__ = [
    "AUC_BINS",
    "histogram_auc",
    "pixel_auc",
    "score_histogram",
    "segmentation_metrics",
    "surface_distances",
]

AUC_BINS = 1 << 20
_LOGIT_RANGE = 40.0  # |logit| beyond this (p < 4e-18 or 1 - p < 4e-18) falls in the end bins
_SLACK_MM = 1e-6


def _crop(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of `mask` grown by one voxel (clipped to the image); None when it is empty."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if not len(hit):
            return None
        box.append(slice(max(hit[0] - 1, 0), hit[-1] + 2))
    return tuple(box)


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    return mask & ~binary_erosion(mask, border_value=0)


def surface_distances(
    pred: np.ndarray, ref: np.ndarray, *, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each surface voxel of `pred` to the surface of `ref`, and back.

    Parameters
    ----------
    pred, ref : bool arrays, shape (I, J[, K])
        The two masks.
    spacing : sequence of float
        Voxel size in mm along each axis.

    Returns
    -------
    (ndarray, ndarray)
        Float64 distances of `pred`'s surface voxels to `ref`'s surface, and of `ref`'s to
        `pred`'s. An array is empty when its own surface is; it is all ``inf`` when only the
        other surface is empty.
    """
    from scipy.spatial import KDTree

    # Surfaces only depend on a voxel's direct neighbours, so a box one voxel larger than
    # everything that can count gives the same surfaces as the whole image, much faster.
    box = _crop(pred | ref)
    if box is None:
        return np.zeros(0), np.zeros(0)
    a, b = (np.argwhere(_surface(mask[box])) * np.asarray(spacing, float) for mask in (pred, ref))
    if not len(a) or not len(b):
        return np.full(len(a), np.inf), np.full(len(b), np.inf)
    # leafsize 32: one batched query per tree, so a shallower tree is faster to build
    return KDTree(b, leafsize=32).query(a)[0], KDTree(a, leafsize=32).query(b)[0]


_BOTH_EMPTY = {"hd95_mm": 0.0, "assd_mm": 0.0, "nsd": 1.0}
_ONE_EMPTY = {"hd95_mm": float("nan"), "assd_mm": float("nan"), "nsd": 0.0}


def _distance_metrics(to_ref: np.ndarray, to_pred: np.ndarray, tolerance_mm: float) -> dict[str, float]:
    if not len(to_ref) and not len(to_pred):
        return dict(_BOTH_EMPTY)
    if not len(to_ref) or not len(to_pred):
        return dict(_ONE_EMPTY)
    within = np.count_nonzero(to_ref <= tolerance_mm + _SLACK_MM) + np.count_nonzero(
        to_pred <= tolerance_mm + _SLACK_MM
    )
    return {
        "hd95_mm": float(max(np.percentile(to_ref, 95), np.percentile(to_pred, 95))),
        "assd_mm": float((to_ref.sum() + to_pred.sum()) / (len(to_ref) + len(to_pred))),
        "nsd": within / (len(to_ref) + len(to_pred)),
    }


def _labels(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        raise FormatError(f"the {what} label map holds non-integer values", hint="Give integer class labels")
    if array.dtype.kind not in "biuf":
        raise FormatError(f"the {what} label map has dtype {array.dtype}, not integers")
    array = array.astype(np.int64, copy=False)
    if array.size and array.min() < 0:
        raise FormatError(f"the {what} label map holds negative labels ({int(array.min())})")
    return array


def segmentation_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    spacing: Sequence[float],
    labels: Sequence[int] | None = None,
    tolerance_mm: float = 1.0,
    fov: np.ndarray | None = None,
) -> dict[int, dict[str, float]]:
    """Overlap, surface distance and size metrics of each label, prediction against reference.

    Parameters
    ----------
    pred, ref : int arrays, shape (I, J) or (I, J, K)
        Label maps on the same grid (0 is background).
    spacing : sequence of float
        Voxel size in mm along each axis.
    labels : sequence of int, optional
        Labels to score; by default every non-zero label in either map.
    tolerance_mm : float
        Tolerance of the normalised surface distance, in mm.
    fov : array, optional
        Field of view (non-zero inside), same shape: voxels outside count as background.

    Returns
    -------
    dict
        ``{label: {name: value}}`` with ``dice``, ``iou``, ``hd95_mm``, ``assd_mm``, ``nsd``,
        sizes (``volume_pred_ml``, ``volume_ref_ml``, ``volume_diff_ml``, ``volume_diff_pct`` in 3D;
        ``area_pred_mm2``, ..., ``area_diff_pct`` in 2D; differences are prediction minus
        reference, relative ones in % of the reference) and voxel counts
        ``n_pred``, ``n_ref``, ``n_overlap`` (inside the field of view). NaN where undefined.
    """
    if not tolerance_mm >= 0:
        raise MedsightError(f"the surface distance tolerance must be 0 mm or more, not {tolerance_mm}")
    pred, ref = _labels(pred, "predicted"), _labels(ref, "reference")
    if pred.shape != ref.shape or pred.ndim not in (2, 3) or len(spacing) != pred.ndim:
        raise FormatError(
            f"label maps of shapes {pred.shape} and {ref.shape} with spacing {tuple(spacing)}: "
            "need two 2D or 3D maps of one shape and a spacing per axis"
        )
    if fov is not None:
        fov = np.asarray(fov) != 0
        if fov.shape != pred.shape:
            raise FormatError(f"field-of-view mask of shape {fov.shape} for label maps of shape {pred.shape}")
        pred, ref = np.where(fov, pred, 0), np.where(fov, ref, 0)
    # One pass over the voxels gives every label's overlap counts.
    k = int(max(pred.max(initial=0), ref.max(initial=0))) + 1
    counts = np.bincount((ref * k + pred).ravel(), minlength=k * k).reshape(k, k)
    if labels is None:
        labels = [c for c in range(1, k) if counts[c].sum() or counts[:, c].sum()]
    size, unit, scale = ("volume", "ml", 1e-3) if pred.ndim == 3 else ("area", "mm2", 1.0)
    voxel = float(np.prod(spacing)) * scale
    out = {}
    for label in map(int, labels):
        if 0 <= label < k:
            n_overlap, n_pred, n_ref = (
                int(counts[label, label]),
                int(counts[:, label].sum()),
                int(counts[label].sum()),
            )
        else:
            n_overlap = n_pred = n_ref = 0
        union = n_pred + n_ref - n_overlap
        row = {
            "dice": 2 * n_overlap / (n_pred + n_ref) if union else 1.0,
            "iou": n_overlap / union if union else 1.0,
        }
        if n_pred and n_ref:
            distances = surface_distances(pred == label, ref == label, spacing=spacing)
            row.update(_distance_metrics(*distances, tolerance_mm))
        else:
            row.update(_ONE_EMPTY if union else _BOTH_EMPTY)
        row.update(
            {
                f"{size}_pred_{unit}": n_pred * voxel,
                f"{size}_ref_{unit}": n_ref * voxel,
                f"{size}_diff_{unit}": (n_pred - n_ref) * voxel,
                f"{size}_diff_pct": 100 * (n_pred - n_ref) / n_ref
                if n_ref
                else 0.0
                if not n_pred
                else np.nan,
                "n_pred": n_pred,
                "n_ref": n_ref,
                "n_overlap": n_overlap,
            }
        )
        out[label] = row
    return out


def _probabilities(prob: np.ndarray) -> np.ndarray:
    prob = np.asarray(prob, dtype=np.float64)
    if prob.size and not (np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1):
        raise FormatError(
            f"foreground probabilities must lie in [0, 1], not {prob.min():.3g} to {prob.max():.3g}",
            hint="Give probabilities (after sigmoid or softmax), not logits",
        )
    return prob


def score_histogram(prob: np.ndarray, truth: np.ndarray, *, fov: np.ndarray | None = None) -> np.ndarray:
    """Counts of background and foreground voxels per bin of predicted foreground probability.

    Parameters
    ----------
    prob : float array
        Foreground probability of each voxel, in [0, 1].
    truth : array, same shape
        Reference: non-zero is foreground.
    fov : array, optional
        Field of view (non-zero inside): only voxels inside it are counted.

    Returns
    -------
    ndarray, shape (2, AUC_BINS), int64
        Row 0 counts background voxels, row 1 foreground ones. Histograms of several cases add
        up to the histogram of the pooled voxels.
    """
    prob = np.asarray(prob)
    truth = np.asarray(truth)
    if prob.shape != truth.shape or (fov is not None and np.shape(fov) != prob.shape):
        raise FormatError(f"probabilities of shape {prob.shape} do not match the reference {truth.shape}")
    if fov is not None:
        fov = np.asarray(fov) != 0
        prob, truth = prob[fov], truth[fov]
    prob = _probabilities(prob).ravel()
    # Bins on the logit scale resolve saturated probabilities (1e-9 against 1e-6) that bins
    # on [0, 1] would merge; p = 0 and 1 give infinite logits, clipped into the end bins.
    with np.errstate(divide="ignore"):
        logit = np.log(prob) - np.log1p(-prob)
    width = 2 * _LOGIT_RANGE / AUC_BINS
    index = np.clip(np.floor((logit + _LOGIT_RANGE) / width), 0, AUC_BINS - 1).astype(np.int64)
    index += (truth.ravel() != 0) * AUC_BINS
    return np.bincount(index, minlength=2 * AUC_BINS).reshape(2, AUC_BINS)


def histogram_auc(histogram: np.ndarray) -> tuple[float, float]:
    """Area under the ROC curve from a `score_histogram` (or coarser sums of its bins).

    Returns
    -------
    (float, float)
        The AUC, counting pairs of voxels in one bin as ties (as tied scores count), and the
        largest possible difference from the exact AUC of the underlying probabilities. Both
        NaN when either class is absent.
    """
    negative, positive = (np.asarray(row, np.float64) for row in histogram)
    pairs = negative.sum() * positive.sum()
    if not pairs:
        return float("nan"), float("nan")
    below = np.cumsum(negative) - negative  # background voxels in lower bins
    same_bin = float(positive @ negative)
    return float((positive @ below + 0.5 * same_bin) / pairs), 0.5 * same_bin / pairs


def pixel_auc(prob: np.ndarray, truth: np.ndarray, *, fov: np.ndarray | None = None) -> float:
    """Pixel-level AUC of a foreground probability map against a reference, inside `fov`."""
    return histogram_auc(score_histogram(prob, truth, fov=fov))[0]
