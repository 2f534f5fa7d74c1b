"""Detection metrics as the field computes them: COCO AP and mAP, LUNA16 FROC, with bootstrap CIs.

**AP (COCO).** Per image and class, detections are sorted by score (at most
``max_detections`` kept) and matched greedily: each takes the unmatched reference box of its
class with the highest IoU at or above the threshold. Over all images the matched flags are
ranked by score; precision is made monotone (its upper envelope) and read at the 101 recall
points 0, 0.01, ..., 1 (0 past the highest recall reached); AP is their mean. A class with
reference boxes but no detection has AP 0; a class with no reference box is left out.
``ap50`` is the mean over classes at IoU 0.5, ``map`` the mean over classes and the IoU
thresholds 0.50, 0.55, ..., 0.95 (pycocotools' ``AP`` and ``AP50`` with area "all" and 100
detections per image; the tests check the figures against pycocotools).

**FROC (LUNA16).** A detection *hits* a reference box of its class when its centre lies in
that box (``hit="centre"``, the box analogue of LUNA16's "within the nodule's radius of its
centre"), or, with ``hit="iou"``, when their IoU is at least ``hit_iou`` (0.1, as MONAI's
LUNA16 tutorial and nnDetection use). Each reference counts once, at the score of the best
detection that hits it; further detections on a reference are neither true nor false
positives; a detection that hits nothing is a false positive. Sweeping the score threshold
gives sensitivity against false positives per image (over every image, true negatives
included); sensitivity is read off that curve, linearly interpolated as LUNA16's script
does, at 1/8, 1/4, 1/2, 1, 2, 4 and 8 false positives per image, and ``froc_mean`` is the
mean of the seven. All classes are pooled in one FROC.

**Intervals.** Percentile bootstrap over images, or over patients when every image names one
(`medsight.tasks.bootstrap.bootstrap_ci`): a resample counts each image as often as it is
drawn (weights), so the matching is done once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medsight.errors import FormatError
from medsight.tasks.detect.boxes import box_iou, centres

__all__ = [
    "FP_RATES",
    "IOU_THRESHOLDS",
    "DetectionSet",
    "average_precision",
    "detection_metrics",
    "froc",
]

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100


def average_precision(scores, matched, n_references: float, *, weights=None) -> float:
    """COCO's 101-point interpolated AP of ranked detections.

    Parameters
    ----------
    scores : array ``(N,)``
    matched : array of bool ``(N,)`` or ``(T, N)``
        Whether each detection matched a reference (per IoU threshold when 2D).
    n_references : float
        Number of reference boxes (NaN is returned when 0).
    weights : array ``(N,)``, optional
        How often each detection counts (bootstrap resamples).

    Returns
    -------
    float, or ndarray ``(T,)`` for 2D `matched`
    """
    matched = np.asarray(matched, bool)
    squeeze = matched.ndim == 1
    matched = np.atleast_2d(matched)
    if n_references <= 0:
        out = np.full(len(matched), np.nan)
        return float(out[0]) if squeeze else out
    scores = np.asarray(scores, np.float64)
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, np.float64)
    order = np.argsort(-scores, kind="mergesort")  # stable, as pycocotools sorts
    hits = matched[:, order] * w[order]
    tps = np.cumsum(hits, axis=1)
    fps = np.cumsum((~matched[:, order]) * w[order], axis=1)
    out = np.zeros(len(matched))
    if len(scores):
        recall = tps / n_references
        precision = tps / (tps + fps + np.spacing(1))
        precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # upper envelope
        for t in range(len(matched)):
            index = np.searchsorted(recall[t], RECALL_POINTS, side="left")
            inside = index < precision.shape[1]
            out[t] = np.where(inside, precision[t, np.minimum(index, precision.shape[1] - 1)], 0.0).mean()
    return float(out[0]) if squeeze else out


def froc(
    fp_scores,
    reference_scores,
    n_images: float,
    *,
    fp_rates: Sequence[float] = FP_RATES,
    fp_weights=None,
    reference_weights=None,
) -> np.ndarray:
    """Sensitivity at each of `fp_rates` false positives per image (LUNA16's interpolation).

    Parameters
    ----------
    fp_scores : array ``(F,)``
        Scores of the false-positive detections.
    reference_scores : array ``(R,)``
        For each reference finding, the score of the best detection that hits it (-inf: missed).
    n_images : float
        Images the detections come from (true negatives included).
    fp_weights, reference_weights : array, optional
        Multiplicities (bootstrap resamples).
    """
    fp = np.asarray(fp_scores, np.float64)
    ref = np.asarray(reference_scores, np.float64)
    w_fp = np.ones(len(fp)) if fp_weights is None else np.asarray(fp_weights, np.float64)
    w_ref = np.ones(len(ref)) if reference_weights is None else np.asarray(reference_weights, np.float64)
    total = w_ref.sum()
    if total <= 0 or n_images <= 0:
        return np.full(len(fp_rates), np.nan)
    thresholds = np.unique(np.concatenate([fp, ref[np.isfinite(ref)]]))[::-1]  # high to low
    fp_order, ref_order = np.argsort(-fp), np.argsort(-ref)
    fp_sorted, ref_sorted = fp[fp_order], ref[ref_order]
    fp_cum = np.concatenate([[0.0], np.cumsum(w_fp[fp_order])])
    ref_cum = np.concatenate([[0.0], np.cumsum(w_ref[ref_order])])
    # Items with a score >= t: the count of sorted (descending) values not below t.
    n_fp = np.searchsorted(-fp_sorted, -thresholds, side="right")
    n_ref = np.searchsorted(-ref_sorted, -thresholds, side="right")
    rate = np.concatenate([[0.0], fp_cum[n_fp] / n_images])
    sensitivity = np.concatenate([[0.0], ref_cum[n_ref] / total])
    # Linear between operating points; at a rate where sensitivity rises in a vertical step,
    # its top; past the last point, its sensitivity (LUNA16's np.interp on the curve).
    x = np.asarray(fp_rates, np.float64)
    a = np.searchsorted(rate, x, side="right") - 1  # the last point at or below each rate
    b = np.minimum(a + 1, len(rate) - 1)
    span = rate[b] - rate[a]
    t = np.where(span > 0, (x - rate[a]) / np.where(span > 0, span, 1), 0.0)
    return sensitivity[a] + t * (sensitivity[b] - sensitivity[a])


@dataclass
class _Matches:
    """Matching done once; resamples reweight it. Per class: ranked detections of all images."""

    scores: list[np.ndarray]  # per class (N_c,)
    matched: list[np.ndarray]  # per class (T, N_c)
    image_of: list[np.ndarray]  # per class (N_c,) image index of each detection
    n_ref: np.ndarray  # (images, classes) reference boxes
    fp_scores: np.ndarray  # FROC false positives (all classes)
    fp_image: np.ndarray
    ref_scores: np.ndarray  # FROC best hit score per reference (-inf: missed)
    ref_image: np.ndarray


class DetectionSet:
    """Predicted and reference boxes of a set of images, matched once, scored on any resample.

    Parameters
    ----------
    predictions : list of dict
        Per image ``{"boxes": (N, 2d), "scores": (N,), "labels": (N,) class names}``.
    references : list of dict
        Per image ``{"boxes": (M, 2d), "labels": (M,) class names}``; an empty image is a
        true negative.
    classes : sequence of str
        The class names; labels outside them are an error.
    iou_thresholds, max_detections, hit, hit_iou
        See the module docstring.
    """

    def __init__(
        self,
        predictions: Sequence[dict],
        references: Sequence[dict],
        *,
        classes: Sequence[str],
        iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
        max_detections: int = MAX_DETECTIONS,
        hit: str = "centre",
        hit_iou: float = 0.1,
    ):
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions for {len(references)} reference images")
        if hit not in ("centre", "iou"):
            raise ValueError(f"hit must be 'centre' or 'iou', not {hit!r}")
        self.classes = [str(c) for c in classes]
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        self.n_images = len(references)
        self.hit, self.hit_iou = hit, float(hit_iou)
        index = {c: i for i, c in enumerate(self.classes)}
        per_class = [([], [], []) for _ in self.classes]
        n_ref = np.zeros((self.n_images, len(self.classes)))
        fp_scores, fp_image, ref_scores, ref_image = [], [], [], []
        for image, (pred, ref) in enumerate(zip(predictions, references)):
            p_boxes, p_scores = _boxes(pred.get("boxes")), np.asarray(pred.get("scores", []), np.float64)
            r_boxes = _boxes(ref.get("boxes"))
            p_labels = _labels(pred.get("labels", []), index, f"prediction of image {image}")
            r_labels = _labels(ref.get("labels", []), index, f"reference of image {image}")
            if (
                len(p_boxes) != len(p_scores)
                or len(p_boxes) != len(p_labels)
                or len(r_boxes) != len(r_labels)
            ):
                raise FormatError(f"image {image}: boxes, scores and labels differ in length")
            if len(p_boxes) and len(r_boxes) and p_boxes.shape[1] != r_boxes.shape[1]:
                raise FormatError(f"image {image}: predicted and reference boxes differ in dimension")
            for c in range(len(self.classes)):
                p, r = p_labels == c, r_labels == c
                n_ref[image, c] = r.sum()
                order = np.argsort(-p_scores[p], kind="mergesort")[:max_detections]
                boxes, scores = p_boxes[p][order], p_scores[p][order]
                matched = _coco_match(box_iou(boxes, r_boxes[r]), self.iou_thresholds)
                per_class[c][0].append(scores)
                per_class[c][1].append(matched)
                per_class[c][2].append(np.full(len(scores), image))
            hits = self._hits(p_boxes, p_labels, r_boxes, r_labels)
            fp = ~hits.any(axis=1)
            fp_scores.append(p_scores[fp])
            fp_image.append(np.full(int(fp.sum()), image))
            best = np.where(hits, p_scores[:, None], -np.inf).max(axis=0, initial=-np.inf)
            ref_scores.append(best)
            ref_image.append(np.full(len(best), image))
        cat = np.concatenate
        self._m = _Matches(
            scores=[cat(s) if s else np.zeros(0) for s, _, _ in per_class],
            matched=[
                cat(m, axis=1) if m else np.zeros((len(self.iou_thresholds), 0), bool)
                for _, m, _ in per_class
            ],
            image_of=[cat(i).astype(int) if i else np.zeros(0, int) for _, _, i in per_class],
            n_ref=n_ref,
            fp_scores=cat(fp_scores) if fp_scores else np.zeros(0),
            fp_image=cat(fp_image).astype(int) if fp_image else np.zeros(0, int),
            ref_scores=cat(ref_scores) if ref_scores else np.zeros(0),
            ref_image=cat(ref_image).astype(int) if ref_image else np.zeros(0, int),
        )

    def _hits(self, p_boxes, p_labels, r_boxes, r_labels) -> np.ndarray:
        """``(P, R)``: whether each detection hits each reference of its class."""
        if not len(p_boxes) or not len(r_boxes):
            return np.zeros((len(p_boxes), len(r_boxes)), bool)
        same = p_labels[:, None] == r_labels[None, :]
        if self.hit == "iou":
            return same & (box_iou(p_boxes, r_boxes) >= self.hit_iou)
        d = r_boxes.shape[1] // 2
        c = centres(p_boxes)[:, None, :]
        inside = ((c >= r_boxes[None, :, :d]) & (c <= r_boxes[None, :, d:])).all(-1)
        return same & inside

    def metrics(self, index=None, *, fp_rates: Sequence[float] = FP_RATES) -> dict:
        """The metrics of the images in `index` (with repeats; all images when None).

        Returns ``{"ap50", "map", ("ap50", class), ("map", class), "froc_mean",
        ("froc", rate)}``; undefined values (no reference box) are NaN.
        """
        m = self._m
        counts = np.ones(self.n_images) if index is None else np.bincount(index, minlength=self.n_images)
        n_images = counts.sum()
        out: dict = {}
        ap = np.full((len(self.classes), len(self.iou_thresholds)), np.nan)
        n_ref = counts @ m.n_ref
        for c in range(len(self.classes)):
            if n_ref[c] > 0:
                w = counts[m.image_of[c]]
                ap[c] = average_precision(m.scores[c], m.matched[c], n_ref[c], weights=w)
            at50 = self.iou_thresholds.index(0.5) if 0.5 in self.iou_thresholds else 0
            out[("ap50", self.classes[c])] = ap[c, at50]
            out[("map", self.classes[c])] = ap[c].mean()
        defined = ~np.isnan(ap[:, 0])
        at50 = self.iou_thresholds.index(0.5) if 0.5 in self.iou_thresholds else 0
        out["ap50"] = float(ap[defined, at50].mean()) if defined.any() else float("nan")
        out["map"] = float(ap[defined].mean()) if defined.any() else float("nan")
        sens = froc(
            m.fp_scores,
            m.ref_scores,
            n_images,
            fp_rates=fp_rates,
            fp_weights=counts[m.fp_image],
            reference_weights=counts[m.ref_image],
        )
        for rate, value in zip(fp_rates, sens):
            out[("froc", float(rate))] = float(value)
        out["froc_mean"] = float(np.mean(sens))
        return out

    def stratum_froc(self, selected, *, fp_rates: Sequence[float] = FP_RATES) -> dict:
        """FROC of a stratum of the reference findings (the small ones, the subtle ones):
        sensitivity among the references where `selected` is true (one flag per reference, in
        image order, then each image's order), at the false positives per image of all images.
        Returns ``{"n_references", "froc_mean", "froc": {rate: sensitivity}}``."""
        selected = np.asarray(selected, bool)
        if selected.shape != self._m.ref_scores.shape:
            raise ValueError(f"{len(selected)} flags for {len(self._m.ref_scores)} reference findings")
        sens = froc(self._m.fp_scores, self._m.ref_scores[selected], self.n_images, fp_rates=fp_rates)
        return {
            "n_references": int(selected.sum()),
            "froc_mean": _number(np.mean(sens)),
            "froc": {_rate(r): _number(v) for r, v in zip(fp_rates, sens)},
        }


def _boxes(boxes) -> np.ndarray:
    array = np.asarray([] if boxes is None else boxes, np.float64)
    return array.reshape(0, 4) if array.size == 0 else array


def _labels(labels, index: dict, where: str) -> np.ndarray:
    unknown = sorted({str(label) for label in labels} - set(index))
    if unknown:
        raise FormatError(f"{where}: class(es) {unknown} are not among {list(index)}")
    return np.array([index[str(label)] for label in labels], int)


def _coco_match(iou: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """``(T, N)`` matched flags of score-ordered detections against references (`iou` is N x M)."""
    n, m = iou.shape
    matched = np.zeros((len(thresholds), n), bool)
    for t, threshold in enumerate(thresholds):
        taken = np.zeros(m, bool)
        for d in range(n):
            best, pick = min(threshold, 1 - 1e-10), -1
            for g in range(m):
                if not taken[g] and iou[d, g] >= best:
                    best, pick = iou[d, g], g
            if pick >= 0:
                taken[pick] = matched[t, d] = True
    return matched


def detection_metrics(
    predictions: Sequence[dict],
    references: Sequence[dict],
    *,
    classes: Sequence[str],
    groups: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    hit: str = "centre",
    hit_iou: float = 0.1,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    fp_rates: Sequence[float] = FP_RATES,
) -> dict:
    """AP50, mAP and FROC of `predictions` against `references`, with percentile bootstrap CIs.

    Parameters
    ----------
    predictions, references, classes, hit, hit_iou, iou_thresholds
        See `DetectionSet`.
    groups : sequence, optional
        Patient of each image: whole patients are resampled. None resamples images.
    n_boot, seed, level
        Bootstrap resamples (0: no intervals), their seed and coverage.

    Returns
    -------
    dict
        JSON-ready: ``ap50``, ``map``, ``froc_mean``, ``froc`` ({rate: sensitivity}),
        ``per_class`` ({class: {"ap50", "map", "n_references"}}), ``ci`` (``[low, high]`` of the
        top-level figures, of each FROC point under ``froc`` and per class under
        ``per_class``), ``n_images``, ``n_references``, ``n_detections`` and the settings.
        Undefined values are None.
    """
    from medsight.tasks.bootstrap import bootstrap_ci

    scored = DetectionSet(
        predictions, references, classes=classes, iou_thresholds=iou_thresholds, hit=hit, hit_iou=hit_iou
    )
    point = scored.metrics(fp_rates=fp_rates)
    intervals = (
        bootstrap_ci(
            lambda index: scored.metrics(index, fp_rates=fp_rates),
            scored.n_images,
            groups=groups,
            n_boot=n_boot,
            level=level,
            seed=seed,
        )
        if n_boot
        else {}
    )

    def ci(key) -> list:
        low, high = intervals[key]
        return [_number(low), _number(high)]

    n_ref = scored._m.n_ref.sum(0)
    result = {
        "ap50": _number(point["ap50"]),
        "map": _number(point["map"]),
        "froc_mean": _number(point["froc_mean"]),
        "froc": {_rate(r): _number(point[("froc", float(r))]) for r in fp_rates},
        "per_class": {
            c: {
                "ap50": _number(point[("ap50", c)]),
                "map": _number(point[("map", c)]),
                "n_references": int(n_ref[i]),
            }
            for i, c in enumerate(scored.classes)
        },
        "ci": {},
        "level": level,
        "n_boot": n_boot,
        "seed": seed,
        "n_images": scored.n_images,
        "n_references": int(n_ref.sum()),
        "n_detections": int(sum(len(p.get("scores", [])) for p in predictions)),
        "iou_thresholds": list(scored.iou_thresholds),
        "froc_hit": hit if hit == "centre" else f"iou>={hit_iou:g}",
    }
    if intervals:
        result["ci"] = {
            "ap50": ci("ap50"),
            "map": ci("map"),
            "froc_mean": ci("froc_mean"),
            "froc": {_rate(r): ci(("froc", float(r))) for r in fp_rates},
            "per_class": {c: {"ap50": ci(("ap50", c)), "map": ci(("map", c))} for c in scored.classes},
        }
    return result


def _rate(rate: float) -> str:
    return f"{float(rate):g}"


def _number(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
