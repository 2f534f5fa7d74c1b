"""DICOM reading on synthetic series: sorting, rescale, choice of series, irregular stacks."""

import sys

import numpy as np
import pydicom
import pytest

from medsight.errors import (
    FormatError,
    MissingDependencyError,
    NotAnImageError,
    SeriesError,
    UnsupportedError,
)
from medsight.image import Image
from medsight.io import list_series, read, write_dicom_series
from tests.test_image import oblique_affine


@pytest.fixture
def ct():
    rng = np.random.default_rng(7)
    arr = rng.integers(-1024, 1500, (1, 40, 36, 6)).astype(np.int16)
    return Image(arr, oblique_affine(spacing=(0.7, 0.9, 2.0)))


def write(ct, folder, **kw):
    folder.mkdir(exist_ok=True)
    return write_dicom_series(
        ct, folder, patient={"PatientID": "P1", "PatientSex": "F", "PatientAge": "061Y"}, **kw
    )


def test_series_sorted_by_position_not_name_or_instance_number(tmp_path, ct):
    files = write(ct, tmp_path / "s")
    # Scramble names and instance numbers: only positions may decide the order.
    rng = np.random.default_rng(0)
    for n, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = int(rng.integers(1, 100))
        ds.save_as(f)
        f.rename(f.with_name(f"z{rng.integers(1e6):07d}_{n}.dcm"))
    img = read(tmp_path / "s")
    np.testing.assert_array_equal(img.array, ct.array)
    np.testing.assert_allclose(img.affine, ct.affine, atol=1e-4)
    meta = img.metadata
    assert meta["modality"] == "CT" and meta["patient_id"] == "P1" and meta["patient_sex"] == "F"
    assert meta["patient_age"] == 61 and meta["n_files"] == 6 and len(meta["series_uid"]) > 10


def test_rescale_gives_hounsfield_units(tmp_path, ct):
    write(ct, tmp_path / "s", rescale=(1.0, -1024.0))
    assert pydicom.dcmread(next((tmp_path / "s").iterdir())).RescaleIntercept == -1024
    img = read(tmp_path / "s")
    np.testing.assert_array_equal(img.array, ct.array)
    assert img.array.dtype == np.int16


def test_float_rescale(tmp_path, ct):
    write(ct, tmp_path / "s", rescale=(0.5, -1024.0))
    img = read(tmp_path / "s")
    assert img.array.dtype == np.float32
    assert np.abs(img.array - ct.array).max() <= 0.5


@pytest.mark.parametrize("syntax", ["implicit", "jpeg2000", "rle", "jpegls"])
@pytest.mark.parametrize("imagecodecs", [True, False], ids=["imagecodecs", "pydicom-plugins"])
def test_transfer_syntaxes_decode_identically(tmp_path, ct, syntax, imagecodecs, monkeypatch):
    if not imagecodecs:  # the fallback decoders must give the same voxels
        monkeypatch.setitem(sys.modules, "imagecodecs", None)
    write(ct, tmp_path / "s", transfer_syntax=syntax)
    np.testing.assert_array_equal(read(tmp_path / "s").array, ct.array)


def test_missing_decoder_names_the_package(tmp_path, ct, monkeypatch):
    from pydicom.pixels.decoders.base import Decoder

    write(ct, tmp_path / "s", transfer_syntax="jpeg2000")
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    with pytest.raises(MissingDependencyError, match="pylibjpeg-openjpeg"):
        read(tmp_path / "s")


def test_folder_with_two_series_needs_a_choice(tmp_path, ct):
    write(ct, tmp_path / "both", series_number=3, series_description="AX")
    other = Image(ct.array[..., :4] + 1, ct.affine)
    write(other, tmp_path / "b2", series_number=7)
    for f in (tmp_path / "b2").iterdir():
        f.rename(tmp_path / "both" / f"b_{f.name}")
    found = list_series(tmp_path / "both")
    assert [s.series_number for s in found] == [3, 7] and all(s.is_image for s in found)
    with pytest.raises(SeriesError, match="2 image series") as info:
        read(tmp_path / "both")
    assert found[0].series_uid in str(info.value) and "--series" in str(info.value)
    assert read(tmp_path / "both", series=7).spatial_shape == (40, 36, 4)
    np.testing.assert_array_equal(read(tmp_path / "both", series=found[0].series_uid).array, ct.array)
    with pytest.raises(SeriesError, match="no series matches"):
        read(tmp_path / "both", series="1.2.3")


def test_missing_slice_is_reported_or_resampled(tmp_path, ct):
    files = write(ct, tmp_path / "s")
    files[2].unlink()
    with pytest.raises(SeriesError, match="1 slice\\(s\\) missing") as info:
        read(tmp_path / "s")
    assert "irregular" in str(info.value)
    img = read(tmp_path / "s", irregular="resample")
    assert img.spatial_shape == (40, 36, 6)
    np.testing.assert_allclose(img.affine, ct.affine, atol=1e-4)
    expected = (ct.array[..., 1].astype(np.float32) + ct.array[..., 3]) / 2
    np.testing.assert_allclose(img.array[..., 2], expected, atol=1e-3)
    assert any("interpolated" in w for w in img.metadata["warnings"])


def test_uneven_spacing_tilt_and_duplicates(tmp_path, ct):
    files = write(ct, tmp_path / "s")

    def move(f, delta):
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [float(v) + d for v, d in zip(ds.ImagePositionPatient, delta)]
        ds.save_as(f)

    normal = np.cross(*np.split(np.array(pydicom.dcmread(files[0]).ImageOrientationPatient, float), 2))
    move(files[3], 0.7 * normal)
    with pytest.raises(SeriesError, match="not uniform"):
        read(tmp_path / "s")
    move(files[3], -0.7 * normal)
    # Shear every slice sideways in proportion to k: a gantry tilt.
    row = np.array(pydicom.dcmread(files[0]).ImageOrientationPatient[:3], float)
    for k, f in enumerate(files):
        move(f, 0.3 * k * row)
    with pytest.raises(UnsupportedError, match="tilt"):
        read(tmp_path / "s")
    dup = write(ct, tmp_path / "d")
    ds = pydicom.dcmread(dup[0])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "d" / "copy.dcm")
    with pytest.raises(SeriesError, match="more than once"):
        read(tmp_path / "d")


def test_mixed_sizes_in_one_series(tmp_path, ct):
    files = write(ct, tmp_path / "s")
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    small = Image(ct.array[:, :10, :8, :1], ct.affine)
    write(small, tmp_path / "x", series_uid=uid)
    for f in (tmp_path / "x").iterdir():
        f.rename(tmp_path / "s" / "extra.dcm")
    with pytest.raises(SeriesError, match="mixes image sizes"):
        read(tmp_path / "s")


def test_truncated_and_pixel_less_files(tmp_path, ct):
    files = write(ct, tmp_path / "s")
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError) as info:
        read(files[0])
    assert files[0].name in str(info.value)
    ds = pydicom.dcmread(files[1])
    del ds.PixelData
    ds.save_as(files[1])
    with pytest.raises(FormatError, match="no pixel data"):
        read(files[1])


def test_single_slice_and_2d_radiograph(tmp_path, ct):
    files = write(ct, tmp_path / "s")
    one = read(files[0])
    assert one.spatial_shape == (40, 36, 1)
    np.testing.assert_allclose(one.affine[:3, :2], ct.affine[:3, :2], atol=1e-4)
    ds = pydicom.dcmread(files[0])
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient"):
        delattr(ds, keyword)
    ds.Modality = "DX"
    ds.PatientOrientation = ["L", "F"]
    ds.save_as(tmp_path / "dx.dcm")
    dx = read(tmp_path / "dx.dcm")
    assert dx.ndim == 2 and dx.orientation == "LI"


def test_enhanced_multiframe(tmp_path, ct):
    hd = pytest.importorskip("highdicom")
    files = write(ct, tmp_path / "s")
    legacy = [pydicom.dcmread(f) for f in files]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        legacy_datasets=legacy,
        series_instance_uid=hd.UID(),
        series_number=9,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    enhanced.save_as(tmp_path / "enhanced.dcm")
    img = read(tmp_path / "enhanced.dcm")
    np.testing.assert_array_equal(img.array, ct.array)
    np.testing.assert_allclose(img.affine, ct.affine, atol=1e-4)


def test_non_image_object_is_named(tmp_path, ct):
    hd = pytest.importorskip("highdicom")
    files = write(ct, tmp_path / "s")
    source = [pydicom.dcmread(f) for f in files]
    mask = (ct.array[0] > 0).transpose(2, 1, 0)  # (frames, rows, cols)
    seg = hd.seg.Segmentation(
        source_images=source,
        pixel_array=mask.astype(np.uint8),
        segmentation_type="BINARY",
        segment_descriptions=[
            hd.seg.SegmentDescription(
                segment_number=1,
                segment_label="x",
                segmented_property_category=hd.sr.CodedConcept("91723000", "SCT", "Anatomical Structure"),
                segmented_property_type=hd.sr.CodedConcept("10200004", "SCT", "Liver"),
                algorithm_type="MANUAL",
            )
        ],
        series_instance_uid=hd.UID(),
        series_number=2,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="t",
        manufacturer_model_name="t",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(tmp_path / "s" / "seg.dcm")
    with pytest.raises(NotAnImageError, match="Segmentation Storage"):
        read(tmp_path / "s" / "seg.dcm")
    # In a folder the image series is still found and read.
    np.testing.assert_array_equal(read(tmp_path / "s").array, ct.array)
