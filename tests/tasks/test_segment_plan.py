"""Segmentation planning rules: target spacing, nnU-Net topology, patch fitting."""

import numpy as np

from medsight.tasks.segment.plan import _fit_patch, make_plan, target_spacing, topology


def test_topology_follows_nnunet_rules_on_anisotropic_data():
    kernels, strides = topology([160, 160, 20], [0.8, 0.8, 5.0])
    assert strides[0] == [1, 1, 1]
    # the 5 mm axis is neither downsampled nor convolved with 3 until the others catch up
    assert strides[1] == [2, 2, 1] and kernels[0] == [3, 3, 1]
    assert strides[3] == [2, 2, 2] and kernels[2] == [3, 3, 3]  # spacings now within 2x
    assert len(strides) <= 6


def test_fit_patch_caps_voxels_and_divides_by_the_downsampling():
    patch = _fit_patch([300, 280, 200], [1.0, 1.0, 1.0], 96**3)
    assert np.prod(patch) <= 96**3 * 1.1
    _, strides = topology(patch, [1.0, 1.0, 1.0])
    assert all(p % f == 0 for p, f in zip(patch, np.prod(strides, axis=0)))
    assert _fit_patch([8, 8, 8], [1.0, 1.0, 1.0], 10) == [16, 16, 16]  # the smallest patch: stops


def test_target_spacing_takes_a_finer_percentile_on_a_coarse_axis():
    fp = {"median_spacing": [0.7, 0.7, 5.0], "spacings": [[0.7, 0.7, s] for s in (1.0, 5.0, 5.0, 5.0, 5.0)]}
    assert target_spacing(fp)[2] < 5.0
    assert target_spacing({"median_spacing": [1.0, 1.0], "spacings": [[1.0, 1.0]]}) == [1.0, 1.0]


def test_plan_without_timing_is_complete():
    fp = {
        "n": {"train": 4, "val": 1},
        "classes": ["a", "b"],
        "ndim": 3,
        "channels": 1,
        "modality": "CT",
        "spacings": [[1.0, 1.0, 2.0]] * 4,
        "sizes": [[100, 100, 50]] * 4,
        "median_spacing": [1.0, 1.0, 2.0],
        "median_size": [100, 100, 50],
        "foreground_intensity": {"mean": 50.0, "std": 10.0, "p0_5": 0.0, "p99_5": 100.0},
        "class_fraction": [0.9, 0.05, 0.05],
    }
    plan = make_plan(fp, budget_min=5, measure=False)
    assert plan["network"]["num_classes"] == 3
    assert plan["preprocess"]["normalize"]["kind"] == "ct"
    assert (
        len(plan["network"]["kernels"]) == len(plan["network"]["strides"]) == len(plan["network"]["filters"])
    )


def _fp_2d(resampling_dice: dict) -> dict:
    return {
        "n": {"train": 4, "val": 1},
        "classes": ["lesion"],
        "ndim": 2,
        "channels": 3,
        "modality": "OT",
        "spacings": [[1.0, 1.0]] * 4,
        "sizes": [[600, 520]] * 4,
        "median_spacing": [1.0, 1.0],
        "median_size": [600, 520],
        "foreground_intensity": {"mean": 0.0, "std": 1.0, "p0_5": -2.0, "p99_5": 2.0},
        "class_fraction": [0.8, 0.2],
        "resampling_dice": resampling_dice,
    }


def test_resampling_dice_tells_thick_from_thin_structures():
    from medsight.image import Image
    from medsight.tasks.segment.plan import resampling_dice

    yy, xx = np.mgrid[:256, :256]
    disc = ((yy - 128) ** 2 + (xx - 128) ** 2 < 80**2).astype(np.uint8)
    lines = np.zeros((256, 256), np.uint8)
    lines[:, 5::13] = 1  # one-pixel vessels
    kept_disc = resampling_dice([Image(disc[None])], 1)
    kept_lines = resampling_dice([Image(lines[None])], 1)
    assert kept_disc["4.0"] > 0.97 and kept_lines["1.5"] < 0.9


def test_a_2d_plan_coarsens_only_as_far_as_the_structures_allow():
    from medsight.tasks.segment.plan import coarsening

    thick = _fp_2d({"1.5": 1.0, "2.0": 0.99, "3.0": 0.985, "4.0": 0.975, "6.0": 0.96, "8.0": 0.9})
    thin = _fp_2d({"1.5": 0.95, "2.0": 0.9, "3.0": 0.8, "4.0": 0.7, "6.0": 0.6, "8.0": 0.5})
    # a 192 x 160 patch covers 10% of a 600 x 520 image: 3.2x would make it cover all of it
    assert coarsening(thick, [192, 160], [1.0, 1.0]) == 3.187
    assert coarsening(_fp_2d({"8.0": 0.99}), [64, 64], [1.0, 1.0]) == 8.0  # capped by the factors
    assert coarsening(thin, [192, 160], [1.0, 1.0]) == 1.0  # vessels stay at full resolution
    assert coarsening(thick, [512, 448], [1.0, 1.0]) == 1.0  # the patch already sees most of it
    plan = make_plan(thick, budget_min=5, measure=False)  # untimed: the cheapest patch is taken
    assert plan["planning"]["coarsened"] > 1 and plan["preprocess"]["spacing"][0] > 1


def test_lateralised_classes_are_not_mirrored_left_right():
    from medsight.tasks.segment.plan import flip_axes

    assert flip_axes(["hippocampus_left", "hippocampus_right"], 3) == [1, 2]
    assert flip_axes(["Right lung", "heart"], 2) == [1]
    assert flip_axes(["kidney_l"], 3) == [1, 2]
    assert flip_axes(["polyp"], 2) is None
    assert flip_axes(["L5", "liver", "cleft"], 3) is None  # no side named

    from medsight.tasks.mirroring import mirror_axes

    lateral = {"preprocess": {"ndim": 3}, "augmentation": {"flip_axes": [1, 2]}}
    assert mirror_axes(lateral) == [1, 2]  # test-time mirroring follows training's
    assert mirror_axes({"preprocess": {"ndim": 2}, "augmentation": {"flip_axes": None}}) == [0, 1]


def test_validation_cases_scale_with_the_windows_a_case_needs():
    from medsight.tasks.segment.plan import validation_cases

    fp = {**_fp_2d({}), "n": {"train": 700, "val": 176}}
    # one 192x160 window per 600x520 image coarsened 3.4x: a tenth of 50 steps of 8, thrice
    assert validation_cases(fp, [3.4, 3.4], [192, 160], 8, 50) == 120
    # the same images at full resolution need 4x4 windows each: down to the 2D floor
    assert validation_cases(fp, [1.0, 1.0], [192, 160], 8, 50) == 16
    # never more than the validation split holds
    assert validation_cases({**fp, "n": {"train": 40, "val": 10}}, [3.4, 3.4], [192, 160], 8, 50) == 10
