"""Detection planning rules: input size, strides, levels and anchors from the boxes (no timing)."""

import numpy as np
import pytest

from medsight.image import Image
from medsight.models.retinanet import size_divisible, strides
from medsight.tasks.detect.plan import box_values, fingerprint, make_plan, relative_boxes


def _fp(shape, sides, *, n_images=20, negatives=5):
    """Fingerprint of `n_images` images of `shape` whose boxes have the given side lengths."""
    rng = np.random.default_rng(0)
    images = [Image(rng.normal(0, 1, (1, *shape)).astype(np.float32)) for _ in range(4)]
    boxes = []
    for k in range(n_images):
        if k < negatives:
            boxes.append(np.zeros((0, len(shape))))
            continue
        side = np.asarray(sides[k % len(sides)], float)
        box = np.concatenate([np.zeros(len(shape)), side])[None]
        boxes.append(relative_boxes(box, shape))
    return fingerprint(
        images, boxes, classes=["lesion"], box_counts=[n_images - negatives], n={"train": n_images, "val": 4}
    )


def test_fingerprint_summarises_boxes():
    fp = _fp((128, 96), [(6, 6), (12, 6), (24, 12)])
    assert fp["boxes"]["n"] == 15 and fp["boxes"]["images_without_boxes"] == 5
    assert fp["box_counts"] == [15] and "multilabel" not in fp
    assert fp["boxes"]["relative_size_quantiles"]["50"] == pytest.approx(np.sqrt(12 * 6) / 128, rel=1e-4)
    assert fp["boxes"]["median_shape"][0] > fp["boxes"]["median_shape"][1]  # wider than tall


def test_small_boxes_get_a_fine_first_level_and_small_anchors():
    plan = make_plan(_fp((128, 128), [(4, 4), (6, 6), (8, 8)]), budget_min=5, measure=False)
    net = plan["network"]
    assert plan["preprocess"]["size"] == [128, 128]
    assert net["max_pool"] is False and strides(**_backbone(net))[0] == 2
    assert net["returned_layers"] == [1, 2, 3]  # deep context for the finest level, via the FPN
    base = np.array(plan["anchors"]["base_shapes"])
    assert base.shape == (3, 2) and base.min() >= 4 and base.max() < 8
    assert len(plan["anchors"]["feature_map_scales"]) == len(net["returned_layers"]) + 1
    assert net["num_anchors"] == 3 and plan["selection"]["metric"] == "val_ap50"
    # findings under an eighth of the side: training on half-side patches, half of them on a box
    assert plan["training_patch"] == {"size": [64, 64], "foreground_fraction": 0.5}


def test_large_boxes_get_coarse_levels_and_the_size_follows_the_aspect():
    plan = make_plan(_fp((720, 576), [(80, 60), (200, 180), (400, 300)]), budget_min=5, measure=False)
    net = plan["network"]
    size = plan["preprocess"]["size"]
    assert max(size) <= 512 and size[0] > size[1]  # capped, aspect of the median image kept
    divisible = size_divisible(**_backbone(net))
    assert all(s % divisible == 0 for s in size)
    assert net["max_pool"] is True and len(plan["anchors"]["feature_map_scales"]) >= 3
    top = max(plan["anchors"]["base_shapes"][-1]) * plan["anchors"]["feature_map_scales"][-1]
    scale = min(np.asarray(size) / np.array([720, 576]))
    assert top >= 0.6 * 400 * scale  # the coarsest anchors reach the large boxes
    assert plan["training_patch"] is None  # whole images: a half-side patch would cut the findings


def test_3d_plan_selects_on_froc():
    plan = make_plan(_fp((64, 64, 32), [(6, 6, 4), (10, 10, 6)]), budget_min=5, measure=False)
    assert plan["preprocess"]["ndim"] == 3 and len(plan["anchors"]["base_shapes"][0]) == 3
    assert plan["selection"]["metric"] == "val_froc_mean"
    assert plan["preprocess"]["size"][2] <= plan["preprocess"]["size"][0]
    assert plan["box_selector"]["nms_thresh"] < 0.3


def _backbone(net: dict) -> dict:
    return {k: net[k] for k in ("stem_stride", "max_pool", "returned_layers")}


def test_large_findings_get_the_stronger_network_at_a_smaller_input(monkeypatch):
    from medsight.tasks.detect import plan as module

    def seconds(plan, batch, device, limit):  # a fake device: cost ~ pixels x network size
        cost = {18: 4.0, 10: 1.0}[plan["network"]["depth"]] * plan["network"]["width"]
        return cost * np.prod(plan["preprocess"]["size"]) / 512**2

    monkeypatch.setattr(module, "_seconds_per_step", seconds)
    large = make_plan(_fp((576, 512), [(150, 140), (90, 100)]), budget_min=30)
    timed = [(t["depth"], t["size"]) for t in large["planning"]["candidates_timed"]]
    assert timed[:2] == [(18, 512), (18, 384)]  # the strong network first, its inputs largest first
    assert large["network"]["depth"] == 18 and max(large["preprocess"]["size"]) == 384
    small = make_plan(_fp((256, 256), [(6, 6), (9, 9)]), budget_min=20)
    assert {t["size"] for t in small["planning"]["candidates_timed"]} == {256}  # no room to shrink


def test_a_ct_without_modality_tag_is_clipped_to_its_findings_range():
    rng = np.random.default_rng(0)
    scans, boxes = [], []
    for _ in range(4):  # air around a 100 HU liver holding a 70 HU tumour; NIfTI names no modality
        volume = np.full((1, 40, 40, 30), -1024, np.int16)
        volume[:, 8:32, 8:32, 5:25] = rng.normal(100, 20, (1, 24, 24, 20)).astype(np.int16)
        volume[:, 15:21, 15:21, 10:16] -= 30
        scans.append(Image(volume))
        boxes.append(np.array([[14.0, 14, 9, 22, 22, 17]]))
    fp = fingerprint(
        scans,
        [relative_boxes(b, (40, 40, 30)) for b in boxes],
        classes=["tumour"],
        box_counts=[4],
        n={"train": 4, "val": 1},
        inside=box_values(scans, boxes),
    )
    assert fp["modality"] == "CT"
    lo, hi = make_plan(fp, budget_min=5, measure=False)["preprocess"]["normalize"]["clip"]
    assert 0 < lo < 70 and 100 < hi < 200  # soft tissue, not -1024..bone
    fp["modality"] = None
    assert make_plan(fp, budget_min=5, measure=False)["preprocess"]["normalize"]["kind"] == "zscore"


def test_epochs_stretch_so_validation_stays_a_small_share():
    from medsight.tasks.detect.plan import MIN_VALIDATIONS, epoch_steps

    fp = _fp((256, 256), [(6, 6), (9, 9)], n_images=500)
    plan = make_plan(fp, budget_min=30, measure=False)
    assert plan["training_patch"]["size"] == [128, 128] and plan["batch_size"] == 16
    # a pass over 500 films is 31 steps; 108 whole films to validate weigh 9 steps: 90 steps
    fp["n"] = {"train": 500, "val": 108}
    assert epoch_steps(fp, plan, 5000) == 90
    # ... unless that leaves fewer than MIN_VALIDATIONS epochs in the budget
    assert epoch_steps(fp, plan, 1400) == 1400 // MIN_VALIDATIONS
    # never under one pass over the training films
    assert epoch_steps(fp, plan, 100) == 31
