"""DICOM SEG: write_seg -> highdicom -> read_seg round trips on LPS and oblique series; real SEGs."""

from __future__ import annotations

import numpy as np
import pytest

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

from medsight.errors import FormatError, GeometryError, NotAnImageError, UnsupportedError
from medsight.image import LPS_TO_RAS, Image
from medsight.io import read, write_dicom_series
from medsight.io.dicom._seg import is_seg_file, read_seg, write_seg


def _oblique_lps_affine() -> np.ndarray:
    """Rows along L tilted 25 degrees towards P, columns tilted towards H: an oblique LPS grid."""
    a, b = np.deg2rad(25), np.deg2rad(-15)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    lps = np.eye(4)
    lps[:3, :3] = rz @ rx @ np.diag([0.7, 0.9, 2.5])
    lps[:3, 3] = [-40.0, 12.5, -88.0]
    return LPS_TO_RAS @ lps


def _labels(shape) -> np.ndarray:
    """An asymmetric structure (an L in i/j that moves with k) and a small second one, on every slice."""
    labels = np.zeros(shape, np.uint8)
    for k in range(shape[2]):
        labels[2 + k : 12, 3:6, k] = 1
        labels[2 + k : 5 + k, 6:12, k] = 1
    labels[15:18, 1:3, 0] = 2
    labels[16, 12:14, -1] = 2
    return labels


@pytest.fixture(scope="module", params=["axial_lps", "oblique"])
def source(request, tmp_path_factory):
    """A small CT series written as DICOM and read back: the grid a prediction lands on."""
    folder = tmp_path_factory.mktemp("seg") / request.param
    affine = np.diag([-0.7, -0.9, 2.5, 1.0]) if request.param == "axial_lps" else _oblique_lps_affine()
    ct = np.random.default_rng(3).integers(-200, 300, (1, 20, 16, 6)).astype(np.int16)
    write_dicom_series(Image(ct, affine), folder)
    return read(folder), folder


def _label_map(image: Image, labels: np.ndarray) -> Image:
    return image.with_array(labels[None], kind="label")


def test_round_trip_on_the_source_grid(source, tmp_path):
    image, folder = source
    labels = _labels(image.spatial_shape)
    out = write_seg(
        _label_map(image, labels),
        image.metadata["files"],
        tmp_path / "seg.dcm",
        names={1: "liver", 2: "tumour"},
    )
    back = read_seg(out, source=image)
    assert back.kind == "label" and back.same_grid(image)
    np.testing.assert_array_equal(back.array[0], labels)
    assert back.metadata["label_names"] == {1: "liver", 2: "tumour"}
    np.testing.assert_array_equal(read_seg(out, source=folder).array, back.array)  # a folder as source


def test_own_geometry_matches_the_series_read_from_dicom(source, tmp_path):
    image, _ = source
    labels = _labels(image.spatial_shape)  # both ends of k hold labels: no frame is omitted there
    out = write_seg(_label_map(image, labels), image.metadata["files"], tmp_path / "seg.dcm")
    own = read_seg(out)
    assert own.same_grid(image, atol=1e-4), (own, image)
    np.testing.assert_array_equal(own.array[0], labels)


def test_source_without_dicom_files_is_matched_by_position(source, tmp_path):
    image, _ = source
    labels = _labels(image.spatial_shape)
    out = write_seg(_label_map(image, labels), image.metadata["files"], tmp_path / "seg.dcm")
    as_nifti = Image(image.array, image.affine)  # no metadata["files"]: e.g. the CT converted to NIfTI
    np.testing.assert_array_equal(read_seg(out, source=as_nifti).array[0], labels)


def test_highdicom_reads_it_and_every_source_instance_is_referenced(source, tmp_path):
    image, _ = source
    labels = _labels(image.spatial_shape)
    labels[..., 2] = 0  # an empty slice: its frames are omitted, its instance still referenced
    out = write_seg(
        _label_map(image, labels),
        image.metadata["files"],
        tmp_path / "seg.dcm",
        names={1: "liver"},
        algorithm="TestNet",
    )
    seg = hd.seg.segread(out)
    assert seg.segmentation_type.value == "BINARY" and list(seg.segment_numbers) == [1, 2]
    sources = {str(pydicom.dcmread(f).SOPInstanceUID) for f in image.metadata["files"]}
    assert {sop for _, _, sop in seg.get_source_image_uids()} == sources
    assert seg.NumberOfFrames == 2 * (image.spatial_shape[2] - 1) - 3  # label 2 is on two slices only
    first = seg.SegmentSequence[0]
    assert first.SegmentLabel == "liver" and seg.SegmentSequence[1].SegmentLabel == "label 2"
    assert first.SegmentAlgorithmType == "AUTOMATIC" and first.SegmentAlgorithmName == "TestNet"
    assert first.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Tissue"
    np.testing.assert_array_equal(read_seg(out, source=image).array[0], labels)
    assert is_seg_file(out) and not is_seg_file(image.metadata["files"][0])


def test_gaps_are_renumbered_for_binary_and_kept_for_labelmap(source, tmp_path):
    image, _ = source
    labels = _labels(image.spatial_shape) * 3  # labels 3 and 6
    label_map = _label_map(image, labels)
    label_map.metadata["label_names"] = {3: "kidney", 6: "cyst"}
    binary = read_seg(write_seg(label_map, image.metadata["files"], tmp_path / "b.dcm"), source=image)
    np.testing.assert_array_equal(binary.array[0], labels // 3)
    assert binary.metadata["label_names"] == {1: "kidney", 2: "cyst"}
    out = write_seg(
        label_map, image.metadata["files"], tmp_path / "l.dcm", segmentation_type="labelmap", algorithm=None
    )
    assert hd.seg.segread(out).SegmentSequence[0].SegmentAlgorithmType == "MANUAL"
    for back in (read_seg(out, source=image), read_seg(out)):
        np.testing.assert_array_equal(back.array[0], labels)
        assert back.metadata["label_names"] == {3: "kidney", 6: "cyst"}


def test_label_maps_off_the_source_grid_or_not_labels_are_refused(source, tmp_path):
    image, _ = source
    files = image.metadata["files"]
    labels = _labels(image.spatial_shape)
    with pytest.raises(GeometryError, match="not at the position"):
        write_seg(_label_map(image, labels), files[::-1], tmp_path / "s.dcm")
    with pytest.raises(GeometryError, match="slices"):
        write_seg(_label_map(image, labels), files[:-1], tmp_path / "s.dcm")
    shifted = Image(
        labels[None], image.affine @ np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    )
    with pytest.raises(GeometryError, match="position"):
        write_seg(shifted, files, tmp_path / "s.dcm")
    with pytest.raises(FormatError, match="empty"):
        write_seg(_label_map(image, labels * 0), files, tmp_path / "s.dcm")
    with pytest.raises(FormatError, match="whole numbers"):
        write_seg(image.with_array(labels[None] * 0.5), files, tmp_path / "s.dcm")
    with pytest.raises(UnsupportedError, match="2D"):
        write_seg(Image(labels[None, :, :, 0], kind="label"), files[:1], tmp_path / "s.dcm")
    assert not (tmp_path / "s.dcm").exists()


def test_reading_a_seg_as_an_image_says_what_it_is(source, tmp_path):
    image, _ = source
    out = write_seg(
        _label_map(image, _labels(image.spatial_shape)), image.metadata["files"], tmp_path / "s.dcm"
    )
    with pytest.raises(NotAnImageError, match="Segmentation") as err:
        read(out)
    assert "read_seg" in str(err.value) and "medsight measure" in str(err.value)
    with pytest.raises(FormatError, match="not a DICOM Segmentation"):
        read_seg(image.metadata["files"][0])


@pytest.fixture
def dicom_data(shared_data):
    return shared_data / "dicom"


@pytest.mark.realdata
def test_dcmqi_liver_seg_lands_on_its_ct_like_the_nrrd_label_map(dicom_data):
    folder = dicom_data / "dcmqi_ct3slice"
    ct = read(folder)  # the three CT slices; the SEG and SR in the folder are not images
    liver = read_seg(folder / "liver.dcm", source=ct)
    assert liver.same_grid(ct) and liver.metadata["label_names"] == {1: "Liver"}
    reference = read(folder / "liver_seg.nrrd", kind="label")
    assert reference.same_grid(ct)
    np.testing.assert_array_equal(liver.array > 0, reference.array > 0)
    assert np.all((liver.array[0] > 0).sum(axis=(0, 1)) > 30000)  # liver on every slice
    own = read_seg(folder / "liver.dcm")
    assert own.same_grid(ct) and np.array_equal(own.array, liver.array)


@pytest.mark.realdata
def test_highdicom_seg_files(dicom_data):
    folder = dicom_data / "highdicom"
    ct = read(folder / "ct_image.dcm")
    single = read_seg(folder / "seg_image_ct_binary_single_frame.dcm", source=ct)
    assert single.same_grid(ct) and single.array.sum() > 0
    np.testing.assert_array_equal(
        read_seg(folder / "seg_image_ct_binary_single_frame.dcm").array, single.array
    )
    overlap = read_seg(folder / "seg_image_ct_binary_overlap.dcm")
    assert set(np.unique(overlap.array)) == {0, 1, 2} and "overlap" in overlap.metadata["warnings"][0]
    fractional = read_seg(folder / "seg_image_ct_true_fractional.dcm")
    assert set(np.unique(fractional.array)) == {0, 1}
    with pytest.raises(UnsupportedError, match="source"):
        read_seg(folder / "seg_image_cr_binary.dcm")  # a radiograph's SEG has no geometry of its own
