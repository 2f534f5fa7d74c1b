"""Brain MRI phantoms: exact tissue volumes, T1 contrast, atrophy at the recorded rates."""

import numpy as np
import pytest

from medsight.data.synthetic import brain_mri
from medsight.data.synthetic.brain import LABEL_NAMES


def _label_volumes(case) -> dict[str, float]:
    labels = case.mask.array[0]
    ml = case.image.voxel_volume / 1000
    return {name: float((labels == value).sum() * ml) for value, name in LABEL_NAMES.items()}


@pytest.fixture(scope="module")
def visits():
    """One patient's four yearly scans (default 2 mm grid)."""
    return [brain_mri(seed=21, timepoint=t) for t in range(4)]


def test_brain_is_deterministic_int16_mr_in_lps():
    case, again = (
        brain_mri(seed=2, spacing=4.0, shape=(44, 52, 40)),
        brain_mri(seed=2, spacing=4.0, shape=(44, 52, 40)),
    )
    other = brain_mri(seed=3, spacing=4.0, shape=(44, 52, 40))
    np.testing.assert_array_equal(case.image.array, again.image.array)
    np.testing.assert_array_equal(case.mask.array, again.mask.array)
    assert case.truth == again.truth
    assert not np.array_equal(case.image.array, other.image.array)
    assert case.image.array.dtype == np.int16 and case.image.orientation == "LPS"
    assert case.image.spacing == (4.0, 4.0, 4.0) and case.mask.same_grid(case.image)


def test_label_volumes_match_the_exact_volumes(visits):
    # What is compared: voxels per label times the voxel volume, against the volume of the
    # continuous shapes (quadrature over directions; shells as differences of nested solids).
    # Labels are volume-preserving rasterisations, so even the ~3 mL hippocampi (about 400
    # voxels) agree to well within 1 %; voxel-centre sampling would miss by 1-2 % there.
    for case in (visits[0], visits[3], brain_mri(seed=5, timepoint=1)):
        measured, exact = _label_volumes(case), case.truth["volumes_ml"]
        assert set(exact) == set(LABEL_NAMES.values())
        for name in exact:
            assert measured[name] == pytest.approx(exact[name], rel=0.01), name
    icv = sum(
        exact[n]
        for n in ("csf", "grey_matter", "white_matter", "ventricles", "hippocampus_left", "hippocampus_right")
    )
    assert icv == pytest.approx(case.truth["intracranial_volume_ml"], rel=1e-9)
    assert 1000 < icv < 1900 and 2 < exact["hippocampus_left"] < 5.5  # adult human sizes


def test_t1_contrast_orders_the_tissues(visits):
    image, labels = visits[0].image.array[0], visits[0].mask.array[0]
    mean = {name: image[labels == value].mean() for value, name in LABEL_NAMES.items()}
    assert mean["white_matter"] > mean["grey_matter"] > mean["ventricles"]
    assert mean["grey_matter"] > mean["csf"] and mean["grey_matter"] > mean["skull"]
    assert (
        mean["hippocampus_left"] < mean["white_matter"] and mean["hippocampus_right"] < mean["white_matter"]
    )
    assert image[labels == 0].mean() < 0.15 * mean["white_matter"]  # air: only Rician noise


def test_atrophy_goes_the_right_way_at_the_recorded_rates(visits):
    rates = visits[0].truth["rates_per_year"]
    assert rates["grey_matter"] < 0 and rates["hippocampus"] < 0 < rates["ventricles"]
    first = visits[0].truth["volumes_ml"]
    measured_first = _label_volumes(visits[0])
    for earlier, later in zip(visits, visits[1:]):
        assert later.days > earlier.days and later.patient == earlier.patient
        a, b = earlier.truth["volumes_ml"], later.truth["volumes_ml"]
        assert b["ventricles"] > a["ventricles"] and b["csf"] > a["csf"]
        assert b["grey_matter"] < a["grey_matter"] and b["hippocampus_left"] < a["hippocampus_left"]
        assert b["skull"] == a["skull"]  # the skull does not age
    last = visits[-1]
    years = last.truth["years"]
    measured_last = _label_volumes(last)
    for name, rate in (
        ("grey_matter", "grey_matter"),
        ("hippocampus_right", "hippocampus"),
        ("ventricles", "ventricles"),
    ):
        expected = (1 + rates[rate]) ** years
        assert last.truth["volumes_ml"][name] / first[name] == pytest.approx(expected, rel=1e-4)
        # The label maps show the same change: a 2 %/year loss is not lost in voxel noise.
        assert measured_last[name] / measured_first[name] == pytest.approx(expected, abs=0.006)


def test_later_scans_move_the_head():
    first, later = (
        brain_mri(seed=4, spacing=4.0, shape=(44, 52, 40)),
        brain_mri(seed=4, timepoint=1, spacing=4.0, shape=(44, 52, 40)),
    )
    assert first.truth["pose"] != later.truth["pose"]
    assert not np.array_equal(first.mask.array, later.mask.array)


def test_too_many_years_is_refused():
    with pytest.raises(ValueError, match="at most 6 years"):
        brain_mri(seed=1, timepoint=7, shape=(44, 52, 40), spacing=4.0)
