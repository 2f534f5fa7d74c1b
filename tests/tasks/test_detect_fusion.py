"""Weighted box fusion of mirrored views, against values worked out by hand."""

import numpy as np

from medsight.tasks.detect.fusion import fuse_boxes


def _view(boxes, scores, labels):
    return {
        "boxes": np.asarray(boxes, float).reshape(-1, 4),
        "scores": np.asarray(scores, float),
        "labels": labels,
    }


def test_overlapping_boxes_fuse_to_their_weighted_mean_and_lone_ones_lose_score():
    views = [
        _view([[10, 10, 20, 20], [50, 50, 60, 60]], [0.8, 0.4], [0, 0]),
        _view([[12, 10, 22, 20]], [0.2], [0]),
    ]
    fused = fuse_boxes(views, iou=0.3, limit=10)
    # IoU of the first two is 80/120 = 0.67: fused at (0.8 * 10 + 0.2 * 12) / 1.0 = 10.4 on x
    np.testing.assert_allclose(fused["boxes"][0], [10.4, 10, 20.4, 20])
    np.testing.assert_allclose(fused["scores"], [0.5, 0.2])  # (0.8 + 0.2) / 2 views; 0.4 / 2
    np.testing.assert_allclose(fused["boxes"][1], [50, 50, 60, 60])
    assert fused["labels"].tolist() == [0, 0]


def test_classes_fuse_apart_and_the_limit_keeps_the_best():
    views = [_view([[0, 0, 10, 10]], [0.9], [0]), _view([[0, 0, 10, 10]], [0.6], [1])]
    fused = fuse_boxes(views, iou=0.3, limit=1)
    assert fused["labels"].tolist() == [0] and fused["scores"].tolist() == [0.45]
    # Two boxes of one view in one cluster: the sum over at least the members, not over the views.
    one = fuse_boxes([_view([[0, 0, 10, 10], [1, 0, 11, 10]], [0.6, 0.4], [0, 0])], iou=0.3, limit=5)
    np.testing.assert_allclose(one["scores"], [0.5])


def test_no_detections_in_any_view_gives_an_empty_set():
    empty = _view(np.zeros((0, 4)), [], [])
    fused = fuse_boxes([empty, empty], iou=0.3, limit=10)
    assert fused["boxes"].shape == (0, 4) and len(fused["scores"]) == 0 and len(fused["labels"]) == 0
