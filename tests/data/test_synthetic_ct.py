import numpy as np

from medsight.data.synthetic import body_ct
from medsight.data.synthetic.ct import ORGANS


def test_phantom_is_deterministic_in_hu_with_matching_labels():
    ct, labels = body_ct(seed=1)
    again, _ = body_ct(seed=1)
    other, _ = body_ct(seed=2)
    np.testing.assert_array_equal(ct.array, again.array)
    assert not np.array_equal(ct.array, other.array)
    assert ct.same_grid(labels) and labels.kind == "label" and ct.array.dtype == np.int16
    assert set(np.unique(labels.array)) == {0, *ORGANS}
    for value, (name, hu) in ORGANS.items():
        mean = ct.array[labels.array == value].mean()
        assert abs(mean - hu) < 10, name  # noise is zero-mean, 15 HU
    assert ct.array[labels.array == 0].mean() < -990  # air
    assert ct.orientation == "LPS" and ct.spacing == (4.0, 4.0, 5.0)
