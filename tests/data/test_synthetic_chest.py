"""Chest radiograph phantoms: geometry, classes that differ measurably, nodules in their boxes."""

import numpy as np
import pytest

from medsight.data.synthetic import chest_xray, cohort
from medsight.data.synthetic.chest import LABEL_NAMES


def test_chest_is_deterministic_and_a_pa_radiograph():
    case = chest_xray(label="nodule", seed=4)
    again = chest_xray(label="nodule", seed=4)
    other = chest_xray(label="nodule", seed=5)
    np.testing.assert_array_equal(case.image.array, again.image.array)
    np.testing.assert_array_equal(case.mask.array, again.mask.array)
    assert case.truth == again.truth and case.boxes == again.boxes
    assert not np.array_equal(case.image.array, other.image.array)
    image = case.image
    assert image.array.dtype == np.uint16 and image.array.max() <= 4095
    assert image.orientation == "LI"  # i to the patient's left, j to the feet: a PA film
    assert image.spacing == pytest.approx((3.0, 3.0)) and image.metadata["modality"] == "DX"
    assert case.mask.same_grid(image) and case.label_names == LABEL_NAMES
    assert {1, 2, 3} <= set(np.unique(case.mask.array))  # both lungs and the heart


def test_follow_up_films_keep_the_patient_but_not_the_pose():
    first, later = chest_xray(label="nodule", seed=8), chest_xray(label="nodule", seed=8, timepoint=1)
    assert first.patient == later.patient and later.days > 0
    assert [n["diameter_mm"] for n in first.truth["nodules"]] == [
        n["diameter_mm"] for n in later.truth["nodules"]
    ]
    assert first.truth["pose"] != later.truth["pose"]


@pytest.mark.parametrize("seed", range(5))
def test_consolidation_whitens_the_lung_it_fills(seed):
    normal = chest_xray(label="normal", seed=seed)
    sick = chest_xray(label="consolidation", seed=seed)  # same anatomy, pose and noise
    region = sick.mask.array[0] == 4
    assert region.sum() > 50 and sick.truth["consolidation_fraction"] > 0.02
    assert sick.image.array[0][region].mean() > normal.image.array[0][region].mean() + 100
    lungs = np.isin(normal.mask.array[0], (1, 2))
    assert sick.image.array[0][lungs].mean() > normal.image.array[0][lungs].mean()
    assert [b["label"] for b in sick.boxes] and all(b["label"] == "consolidation" for b in sick.boxes)


@pytest.mark.parametrize("seed", range(6))
def test_nodules_lie_in_their_boxes_and_are_visible(seed):
    case = chest_xray(label="nodule", seed=seed)
    normal = chest_xray(label="normal", seed=seed)
    nodules = case.mask.array[0] == 5
    assert 1 <= len(case.boxes) == len(case.truth["nodules"]) <= 3
    covered = np.zeros_like(nodules)
    for box, truth in zip(case.boxes, case.truth["nodules"]):
        i0, j0, i1, j1 = (int(v) for v in box["box"])
        inside = nodules[i0:i1, j0:j1]
        covered[i0:i1, j0:j1] |= inside
        # The box is tight: the nodule touches each of its four sides.
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        assert 8 <= truth["diameter_mm"] <= 24
        # The mask holds the disk's exact area (to one pixel), and the box its centre.
        assert truth["area_mm2"] == pytest.approx(np.pi * (truth["diameter_mm"] / 2) ** 2, abs=9.0)
        assert i0 <= truth["centre_index"][0] < i1 and j0 <= truth["centre_index"][1] < j1
        assert (
            case.image.array[0][i0:i1, j0:j1][inside].mean()
            > normal.image.array[0][i0:i1, j0:j1][inside].mean()
        )
    assert np.array_equal(covered, nodules)  # no nodule pixel outside every box


def test_nodules_are_placed_where_a_reader_would_see_them():
    # Checked on the film itself with scipy's filters, beside the generator's own measure:
    # the nodule film minus the same patient's normal film (same anatomy, pose and noise),
    # band-passed at the nodule's scale, against the band-passed clutter around it.
    from scipy.ndimage import gaussian_filter

    ratios, recorded = [], []
    for seed in range(12):
        case, normal = chest_xray(label="nodule", seed=seed), chest_xray(label="normal", seed=seed)
        film, plain = (c.image.array[0].astype(float) for c in (case, normal))
        for truth in case.truth["nodules"]:
            radius = truth["diameter_mm"] / 2 / 3.0  # pixels of 3 mm

            def band(a, radius=radius):
                return gaussian_filter(a, radius / 2, mode="reflect") - gaussian_filter(
                    a, 2 * radius, mode="reflect"
                )

            ii, jj = np.ogrid[: film.shape[0], : film.shape[1]]
            d = np.hypot(ii - truth["centre_index"][0], jj - truth["centre_index"][1])
            background = band(plain)
            signal = (band(film) - background)[d <= max(0.5 * radius, 1)].mean()
            ratios.append(signal / background[d <= 3 * radius].std())
            recorded.append(truth["conspicuity"])
    # Several nodules on one film add their signals; the measure is per nodule.
    assert np.median(ratios) > 1.0 and np.mean(np.array(ratios) > 0.5) > 0.9
    assert np.mean(np.array(recorded) >= 1.0) > 0.9


def test_the_class_signal_is_learnable_but_not_trivial():
    # A crude feature, lung brightness relative to the heart's (given the true masks),
    # separates consolidation from normal films better than chance, yet anatomy, exposure
    # and sites overlap: no single threshold does it all.
    features = {"normal": [], "consolidation": []}
    for case in cohort("chest-xray", 40, seed=4, classes=["normal", "consolidation"]):
        labels, pixels = case.mask.array[0], case.image.array[0].astype(float)
        lungs = np.isin(labels, (1, 2, 4))
        features[case.label].append(pixels[lungs].mean() / pixels[labels == 3].mean())
    sick, normal = np.array(features["consolidation"]), np.array(features["normal"])
    auc = (sick[:, None] > normal[None, :]).mean()
    assert 0.65 < auc < 0.98
