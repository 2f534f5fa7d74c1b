"""Patch sampling for detection: boxes move with the crop; forced items hold a whole box."""

import numpy as np
import pytest
import torch

from medsight.tasks.detect.detector import decode_targets
from medsight.train.patches import BoxPatchBatches


def _inputs():
    """Three 64 x 48 images: a box of ones at a known place in two, none in the third."""
    x = np.zeros((3, 1, 64, 48), np.float32)
    boxes = [
        np.array([[40.0, 30.0, 50.0, 38.0]]),
        np.array([[2.0, 2.0, 8.0, 6.0], [50.0, 5.0, 60.0, 15.0]]),
        np.zeros((0, 4)),
    ]
    for i, b in enumerate(boxes):
        for x0, y0, x1, y1 in b.astype(int):
            x[i, 0, x0:x1, y0:y1] = 1
    return x, boxes, [[0], [0, 0], []]


def test_every_box_kept_matches_the_pixels_it_framed():
    x, boxes, labels = _inputs()
    batches = BoxPatchBatches(
        x, boxes, labels, patch=(32, 24), batch_size=8, steps_per_epoch=20, foreground_fraction=0.5
    )
    assert batches.input_size == (32, 24)
    seen_cut, g = 0, torch.Generator().manual_seed(0)
    for images, targets in batches.epoch(g):
        assert images.shape == (8, 1, 32, 24) and targets.shape == (8, 2, 5)
        for item, (image, target) in enumerate(zip(images, decode_targets(targets))):
            ones = int(image.sum())
            area = sum(float((b[2] - b[0]) * (b[3] - b[1])) for b in target["boxes"])
            if item >= 4:  # forced items: at least one whole box, never cut
                assert len(target["boxes"]) >= 1
            for x0, y0, x1, y1 in target["boxes"].numpy().astype(int):
                assert image[0, x0:x1, y0:y1].min() == 1  # the box sits on its finding
            if ones > area:  # a finding in view without its box: cut to under half
                seen_cut += 1
    assert seen_cut > 0  # random crops do cut findings; their slivers train as background


def test_a_cut_box_is_clipped_when_half_of_it_is_inside():
    x, boxes, labels = _inputs()
    batches = BoxPatchBatches(
        x, boxes, labels, patch=(32, 24), batch_size=2, steps_per_epoch=1, foreground_fraction=0
    )
    kept, _ = batches._cropped(0, np.array([32, 24]))  # rows 32-63, columns 24-47: all of box 0 inside
    np.testing.assert_allclose(kept, [[8, 6, 18, 14]])
    kept, _ = batches._cropped(0, np.array([20, 10]))  # rows 20-51, columns 10-33: 4 of 8 columns
    np.testing.assert_allclose(kept, [[20, 20, 30, 24]])
    assert len(batches._cropped(0, np.array([20, 9]))[0]) == 0  # columns 9-32: 3 of 8, dropped
    assert len(batches._cropped(0, np.array([20, 6]))[0]) == 0  # columns 6-29: none of the box


def test_a_patch_larger_than_the_inputs_is_refused():
    x, boxes, labels = _inputs()
    with pytest.raises(ValueError, match="larger"):
        BoxPatchBatches(
            x, boxes, labels, patch=(96, 24), batch_size=2, steps_per_epoch=1, foreground_fraction=0.5
        )
