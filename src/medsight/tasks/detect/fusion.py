"""Weighted box fusion: one image's detections from several views (test-time mirrors) as one set.

Solovyev et al. 2021, as nnDetection merges its test-time mirrors: boxes of a class are taken
best score first; each joins the fused box it overlaps most when that overlap exceeds `iou`,
else starts one. A fused box is the score-weighted mean of its members' corners; its score is
their summed score over the number of views (at least its members), so a finding every view
saw keeps its score and one seen in a single view of four keeps a quarter.
"""

from __future__ import annotations

import numpy as np

from medsight.tasks.detect.boxes import box_iou

__all__ = ["fuse_boxes"]


def fuse_boxes(views: list[dict], *, iou: float, limit: int) -> dict:
    """Fuse per-view detections ``{"boxes": (N, 2d), "scores": (N,), "labels": (N,) int}`` of one
    image into one such dict, best score first, at most `limit` boxes."""
    boxes = np.concatenate([np.asarray(v["boxes"], np.float64) for v in views])
    scores = np.concatenate([np.asarray(v["scores"], np.float64) for v in views])
    labels = np.concatenate([np.asarray(v["labels"], int) for v in views])
    fused_boxes, fused_scores, fused_labels = [], [], []
    for label in np.unique(labels):
        order = np.flatnonzero(labels == label)
        order = order[np.argsort(-scores[order], kind="stable")]
        members: list[list[int]] = []
        fused = np.zeros((0, boxes.shape[1]))
        for i in order:
            overlap = box_iou(boxes[i : i + 1], fused)[0]
            j = int(overlap.argmax()) if len(overlap) else -1
            if j >= 0 and overlap[j] > iou:
                members[j].append(i)
                weights = scores[members[j]]
                fused[j] = weights @ boxes[members[j]] / weights.sum()
            else:
                members.append([i])
                fused = np.vstack([fused, boxes[i]])
        fused_boxes.append(fused)
        fused_scores += [scores[m].sum() / max(len(m), len(views)) for m in members]
        fused_labels += [label] * len(members)
    out_scores = np.asarray(fused_scores, np.float64)
    keep = np.argsort(-out_scores, kind="stable")[:limit]
    width = boxes.shape[1]
    return {
        "boxes": np.concatenate(fused_boxes)[keep] if fused_boxes else np.zeros((0, width)),
        "scores": out_scores[keep],
        "labels": np.asarray(fused_labels, int)[keep],
    }
