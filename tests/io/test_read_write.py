"""Non-DICOM formats: round trips, atomic writes, format sniffing and clear errors."""

import gzip
import os

import numpy as np
import pytest

from medsight.errors import (
    FormatError,
    GeometryError,
    MedsightError,
    NotFoundError,
    UnsupportedError,
)
from medsight.image import Image
from medsight.io import MedMNISTDataset, read, write
from tests.test_image import oblique_affine


@pytest.fixture
def volume():
    rng = np.random.default_rng(1)
    return Image(rng.integers(-1000, 2000, (1, 9, 8, 5)).astype(np.int16), oblique_affine())


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_round_trip_keeps_voxels_and_affine(tmp_path, volume, suffix):
    path = write(volume, tmp_path / f"vol{suffix}")
    back = read(path)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.array.dtype == volume.array.dtype
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == [f"vol{suffix}"]  # no temporary left behind


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_round_trip_labels_and_channels(tmp_path, suffix):
    labels = Image(np.random.default_rng(2).integers(0, 5, (1, 6, 5, 4)).astype(np.uint8), kind="label")
    back = read(write(labels, tmp_path / f"lab{suffix}"), kind="label")
    assert back.kind == "label"
    np.testing.assert_array_equal(back.array, labels.array)
    multi = Image(np.random.default_rng(3).random((3, 6, 5, 4)).astype(np.float32))
    back = read(write(multi, tmp_path / f"multi{suffix}"))
    np.testing.assert_allclose(back.array, multi.array)


def test_interrupted_write_leaves_no_partial_file(tmp_path, volume, monkeypatch):
    import nibabel as nib

    target = tmp_path / "scan.nii.gz"
    write(volume, target)
    before = target.read_bytes()

    def crash(self, filename):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(nib.Nifti1Image, "to_filename", crash)
    with pytest.raises(KeyboardInterrupt):
        write(Image(np.zeros((1, 2, 2, 2))), target)
    assert target.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nii.gz"]


def test_png_window_and_raster_read(tmp_path):
    ct = Image(
        np.linspace(-1000, 1000, 40 * 30).reshape(1, 40, 30).astype(np.int16),
        metadata={"window_center": 0, "window_width": 400},
    )
    path = write(ct, tmp_path / "ct.png")
    back = read(path)
    assert back.spatial_shape == (40, 30)
    assert back.array.dtype == np.uint8
    # Window 0 +/- 200 HU: -1000 is black, +1000 white, 0 mid-grey.
    assert back.array[0, 0, 0] == 0 and back.array[0, -1, -1] == 255
    mid = np.argmin(np.abs(ct.array[0].astype(float)))
    assert abs(int(back.array[0].ravel()[mid]) - 128) <= 2
    assert "1 mm pixels assumed" in back.metadata["notes"][0]
    wide = read(write(ct, tmp_path / "wide.png", window=(0, 2000)))
    assert 0 < wide.array[0, 5, 5] < 128


def test_png_rgb_and_labels_and_3d(tmp_path):
    rgb = Image(np.random.default_rng(4).integers(0, 255, (3, 7, 5)).astype(np.uint8))
    np.testing.assert_array_equal(read(write(rgb, tmp_path / "rgb.png")).array, rgb.array)
    labels = Image(np.array([[[0, 1], [2, 300]]]), kind="label")
    np.testing.assert_array_equal(read(write(labels, tmp_path / "lab.png")).array, labels.array)
    vol = Image(np.zeros((1, 4, 4, 3)))
    with pytest.raises(GeometryError, match="slice"):
        write(vol, tmp_path / "vol.png")
    assert read(write(vol, tmp_path / "s.png", slice_index=1)).spatial_shape == (4, 4)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "GIF", "BMP"])
def test_other_raster_formats(tmp_path, fmt):
    from PIL import Image as PILImage

    pixels = (np.arange(12 * 9).reshape(9, 12) % 200).astype(np.uint8)  # rows x cols
    path = tmp_path / f"x.{fmt.lower()}"
    PILImage.fromarray(pixels).save(path, format=fmt, **({"quality": 100} if fmt == "JPEG" else {}))
    img = read(path)
    assert img.spatial_shape == (12, 9)  # i runs along a row, j down the columns
    tol = 3 if fmt == "JPEG" else 0
    assert np.abs(img.array[0].T.astype(int) - pixels).max() <= tol


def test_tiff_16bit_keeps_values(tmp_path):
    from PIL import Image as PILImage

    pixels = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    PILImage.fromarray(pixels).save(tmp_path / "x.tif")
    np.testing.assert_array_equal(read(tmp_path / "x.tif").array[0].T, pixels)


def test_medmnist_npz(tmp_path):
    path = tmp_path / "tiny.npz"
    np.savez(
        path,
        train_images=np.zeros((4, 28, 28), np.uint8),
        train_labels=np.array([[0], [1], [1], [0]]),
        val_images=np.zeros((2, 28, 28), np.uint8),
        val_labels=np.array([0, 1]),
        test_images=np.zeros((2, 28, 28), np.uint8),
        test_labels=np.array([[1], [1]]),
    )
    data = read(path)
    assert isinstance(data, MedMNISTDataset)
    assert data.splits == ["train", "val", "test"] and len(data) == 8 and not data.is_3d
    assert data.labels["val"].shape == (2, 1)
    assert data.summary()["splits"]["train"]["label_counts"] == {"0": 2, "1": 2}
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(FormatError, match="not a MedMNIST file"):
        read(tmp_path / "other.npz")


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha", ".png"])
def test_truncated_files_give_clear_errors(tmp_path, suffix):
    img = Image(np.random.default_rng(5).integers(0, 255, (1, 64, 64)).astype(np.uint8))
    if suffix != ".png":
        img = Image(np.random.default_rng(5).random((1, 32, 32, 32)).astype(np.float32))
    path = write(img, tmp_path / f"t{suffix}")
    _truncate(path, 0.5)
    with pytest.raises(FormatError) as info:
        read(path)
    assert path.name in str(info.value)


def test_empty_random_and_missing_files(tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.touch()
    with pytest.raises(FormatError, match="empty"):
        read(empty)
    noise = tmp_path / "noise.dcm"
    noise.write_bytes(os.urandom(5000))
    with pytest.raises(FormatError, match="not a recognised image file despite its .dcm suffix"):
        read(noise)
    with pytest.raises(NotFoundError):
        read(tmp_path / "nope.nii")
    bad_gz = tmp_path / "x.nii.gz"
    bad_gz.write_bytes(gzip.compress(b"hello world" * 100))
    with pytest.raises(FormatError):
        read(bad_gz)
    with pytest.raises(NotFoundError, match="no DICOM files"):
        read(tmp_path)  # a folder with no DICOM in it


def test_write_refuses_unknown_and_two_file_formats(tmp_path, volume):
    with pytest.raises(UnsupportedError, match="cannot write .xyz"):
        write(volume, tmp_path / "v.xyz")
    with pytest.raises(UnsupportedError, match="atomically"):
        write(volume, tmp_path / "v.mhd")
    with pytest.raises(NotFoundError):
        write(volume, tmp_path / "missing" / "v.nii")
    assert all(isinstance(e, MedsightError) for e in (FormatError("x"), UnsupportedError("y")))


@pytest.mark.parametrize("suffix", [".mhd", ".nhdr"])
def test_detached_header_formats_read(tmp_path, volume, suffix):
    import SimpleITK as sitk

    path = tmp_path / f"vol{suffix}"
    sitk.WriteImage(volume.to_sitk(), str(path))
    assert len(list(tmp_path.iterdir())) == 2  # header + data file
    back = read(path)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)
