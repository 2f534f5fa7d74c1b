"""DICOM SR of detections: written with write_detection_sr, read back with highdicom, regions on the boxes."""

from __future__ import annotations

import numpy as np
import pytest

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

from pydicom.sr.codedict import codes  # noqa: E402

from medsight.errors import GeometryError, UnsupportedError  # noqa: E402
from medsight.image import Image  # noqa: E402
from medsight.io import read, write_detection_sr, write_dicom_series  # noqa: E402
from medsight.io.dicom._sr import LOCAL_SCHEME  # noqa: E402
from medsight.tasks.detect.boxes import boxes_to_mm  # noqa: E402
from tests.test_image import oblique_affine  # noqa: E402


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """An oblique CT series of 6 slices, read back: the grid predictions land on."""
    folder = tmp_path_factory.mktemp("sr") / "ct"
    volume = Image(np.zeros((1, 40, 36, 6), np.int16), oblique_affine(spacing=(0.7, 0.9, 2.0)))
    write_dicom_series(volume, folder, patient={"PatientID": "P1", "PatientName": "Test^Sr"})
    return read(folder)


def _uids(files) -> list[str]:
    return [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]


def _region_uid(region) -> str:
    return str(region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID)


def _region_mm(region, source) -> np.ndarray:
    """The region's points in RAS+ mm through the source instance's own geometry (PS3.3 C.7.6.2.1.1)."""
    row, column = np.array(source.ImageOrientationPatient, float).reshape(2, 3)
    spacing = np.array(source.PixelSpacing, float)  # [between rows, between columns]
    points = np.asarray(region.value, float) - 0.5  # SCOORD (0.5, 0.5) is the first pixel's centre
    lps = np.array(source.ImagePositionPatient, float) + np.outer(points[:, 0] * spacing[1], row)
    lps += np.outer(points[:, 1] * spacing[0], column)
    return lps * [-1, -1, 1]


def test_3d_boxes_become_volumetric_regions_slice_by_slice(series, tmp_path):
    files = series.metadata["files"]
    boxes = np.array([[3.0, 4.0, 1.2, 13.5, 20.0, 3.5], [0.0, 0.0, 0.0, 40.0, 36.0, 6.0]])
    path = write_detection_sr(
        boxes, ["nodule", "ground-glass opacity"], [0.9, 0.25], files, tmp_path / "sr.dcm"
    )
    sr = hd.sr.srread(path)
    assert isinstance(sr, hd.sr.Comprehensive3DSR) and sr.PatientID == "P1"
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "UNVERIFIED"
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == 2 and not sr.content.get_planar_roi_measurement_groups()
    uids = _uids(files)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    for group, box, slices in zip(groups, boxes, [range(1, 4), range(6)]):
        regions = group.roi
        # One rectangle per slice the box covers (slice v spans [v, v + 1)), on that slice's instance.
        assert [_region_uid(r) for r in regions] == [uids[k] for k in slices]
        for region, k in zip(regions, slices):
            assert region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
            points = np.asarray(region.value)
            np.testing.assert_allclose(points[0], points[-1])  # closed
            np.testing.assert_allclose([*points.min(0), *points.max(0)], box[[0, 1, 3, 4]], atol=1e-5)
            # In patient space, the region is the box's section through the centre of slice k.
            section = np.array([[box[0], box[1], k + 0.5, box[3], box[4], k + 0.5]])
            corners = boxes_to_mm(section, series.affine)["corners_mm"][0]
            mm = _region_mm(region, sources[k])
            np.testing.assert_allclose(mm[[0, 2]], corners, atol=1e-3)
    assert groups[0].finding_type == codes.SCT.Nodule
    local = groups[1].finding_type
    assert local.scheme_designator == LOCAL_SCHEME and local.meaning == "ground-glass opacity"
    for group, score in zip(groups, [0.9, 0.25]):
        (certainty,) = group.get_measurements(name=codes.DCM.CertaintyOfFinding)
        assert certainty.value == pytest.approx(100 * score) and certainty.unit == codes.UCUM.Percent
    # Every source instance is in the evidence and the image library.
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert {str(r.ReferencedSOPInstanceUID) for r in evidence.ReferencedSOPSequence} == set(uids)


def test_2d_box_is_a_planar_region_on_the_single_instance(tmp_path):
    folder = tmp_path / "dx"
    write_dicom_series(
        Image(np.zeros((1, 64, 48), np.int16), oblique_affine(spacing=(0.2, 0.3, 1.0))), folder
    )
    image = read(folder)
    (source,) = image.metadata["files"]
    box = [10.25, 3.0, 30.0, 8.75]
    path = write_detection_sr([box], ["mass"], [0.5], [source], tmp_path / "sr.dcm")
    (group,) = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    assert group.finding_type == codes.SCT.Mass
    assert _region_uid(group.roi) == _uids([source])[0]
    points = np.asarray(group.roi.value)
    np.testing.assert_allclose([*points.min(0), *points.max(0)], box, atol=1e-5)
    corners = boxes_to_mm(np.array([box]), image.affine)["corners_mm"][0]
    np.testing.assert_allclose(_region_mm(group.roi, pydicom.dcmread(source))[[0, 2]], corners, atol=1e-3)


def test_no_findings_is_a_report_that_says_so(series, tmp_path):
    files = series.metadata["files"]
    path = write_detection_sr([], [], [], files, tmp_path / "sr.dcm")
    sr = hd.sr.srread(path)
    assert not sr.content.get_volumetric_roi_measurement_groups()
    (group,) = sr.content.get_image_measurement_groups()
    assert group.finding_type == codes.SCT.Absent


def test_boxes_off_the_source_or_of_the_wrong_dimension_are_refused(series, tmp_path):
    files = series.metadata["files"]
    with pytest.raises(GeometryError, match="outside the source image"):
        write_detection_sr([[0, 0, 0, 41, 10, 2]], ["nodule"], [0.5], files, tmp_path / "a.dcm")
    with pytest.raises(GeometryError, match="outside the source image"):
        write_detection_sr([[0, 0, 5, 10, 10, 7]], ["nodule"], [0.5], files, tmp_path / "a.dcm")
    with pytest.raises(UnsupportedError, match="2D boxes on a series of 6 files"):
        write_detection_sr([[0, 0, 10, 10]], ["nodule"], [0.5], files, tmp_path / "a.dcm")
    assert not (tmp_path / "a.dcm").exists()
