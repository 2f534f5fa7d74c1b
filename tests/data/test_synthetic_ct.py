"""Body CT phantoms: HU per organ, exact label volumes, tumours that grow or respond."""

import numpy as np
import pytest

from medsight.data.synthetic import body_ct
from medsight.data.synthetic.ct import LABEL_NAMES


def _find(response: str):
    """The first seed whose patient's tumours follow `response`."""
    for seed in range(60):
        case = body_ct(seed=seed, shape=(64, 52, 36), spacing=(6.0, 6.0, 6.0))
        if case.truth["response"] == response:
            return seed
    raise AssertionError(f"no {response} patient in 60 seeds")


def test_phantom_is_deterministic_in_hu_with_matching_labels():
    ct, again, other = body_ct(seed=1), body_ct(seed=1), body_ct(seed=2)
    np.testing.assert_array_equal(ct.image.array, again.image.array)
    np.testing.assert_array_equal(ct.mask.array, again.mask.array)
    assert ct.truth == again.truth
    assert not np.array_equal(ct.image.array, other.image.array)
    image, labels = ct.image, ct.mask
    assert image.same_grid(labels) and labels.kind == "label" and image.array.dtype == np.int16
    assert image.orientation == "LPS" and image.spacing == (3.0, 3.0, 3.0)
    assert set(np.unique(labels.array)) == {0, *LABEL_NAMES}
    assert image.metadata["modality"] == "CT"


@pytest.mark.parametrize("seed", [0, 7])
def test_organs_have_their_hounsfield_units(seed):
    case = body_ct(seed=seed, site_effect=0)
    hu, labels = case.image.array[0], case.mask.array[0]
    mean = {name: hu[labels == value].mean() for value, name in LABEL_NAMES.items()}
    assert hu[labels == 0].mean() < -950  # air around the patient
    assert 80 < mean["liver"] < 130 and 80 < mean["spleen"] < 140
    assert mean["kidney_left"] > mean["liver"] and mean["aorta"] > 100 and mean["spine"] > 200
    assert mean["tumour"] < mean["liver"] - 20  # hypodense metastases
    assert -120 < mean["body"] < 0  # mostly fat, with muscle, bowel and bone


@pytest.mark.parametrize(("seed", "timepoint"), [(0, 1), (3, 1), (11, 1), (18, 4)])
def test_label_volumes_match_the_exact_volumes(seed, timepoint):
    # Organs and tumours are solids with exact volumes; body, aorta, IVC and spine are
    # defined slice by slice (area x slice spacing). Labels are volume-preserving, so they
    # agree to 1 %, or to one voxel for a tumour that has shrunk to a few voxels (seed 18).
    case = body_ct(seed=seed, timepoint=timepoint)
    labels, ml = case.mask.array[0], case.image.voxel_volume / 1000
    for value, name in LABEL_NAMES.items():
        exact = case.truth["volumes_ml"][name]
        assert abs((labels == value).sum() * ml - exact) <= max(0.01 * exact, ml), name
    assert sum(t["volume_ml"] for t in case.truth["tumours"]) == pytest.approx(
        case.truth["volumes_ml"]["tumour"], abs=1e-3
    )
    assert (
        800 < case.truth["volumes_ml"]["liver"] < 2600 and 80 < case.truth["volumes_ml"]["kidney_left"] < 250
    )


@pytest.mark.parametrize("response", ["progression", "response"])
def test_tumours_change_at_the_recorded_doubling_time(response):
    seed = _find(response)
    first, later = body_ct(seed=seed), body_ct(seed=seed, timepoint=2)
    doubling = first.truth["doubling_time_days"]
    assert (doubling > 0) == (response == "progression") and later.truth["doubling_time_days"] == doubling
    expected = 2 ** (later.days / doubling)
    assert later.days > 150
    for before, after in zip(first.truth["tumours"], later.truth["tumours"]):
        assert after["baseline_volume_ml"] == before["volume_ml"]
        assert after["volume_ml"] / before["volume_ml"] == pytest.approx(
            expected, rel=2e-4
        )  # truth is rounded to 0.1 uL
    grew = (later.mask.array == 9).sum() / (first.mask.array == 9).sum()
    assert grew == pytest.approx(expected, rel=0.02)  # the label maps follow, to a few voxels
    assert (grew > 1) == (response == "progression")
    # Organs do not change; the patient lies a little differently on the table.
    assert later.truth["volumes_ml"]["spleen"] == first.truth["volumes_ml"]["spleen"]
    assert later.truth["shift_mm"] != first.truth["shift_mm"]


def test_tumours_lie_in_their_boxes_inside_the_liver():
    case = body_ct(seed=3)
    labels = case.mask.array[0]
    tumour = labels == 9
    covered = np.zeros_like(tumour)
    assert len(case.boxes) == len(case.truth["tumours"]) >= 1
    for box in case.boxes:
        i0, j0, k0, i1, j1, k1 = (int(v) for v in box["box"])
        covered[i0:i1, j0:j1, k0:k1] |= tumour[i0:i1, j0:j1, k0:k1]
        assert box["label"] == "tumour"
    assert np.array_equal(covered, tumour)
    # Each tumour is wrapped in liver: its neighbours are liver or tumour.
    grown = tumour.copy()
    for axis in range(3):
        grown |= np.roll(tumour, 1, axis) | np.roll(tumour, -1, axis)
    assert set(np.unique(labels[grown & ~tumour])) <= {2}


def test_without_tumours_and_out_of_range():
    case = body_ct(seed=2, tumours=False, shape=(64, 52, 36), spacing=(6.0, 6.0, 6.0))
    assert not (case.mask.array == 9).any() and case.boxes == [] and case.truth["response"] == "stable"
    with pytest.raises(ValueError, match="at most 400 days"):
        body_ct(seed=2, timepoint=6, shape=(64, 52, 36), spacing=(6.0, 6.0, 6.0))


def test_thin_field_of_view_leaves_out_structures_it_misses():
    # Six 12 mm slices about the centre: the lungs lie above them and are simply absent.
    case = body_ct(seed=0, shape=(48, 40, 6), spacing=(8.0, 8.0, 12.0))
    assert case.image.spatial_shape == (48, 40, 6)
    assert (case.image.array > -200).any()  # the body is there
