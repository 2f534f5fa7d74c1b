"""Breast ultrasound phantoms: speckle, lesion masks, malignant lesions less round, shadows."""

import numpy as np
import pytest

from medsight.data.synthetic import ultrasound


def test_ultrasound_is_deterministic_8_bit_b_mode():
    case, again, other = (
        ultrasound(label="malignant", seed=3),
        ultrasound(label="malignant", seed=3),
        ultrasound(label="malignant", seed=4),
    )
    np.testing.assert_array_equal(case.image.array, again.image.array)
    assert case.truth == again.truth and case.boxes == again.boxes
    assert not np.array_equal(case.image.array, other.image.array)
    assert case.image.array.dtype == np.uint8 and case.image.metadata["modality"] == "US"
    assert case.image.spacing == pytest.approx((0.3, 0.3)) and case.mask.same_grid(case.image)
    assert case.patient.sex == "F"


def test_speckle_is_rough_even_in_uniform_tissue():
    image = ultrasound(label="normal", seed=1).image.array[0].astype(float)
    patch = image[40:90, 60:80]  # inside the gland layer for this seed
    roughness = np.abs(np.diff(patch, axis=1)).mean()
    assert roughness > 8  # grey levels between neighbouring pixels: fully developed speckle


def test_normal_images_have_no_lesion():
    case = ultrasound(label="normal", seed=2)
    assert not case.mask.array.any() and case.boxes == [] and case.truth == {}


@pytest.mark.parametrize("seed", range(8))
def test_lesions_fill_their_masks_and_boxes(seed):
    for label in ("benign", "malignant"):
        case = ultrasound(label=label, seed=seed)
        mask = case.mask.array[0] == 1
        assert mask.sum() * 0.09 == pytest.approx(case.truth["area_mm2"], abs=0.09)  # exact to a pixel
        (box,) = case.boxes
        i0, j0, i1, j1 = (int(v) for v in box["box"])
        assert box["label"] == label and mask[i0:i1, j0:j1].sum() == mask.sum()
        normal = ultrasound(label="normal", seed=seed)  # same tissue, probe position and speckle
        assert case.image.array[0][mask].mean() < normal.image.array[0][mask].mean()  # hypoechoic


def test_malignant_lesions_are_less_round_and_more_often_taller_than_wide():
    benign = [ultrasound(label="benign", seed=s) for s in range(12)]
    malignant = [ultrasound(label="malignant", seed=s) for s in range(12)]
    assert max(c.truth["circularity"] for c in malignant) < min(c.truth["circularity"] for c in benign)
    assert sum(c.truth["taller_than_wide"] for c in malignant) >= 8
    assert not any(c.truth["taller_than_wide"] for c in benign)
    # The masks show it too: irregular, spiculated outlines fill less of their convex hull.
    measure = pytest.importorskip("skimage.measure")
    solidity = {
        name: np.mean([measure.regionprops(c.mask.array[0].astype(int))[0].solidity for c in cases])
        for name, cases in (("benign", benign), ("malignant", malignant))
    }
    assert solidity["malignant"] < solidity["benign"] - 0.08


def test_shadowing_darkens_and_cysts_brighten_what_lies_behind():
    seen = set()
    for seed in range(20):
        for label in ("benign", "malignant"):
            case = ultrasound(label=label, seed=seed)
            i0, _, i1, j1 = (int(v) for v in case.boxes[0]["box"])
            if j1 + 10 > 128:
                continue
            behind = (slice(i0 + 2, i1 - 2), slice(j1 + 2, min(j1 + 25, 128)))
            lesion = case.image.array[0][behind].astype(float).mean()
            normal = ultrasound(label="normal", seed=seed).image.array[0][behind].astype(float).mean()
            posterior = case.truth["posterior"]
            if posterior == "shadowing":
                assert lesion < normal - 10, seed
            elif posterior == "enhancement":
                assert lesion > normal + 3, seed
            seen.add(posterior)
    assert {"shadowing", "enhancement"} <= seen
