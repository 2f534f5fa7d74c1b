"""DICOM series writer: pixels, geometry, validity, atomicity (checked with pydicom and SimpleITK)."""

from __future__ import annotations

import datetime
import os
import warnings

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
sitk = pytest.importorskip("SimpleITK")

from medsight.errors import (
    GeometryError,
    MissingDependencyError,
    SeriesError,
    UnsupportedError,
)
from medsight.image import LPS_TO_RAS, Image
from medsight.io._atomic import atomic_path
from medsight.io.dicom._write import TRANSFER_SYNTAXES, write_series

TS_NAMES = list(TRANSFER_SYNTAXES)


def _rotation(ax: float, az: float) -> np.ndarray:
    a, b = np.deg2rad(az), np.deg2rad(ax)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def _oblique_affine(spacing=(0.7, 0.9, 2.5), flip_k: bool = False) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = _rotation(-35, 20) @ np.diag(spacing)
    if flip_k:
        affine[:3, 2] *= -1
    affine[:3, 3] = [-12.3, 45.6, -78.9]
    return affine


@pytest.fixture(scope="module")
def oblique():
    """An oblique, anisotropic CT-like int16 volume; 40 x 34 so JPEG 2000 can encode it."""
    rng = np.random.default_rng(7)
    array = rng.integers(-1024, 3072, size=(1, 40, 34, 5)).astype(np.int16)
    array[0, 0, 0, :] = [-32768, 32767, 0, -1, 1]  # the int16 extremes survive
    return Image(array, _oblique_affine(), metadata={"modality": "CT"})


def _sitk_read(folder) -> Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return Image.from_sitk(reader.Execute())


def _encoder_available(name: str) -> bool:
    from pydicom.pixels import get_encoder

    uid, package = TRANSFER_SYNTAXES[name]
    return package is None or get_encoder(uid).is_available


@pytest.mark.parametrize("transfer_syntax", TS_NAMES)
def test_round_trip_pydicom_and_sitk(oblique, tmp_path, transfer_syntax):
    if not _encoder_available(transfer_syntax):
        pytest.skip(f"no encoder for {transfer_syntax}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydicom warns on invalid values: there must be none
        files = write_series(oblique, tmp_path / "s", transfer_syntax=transfer_syntax)
    assert [f.name for f in files] == [f"IM{k:05d}.dcm" for k in range(1, 6)]
    assert sorted(os.listdir(tmp_path / "s")) == [f.name for f in files]  # no temp files left

    lps = LPS_TO_RAS @ oblique.affine
    uid, _ = TRANSFER_SYNTAXES[transfer_syntax]
    sop_uids = set()
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == uid
        assert ds.SOPClassUID == pydicom.uid.CTImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.InstanceNumber == k + 1
        assert (ds.Rows, ds.Columns) == (34, 40)
        assert ds.PixelRepresentation == 1 and ds.BitsAllocated == 16
        np.testing.assert_array_equal(ds.pixel_array, oblique.array[0, :, :, k].T)
        np.testing.assert_allclose(
            [float(v) for v in ds.ImagePositionPatient], lps[:3, 3] + k * lps[:3, 2], atol=1e-6
        )
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        np.testing.assert_allclose(iop[:3], lps[:3, 0] / 0.7, atol=1e-9)
        np.testing.assert_allclose(iop[3:], lps[:3, 1] / 0.9, atol=1e-9)
        # PixelSpacing is (row spacing = along j, column spacing = along i)
        assert [float(v) for v in ds.PixelSpacing] == [0.9, 0.7]
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 2.5
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, 0.0)
        sop_uids.add(ds.SOPInstanceUID)
        if k == 0:
            series = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID)
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID) == series
    assert len(sop_uids) == 5

    back = _sitk_read(tmp_path / "s")
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, oblique.array)
    np.testing.assert_allclose(back.affine, oblique.affine, atol=1e-4)


def test_header_fields(oblique, tmp_path):
    patient = {
        "PatientName": "Doe^Jöhn",
        "PatientID": "P042",
        "PatientSex": "F",
        "PatientAge": 45,
        "PatientBirthDate": datetime.date(1980, 2, 29),
    }
    study = pydicom.uid.generate_uid()
    files = write_series(
        oblique, tmp_path, patient=patient, series_description="Abdomen 2.5mm",
        series_number=7, study_uid=study,
    )  # fmt: skip
    ds = pydicom.dcmread(files[0])
    assert str(ds.PatientName) == "Doe^Jöhn" and ds.PatientID == "P042"
    assert (ds.PatientSex, ds.PatientAge, ds.PatientBirthDate) == ("F", "045Y", "19800229")
    assert (ds.SeriesDescription, ds.SeriesNumber, ds.StudyInstanceUID) == (
        "Abdomen 2.5mm",
        7,
        study,
    )
    assert ds.Manufacturer == "MedSight" and ds.Modality == "CT"
    assert len(ds.StudyDate) == 8 and ds.StudyTime and ds.SeriesDate == ds.StudyDate
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert float(ds.WindowWidth) > 0


def test_patient_fields_are_checked(oblique, tmp_path):
    with pytest.raises(ValueError, match="did you mean 'PatientName'"):
        write_series(oblique, tmp_path, patient={"PatientNmae": "x"})
    with pytest.raises(ValueError, match="PatientSex"):
        write_series(oblique, tmp_path, patient={"PatientSex": "female"})
    assert os.listdir(tmp_path) == []


def test_mr_unsigned_and_secondary_capture(tmp_path):
    array = np.arange(40 * 34 * 2, dtype=np.uint16).reshape(1, 40, 34, 2) * 20  # up to 54380
    image = Image(array, _oblique_affine())
    mr = write_series(image, tmp_path / "mr", modality="MR")
    ds = pydicom.dcmread(mr[1])
    assert ds.SOPClassUID == pydicom.uid.MRImageStorage and ds.PixelRepresentation == 0
    assert "RescaleSlope" not in ds  # MR Image Storage has no Modality LUT
    np.testing.assert_array_equal(ds.pixel_array, array[0, :, :, 1].T)
    back = _sitk_read(tmp_path / "mr")
    np.testing.assert_array_equal(back.array, array)

    ot = write_series(image, tmp_path / "ot", modality="ot", transfer_syntax="rle")
    ds = pydicom.dcmread(ot[0])
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage and ds.Modality == "OT"
    assert ds.ConversionType == "WSD"


def test_rescale_stores_and_restores_values(tmp_path):
    rng = np.random.default_rng(1)
    real = rng.uniform(-2000, 60000, size=(1, 32, 32, 3))  # float, does not fit int16
    image = Image(real, _oblique_affine())
    with pytest.raises(UnsupportedError, match="rescale="):
        write_series(image, tmp_path / "a")
    with pytest.raises(UnsupportedError, match="rescale="):  # integers, but beyond 16 bits
        write_series(Image(np.round(real).astype(np.int32), _oblique_affine()), tmp_path / "a")
    files = write_series(image, tmp_path / "b", rescale=(2.0, 28000.0), transfer_syntax="jpeg2000")
    ds = pydicom.dcmread(files[2])
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (2.0, 28000.0)
    restored = ds.pixel_array * 2.0 + 28000.0
    np.testing.assert_allclose(restored, real[0, :, :, 2].T, atol=1.0)  # half a slope step
    back = _sitk_read(tmp_path / "b")
    np.testing.assert_allclose(back.array, real, atol=1.0)
    # unsigned input whose stored values go negative is stored signed, not wrapped
    unsigned = Image(np.arange(32 * 32 * 2, dtype=np.uint16).reshape(1, 32, 32, 2), _oblique_affine())
    files = write_series(unsigned, tmp_path / "c", rescale=(1.0, 1000.0))
    ds = pydicom.dcmread(files[0])
    assert ds.PixelRepresentation == 1
    np.testing.assert_array_equal(ds.pixel_array + 1000, unsigned.array[0, :, :, 0].T)


def test_2d_image_is_one_file(tmp_path):
    array = np.arange(20 * 16, dtype=np.int16).reshape(1, 20, 16)
    affine = np.diag([0.5, 0.8, 1.0, 1.0])
    affine[:3, 3] = [10, 20, 30]
    files = write_series(Image(array, affine), tmp_path, modality="DX", transfer_syntax="jpegls")
    assert len(files) == 1
    ds = pydicom.dcmread(files[0])
    np.testing.assert_array_equal(ds.pixel_array, array[0].T)
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], [-10, -20, 30])
    assert [float(v) for v in ds.ImageOrientationPatient] == [-1, 0, 0, 0, -1, 0]
    assert ds.SliceThickness is None and "SpacingBetweenSlices" not in ds


def test_left_handed_series_reads_back_in_the_same_place(tmp_path):
    """k against the slice normal: readers sort slices the other way, the world stays put."""
    array = np.random.default_rng(3).integers(0, 1000, size=(1, 12, 10, 4)).astype(np.int16)
    affine = _oblique_affine(flip_k=True)
    write_series(Image(array, affine), tmp_path, transfer_syntax="implicit")
    back = _sitk_read(tmp_path)
    np.testing.assert_array_equal(back.array, array[..., ::-1])
    flipped = affine.copy()
    flipped[:3, 3] = affine[:3, :3] @ [0, 0, 3] + affine[:3, 3]
    flipped[:3, 2] *= -1
    np.testing.assert_allclose(back.affine, flipped, atol=1e-4)


def test_bad_input_raises_clear_errors(oblique, tmp_path):
    with pytest.raises(GeometryError, match="one channel"):
        write_series(Image(np.zeros((2, 8, 8, 3), np.int16)), tmp_path)
    sheared = np.diag([1.0, 1.0, 2.0, 1.0])
    sheared[1, 2] = 0.5  # gantry tilt
    with pytest.raises(GeometryError, match="sheared"):
        write_series(Image(np.zeros((1, 8, 8, 3), np.int16), sheared), tmp_path)
    skewed = np.eye(4)
    skewed[0, 1] = 0.3
    with pytest.raises(GeometryError, match="rectangles"):
        write_series(Image(np.zeros((1, 8, 8, 3), np.int16), skewed), tmp_path)
    with pytest.raises(ValueError, match="did you mean 'jpeg2000'"):
        write_series(oblique, tmp_path, transfer_syntax="jpeg200")
    with pytest.raises(UnsupportedError, match="32 x 32"):
        write_series(Image(np.zeros((1, 20, 16, 2), np.int16)), tmp_path, transfer_syntax="jpeg2000")
    with pytest.raises(UnsupportedError, match="NaN"):
        write_series(Image(np.full((1, 4, 4, 2), np.nan)), tmp_path)
    assert os.listdir(tmp_path) == []
    (tmp_path / "old.dcm").write_bytes(b"x")
    with pytest.raises(SeriesError, match="already holds DICOM files"):
        write_series(oblique, tmp_path)
    with pytest.raises(SeriesError, match="is a file"):
        write_series(oblique, tmp_path / "old.dcm")


def test_missing_encoder_names_the_package(oblique, tmp_path, monkeypatch):
    import pydicom.pixels

    class _Unavailable:
        is_available = False

    monkeypatch.setattr(pydicom.pixels, "get_encoder", lambda uid: _Unavailable())
    with pytest.raises(MissingDependencyError, match="pyjpegls"):
        write_series(oblique, tmp_path, transfer_syntax="jpegls")
    with pytest.raises(MissingDependencyError, match="pylibjpeg-openjpeg"):
        write_series(oblique, tmp_path, transfer_syntax="jpeg2000")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
@pytest.mark.parametrize("new_folder", [False, True])
def test_interrupted_write_leaves_nothing(oblique, tmp_path, monkeypatch, error, new_folder):
    original = pydicom.dataset.Dataset.save_as
    calls = []

    def failing_save_as(self, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 3:  # half a file on disk, then the failure
            with open(filename, "wb") as f:
                f.write(b"\0" * 128 + b"DICM")
            raise error
        return original(self, filename, *args, **kwargs)

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", failing_save_as)
    folder = tmp_path / "new" if new_folder else tmp_path
    with pytest.raises(type(error)):
        write_series(oblique, folder)
    assert len(calls) == 3
    assert all(os.path.basename(c).startswith(".") and ".tmp" in str(c) for c in calls)
    if new_folder:
        assert not folder.exists()
    else:
        assert os.listdir(folder) == []


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "scan.nii.gz"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".scan.")
        assert tmp.name.endswith(".tmp.nii.gz") and tmp.suffixes[-2:] == [".nii", ".gz"]
        assert tmp.exists() and target.read_bytes() == b"old"  # reserved; target untouched
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["scan.nii.gz"]
    with atomic_path(tmp_path / "plain") as tmp:  # no suffix
        assert tmp.name.startswith(".plain.") and tmp.name.endswith(".tmp")
        tmp.write_text("x")
    assert (tmp_path / "plain").read_text() == "x"


def test_atomic_path_cleans_up_on_failure(tmp_path):
    target = tmp_path / "volume.mha"
    target.write_bytes(b"old")
    seen = []
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        seen.append(tmp)
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert not seen[0].exists() and target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["volume.mha"]
    with atomic_path(tmp_path / "a.png") as first, atomic_path(tmp_path / "a.png") as second:
        assert first != second  # concurrent writers never share a temporary file
        first.write_bytes(b"1")
        second.write_bytes(b"2")
    assert (tmp_path / "a.png").read_bytes() == b"1"  # the last to finish wins
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "missing" / "x.nii"):
        pass
