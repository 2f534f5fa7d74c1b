import numpy as np
import pytest

from medsight.errors import GeometryError, MedsightError
from medsight.image import LPS_TO_RAS, Image


def oblique_affine(spacing=(0.8, 1.2, 2.5), origin=(10.0, -20.0, 30.0)):
    a, b = np.radians(20), np.radians(-10)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


@pytest.fixture
def volume():
    rng = np.random.default_rng(0)
    return Image(rng.integers(-1000, 1000, (1, 12, 10, 7)).astype(np.int16), oblique_affine())


def test_geometry_properties(volume):
    assert volume.spatial_shape == (12, 10, 7)
    assert volume.ndim == 3
    np.testing.assert_allclose(volume.spacing, (0.8, 1.2, 2.5))
    assert volume.origin == (10.0, -20.0, 30.0)
    np.testing.assert_allclose(volume.direction.T @ volume.direction, np.eye(3), atol=1e-12)
    assert volume.orientation == "RAS"
    lps = Image(np.zeros((1, 2, 2, 2)), LPS_TO_RAS)
    assert lps.orientation == "LPS"
    assert "spacing=(0.8, 1.2, 2.5) mm" in repr(volume) and "RAS" in repr(volume)


def test_bad_arrays_and_affines_are_refused():
    with pytest.raises(GeometryError, match="channel-first"):
        Image(np.zeros((4, 4)))
    with pytest.raises(GeometryError, match="singular"):
        Image(np.zeros((1, 2, 2, 2)), np.zeros((4, 4)))
    with pytest.raises(MedsightError):
        Image(np.zeros((1, 2, 2)), np.eye(3))


def test_sitk_round_trip_keeps_geometry_and_values(volume):
    import SimpleITK as sitk

    itk = volume.to_sitk()
    assert itk.GetSize() == (12, 10, 7)
    # ITK is LPS: x and y of the origin flip sign.
    np.testing.assert_allclose(itk.GetOrigin(), (-10.0, 20.0, 30.0))
    assert sitk.GetArrayFromImage(itk)[3, 2, 1] == volume.array[0, 1, 2, 3]
    back = Image.from_sitk(itk)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-9)


def test_sitk_round_trip_multichannel_and_2d():
    rgb = Image(np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4), LPS_TO_RAS)
    itk = rgb.to_sitk()
    assert itk.GetDimension() == 2 and itk.GetNumberOfComponentsPerPixel() == 3
    back = Image.from_sitk(itk)
    np.testing.assert_array_equal(back.array, rgb.array)
    np.testing.assert_allclose(back.affine, rgb.affine)
    # A 2D plane that is not axial survives as a one-slice 3D ITK image.
    coronal = np.array([[-0.5, 0, 0, 1], [0, 0, 1, 2], [0, -0.5, 0, 3], [0, 0, 0, 1.0]])
    img = Image(np.ones((1, 4, 3)), coronal)
    assert img.to_sitk().GetDimension() == 3
    np.testing.assert_allclose(img.resample(spacing=0.5).affine[:3, 3], img.affine[:3, 3])


def test_nibabel_round_trip(volume):
    nii = volume.to_nibabel()
    np.testing.assert_allclose(nii.affine, volume.affine)
    assert nii.header["sform_code"] == 1
    back = Image.from_nibabel(nii)
    np.testing.assert_array_equal(back.array, volume.array)
    two = Image(np.zeros((2, 3, 4, 5), np.float32))
    assert Image.from_nibabel(two.to_nibabel()).array.shape == (2, 3, 4, 5)


def test_resample_to_spacing_keeps_extent_and_values():
    arr = np.zeros((1, 20, 20, 10), np.float32)
    arr[0, 5:15, 5:15, 3:7] = 100
    img = Image(arr, np.diag([1.0, 1.0, 2.0, 1.0]))
    half = img.resample(spacing=(2.0, 2.0, 2.0))
    assert half.spatial_shape == (10, 10, 10)
    # Centre of the field of view stays put.
    centre_old = img.affine @ np.array([9.5, 9.5, 4.5, 1])
    centre_new = half.affine @ np.array([4.5, 4.5, 4.5, 1])
    np.testing.assert_allclose(centre_old, centre_new, atol=1e-6)
    assert half.array.max() == pytest.approx(100, abs=1e-3)
    assert half.array.dtype == np.float32


def test_resample_labels_nearest_and_like(volume):
    labels = Image((volume.array > 0).astype(np.uint8), volume.affine, kind="label")
    fine = labels.resample(spacing=0.6)
    assert set(np.unique(fine.array)) <= {0, 1}
    assert fine.array.dtype == np.uint8
    back = fine.resample(like=labels)
    assert back.same_grid(labels)
    agreement = np.mean(back.array == labels.array)
    assert agreement > 0.8


def test_reorient_is_exact_and_reversible(volume):
    las = volume.reorient("LPI")
    assert las.orientation == "LPI"
    # The same voxel is at the same place in the patient.
    world = volume.affine @ np.array([2, 3, 4, 1])
    idx = np.linalg.solve(las.affine, world)
    ii = np.round(idx[:3]).astype(int)
    assert las.array[0, ii[0], ii[1], ii[2]] == volume.array[0, 2, 3, 4]
    back = las.reorient("RAS")
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-9)


def test_with_array_checks_shape(volume):
    with pytest.raises(GeometryError):
        volume.with_array(np.zeros((1, 3, 3, 3)))
    seg = volume.with_array(np.zeros((1, 12, 10, 7), np.uint8), kind="label")
    assert seg.kind == "label" and seg.same_grid(volume)
