"""Star-shaped solids: exact volumes by quadrature and volume-preserving rasterisation."""

import numpy as np
import pytest

from medsight.data.synthetic._shapes import Blob, BlobField, Grid, rotation, select_top


def _wavy(rng, ndim):
    directions = rng.normal(size=(5, ndim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    waves = np.column_stack(
        [rng.uniform(0.02, 0.06, 5), rng.uniform(3, 9, 5), rng.uniform(0, 6, 5), directions]
    )
    return waves


def test_plain_blobs_have_the_ellipsoid_and_ellipse_volumes():
    assert Blob([0, 0, 0], [3, 4, 5]).volume() == pytest.approx(4 / 3 * np.pi * 60, rel=1e-12)
    assert Blob([0, 0], [3, 4]).volume() == pytest.approx(np.pi * 12, rel=1e-12)
    # A folded blob: the quadrature against a Monte Carlo average over random directions.
    rng = np.random.default_rng(0)
    blob = Blob([0, 0, 0], [1, 1, 1], rotation(10, 20, 30), _wavy(rng, 3))
    u = rng.normal(size=(400_000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    monte_carlo = 4 * np.pi * np.mean(blob.radius(u) ** 3) / 3
    assert blob.volume() == pytest.approx(monte_carlo, rel=2e-3)
    assert blob.scaled(2.0).volume() == pytest.approx(8 * blob.volume(), rel=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_labels_hold_the_exact_volume_where_centre_sampling_misses(ndim):
    rng = np.random.default_rng(ndim)
    grid = Grid.centred((40,) * ndim, (1.5,) * ndim)
    worst_centre, worst_label = 0.0, 0.0
    for _ in range(6):
        blob = Blob(
            rng.uniform(-2, 2, ndim),
            rng.uniform(4, 9, ndim),
            rotation(*rng.uniform(0, 90, 1 if ndim == 2 else 3)),
            _wavy(rng, ndim),
        )
        field = BlobField(blob, grid)
        exact = blob.volume() / grid.voxel_volume
        worst_centre = max(worst_centre, abs((field.rho <= 1).sum() / exact - 1))
        worst_label = max(worst_label, abs(field.labels().sum() - exact))
        # The occupancy estimates the partial volume of every voxel: its sum is near the volume.
        assert field.occupancy().sum() == pytest.approx(exact, rel=0.05)
    assert worst_label <= 0.5  # exact to the nearest voxel
    assert worst_centre > 0.002  # what plain voxel-centre rasterisation would have given


def test_select_top_takes_the_most_occupied_voxels():
    occupancy = np.array([[1.0, 0.2, 0.7], [0.0, 1.0, 0.5]])
    assert select_top(occupancy, 3).tolist() == [[True, False, True], [False, True, False]]
    assert select_top(occupancy, 1).sum() == 1 and select_top(occupancy, 0).sum() == 0
    assert select_top(occupancy, 6).all()


def test_containment_and_surface_points():
    outer = Blob([0, 0, 0], [10, 12, 8])
    inner = Blob([1, 0, 0], [3, 3, 3])
    assert outer.contains(inner.surface_points()).all()
    assert not inner.contains(outer.surface_points()).any()
    lo, hi = outer.bounds()
    assert np.allclose(hi, [10, 12, 8]) and np.allclose(lo, [-10, -12, -8])
