"""Segmentation metrics against hand computation, brute force, MONAI and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsight.errors import FormatError, MedsightError
from medsight.tasks.segment.metrics import (
    histogram_auc,
    pixel_auc,
    score_histogram,
    segmentation_metrics,
    surface_distances,
)


def ball(shape, centre, radius) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((x - c) ** 2 for x, c in zip(grid, centre)) <= radius**2


def surface_points(mask: np.ndarray, spacing) -> np.ndarray:
    """Voxels with a background 6-neighbour (outside the image is background), in mm: the reference."""
    padded = np.pad(mask, 1)
    core = tuple(slice(1, -1) for _ in range(mask.ndim))
    exposed = np.zeros_like(mask)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            exposed |= ~np.roll(padded, step, axis=axis)[core]
    return np.argwhere(mask & exposed) * np.asarray(spacing)


def brute_force(pred, ref, spacing, tolerance):
    a, b = surface_points(pred, spacing), surface_points(ref, spacing)
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    to_ref, to_pred = d.min(1), d.min(0)
    both = np.concatenate([to_ref, to_pred])
    return {
        "hd95_mm": max(np.percentile(to_ref, 95), np.percentile(to_pred, 95)),
        "assd_mm": both.mean(),
        "nsd": np.mean(both <= tolerance + 1e-9),
    }


def test_offset_squares_overlap_is_exact():
    ref = np.zeros((10, 10), int)
    pred = np.zeros((10, 10), int)
    ref[2:6, 2:6] = 1
    pred[3:7, 2:6] = 1  # shifted one voxel along i: 12 of 16 voxels shared
    m = segmentation_metrics(pred, ref, spacing=(1.0, 1.0))[1]
    assert m["dice"] == pytest.approx(2 * 12 / 32)
    assert m["iou"] == pytest.approx(12 / 20)
    assert (m["n_pred"], m["n_ref"], m["n_overlap"]) == (16, 16, 12)
    assert m["area_diff_mm2"] == 0 and m["area_diff_pct"] == 0


def test_distances_on_an_anisotropic_grid_by_hand():
    # Two one-voxel-thick lines (all surface): pred 3 rows below ref (3 x 2 mm) and one column
    # to the right (0.5 mm). Seven voxels of each lie exactly 6 mm from the other line, the two
    # end voxels sqrt(6^2 + 0.5^2) mm.
    spacing = (2.0, 0.5)
    ref = np.zeros((9, 14), int)
    pred = np.zeros((9, 14), int)
    ref[2, 2:10] = 1
    pred[5, 3:11] = 1
    far = math.sqrt(36.25)
    to_pred, to_ref = surface_distances(pred == 1, ref == 1, spacing=spacing)
    assert sorted(to_pred) == pytest.approx([6.0] * 7 + [far])
    assert sorted(to_ref) == pytest.approx([6.0] * 7 + [far])
    m = segmentation_metrics(pred, ref, spacing=spacing, tolerance_mm=6.0)[1]
    # 95th percentile of eight values, linear interpolation: 6 + 0.65 * (far - 6) in each direction
    assert m["hd95_mm"] == pytest.approx(6 + 0.65 * (far - 6), abs=1e-12)
    assert m["assd_mm"] == pytest.approx((14 * 6 + 2 * far) / 16, abs=1e-12)
    assert m["nsd"] == pytest.approx(14 / 16)  # 6.0 mm exactly counts as within a 6 mm tolerance
    assert segmentation_metrics(pred, ref, spacing=spacing, tolerance_mm=6.03)[1]["nsd"] == 1.0
    assert m["dice"] == 0
    # The spacing belongs to its axis: swapped, the same voxels lie 1.5 mm apart
    swapped = segmentation_metrics(pred, ref, spacing=(0.5, 2.0))[1]
    assert swapped["assd_mm"] == pytest.approx((14 * 1.5 + 2 * math.sqrt(1.5**2 + 4)) / 16)


def test_sphere_against_shifted_sphere_is_exact():
    spacing = (0.8, 0.8, 1.5)
    shape = (34, 34, 22)
    # balls of radius 9 mm sampled at the voxel centres, in mm
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij"), -1)
    ref = ((grid - (13.6, 13.6, 16.5)) ** 2).sum(-1) <= 81
    pred = ((grid - (13.6 + 2.4, 13.6, 16.5)) ** 2).sum(-1) <= 81  # shifted 2.4 mm = 3 voxels along i
    m = segmentation_metrics(pred.astype(int), ref.astype(int), spacing=spacing, tolerance_mm=1.5)[1]
    expected = brute_force(pred, ref, spacing, 1.5)
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, abs=1e-9), name
    # Continuous lens overlap of two balls of radius r, centres d apart: 1 - 3d/4r + d^3/16r^3
    d, r = 2.4, 9.0
    assert m["dice"] == pytest.approx(1 - 3 * d / (4 * r) + d**3 / (16 * r**3), abs=0.02)
    assert m["volume_ref_ml"] == pytest.approx(4 / 3 * math.pi * r**3 / 1000, rel=0.03)
    # symmetric in its two arguments
    swapped = segmentation_metrics(ref.astype(int), pred.astype(int), spacing=spacing, tolerance_mm=1.5)[1]
    for name in ("dice", "hd95_mm", "assd_mm", "nsd"):
        assert swapped[name] == pytest.approx(m[name])


def test_empty_masks_follow_the_documented_rules():
    empty = np.zeros((8, 8, 8), int)
    cube = empty.copy()
    cube[2:5, 2:5, 2:5] = 1
    both = segmentation_metrics(empty, empty, spacing=(1, 1, 1), labels=[1])[1]
    assert both["dice"] == both["iou"] == both["nsd"] == 1.0
    assert both["hd95_mm"] == both["assd_mm"] == 0.0
    assert both["volume_diff_ml"] == 0 and both["volume_diff_pct"] == 0
    missed = segmentation_metrics(empty, cube, spacing=(1, 1, 2), labels=[1])[1]
    assert missed["dice"] == missed["iou"] == missed["nsd"] == 0.0
    assert math.isnan(missed["hd95_mm"]) and math.isnan(missed["assd_mm"])
    assert missed["volume_diff_ml"] == pytest.approx(-27 * 2 / 1000) and missed["volume_diff_pct"] == -100
    invented = segmentation_metrics(cube, empty, spacing=(1, 1, 1), labels=[1])[1]
    assert (
        invented["dice"] == 0 and math.isnan(invented["hd95_mm"]) and math.isnan(invented["volume_diff_pct"])
    )


def test_default_labels_are_those_present_and_sizes_have_units():
    ref = np.zeros((12, 12, 12), np.uint8)
    ref[1:11, 1:11, 1:11] = 3
    m = segmentation_metrics(ref, ref, spacing=(1.0, 1.0, 2.0))
    assert list(m) == [3]
    assert m[3]["volume_ref_ml"] == pytest.approx(1000 * 2 / 1000)
    assert m[3]["dice"] == 1 and m[3]["hd95_mm"] == 0 and m[3]["nsd"] == 1


def test_field_of_view_ignores_what_lies_outside_it():
    ref = np.zeros((20, 20), int)
    ref[5:15, 2:18] = 1
    fov = np.zeros((20, 20), bool)
    fov[:, :10] = True  # the object crosses the field-of-view border
    pred = ref.copy()
    pred[5:15, 10:] = 0  # differs from the reference outside the field of view only
    pred[0, 15] = 1
    inside = segmentation_metrics(pred, ref, spacing=(1, 1), fov=fov)[1]
    assert inside["dice"] == 1 and inside["n_ref"] == 10 * 8
    assert inside["hd95_mm"] == 0 and inside["nsd"] == 1  # the cut is no boundary
    outside = segmentation_metrics(pred, ref, spacing=(1, 1))[1]
    assert outside["dice"] < 1 and outside["hd95_mm"] > 0


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI's own deprecation inside get_mask_edges
def test_matches_monai_metric_functions():
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    spacing = (0.8, 1.1, 3.0)
    shape = (30, 36, 16)
    ref = ball(shape, (15, 18, 8), 9).astype(int)
    ref[:5, :5, :5] = 1  # touches the image border
    pred = ball(shape, (17, 17, 9), 8).astype(int)
    ours = segmentation_metrics(pred, ref, spacing=spacing, tolerance_mm=2.0)[1]

    def onehot(a):
        return torch.from_numpy(np.stack([a == 0, a == 1]))[None].float()

    hd = metrics.compute_hausdorff_distance(onehot(pred), onehot(ref), percentile=95, spacing=spacing)
    asd = metrics.compute_average_surface_distance(onehot(pred), onehot(ref), symmetric=True, spacing=spacing)
    nsd = metrics.compute_surface_dice(onehot(pred), onehot(ref), [2.0], spacing=spacing)
    assert ours["hd95_mm"] == pytest.approx(hd.item(), rel=1e-5)
    assert ours["assd_mm"] == pytest.approx(asd.item(), rel=1e-5)
    assert ours["nsd"] == pytest.approx(nsd.item(), rel=1e-5)


def test_bad_label_maps_are_refused():
    with pytest.raises(FormatError, match="non-integer"):
        segmentation_metrics(np.full((4, 4), 0.5), np.zeros((4, 4)), spacing=(1, 1))
    with pytest.raises(FormatError, match="negative"):
        segmentation_metrics(np.full((4, 4), -1), np.zeros((4, 4), int), spacing=(1, 1))
    with pytest.raises(FormatError, match="shapes"):
        segmentation_metrics(np.zeros((4, 4), int), np.zeros((4, 5), int), spacing=(1, 1))
    with pytest.raises(MedsightError, match="tolerance"):
        segmentation_metrics(np.zeros((4, 4), int), np.zeros((4, 4), int), spacing=(1, 1), tolerance_mm=-1)


def test_pixel_auc_matches_sklearn_within_its_bound():
    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score
    rng = np.random.default_rng(0)
    truth = rng.random((60, 70, 50)) < 0.12
    score = rng.normal(size=truth.shape) + 2.0 * truth
    fov = rng.random(truth.shape) < 0.8
    for prob in (1 / (1 + np.exp(-score)), (1 / (1 + np.exp(-9 * score))).astype(np.float32)):
        exact = roc_auc_score(truth[fov], prob[fov])
        auc, bound = histogram_auc(score_histogram(prob, truth, fov=fov))
        assert abs(auc - exact) <= bound + 1e-12
        assert abs(auc - exact) < 1e-5
        assert pixel_auc(prob, truth, fov=fov) == auc
    # histograms of cases add up to the histogram of their pooled voxels
    halves = score_histogram(prob[:30], truth[:30]) + score_histogram(prob[30:], truth[30:])
    assert np.array_equal(halves, score_histogram(prob, truth))


def test_pixel_auc_edge_cases():
    truth = np.array([0, 0, 1, 1])
    assert pixel_auc(np.array([0.0, 0.2, 0.7, 1.0]), truth) == 1.0
    assert pixel_auc(np.array([0.5, 0.5, 0.5, 0.5]), truth) == 0.5
    assert math.isnan(pixel_auc(np.array([0.1, 0.9, 0.2, 0.3]), np.zeros(4)))
    with pytest.raises(FormatError, match="logits"):
        pixel_auc(np.array([-2.0, 0.1, 3.0, 0.5]), truth)
