"""Box utilities: IoU, clipping, checks of annotated boxes, pixels <-> mm on an oblique DICOM series."""

import numpy as np
import pytest

from medsight.errors import FormatError
from medsight.image import Image
from medsight.tasks.detect.boxes import box_iou, boxes_from_mm, boxes_to_mm, check_boxes, clip_boxes
from tests.test_image import oblique_affine


def test_iou_2d_and_3d():
    a = [[0, 0, 10, 10], [0, 0, 2, 2]]
    b = [[5, 0, 15, 10], [20, 20, 30, 30]]
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0], [0, 0]])
    cube = [[0, 0, 0, 2, 2, 2]]
    np.testing.assert_allclose(box_iou(cube, [[1, 0, 0, 3, 2, 2]]), [[4 / 12]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 2)
    with pytest.raises(ValueError, match="2D boxes with 3D"):
        box_iou(a, cube)


def test_clip():
    clipped, keep = clip_boxes([[-3, 2, 5, 12], [20, 20, 30, 30]], (10, 10))
    np.testing.assert_array_equal(clipped[0], [0, 2, 5, 10])
    assert keep.tolist() == [True, False]


def test_check_boxes_keeps_true_negatives_and_clips_small_overshoot():
    boxes, labels = check_boxes([], (64, 48))
    assert boxes.shape == (0, 4) and labels == []
    boxes, labels = check_boxes(None, (64, 48, 10))
    assert boxes.shape == (0, 6)
    boxes, labels = check_boxes(
        [{"box": [60, 40, 64.5, 48.5], "label": "nodule"}], (64, 48), classes=["nodule"]
    )
    np.testing.assert_array_equal(boxes, [[60, 40, 64, 48]])
    assert labels == ["nodule"]


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ([10, 10, 5, 20], "empty or inverted"),
        ([10, 10, 10, 20], "empty or inverted"),
        ([10, 10, 80, 20], "outside the image"),
        ([-5, 10, 8, 20], "outside the image"),
        ([1, 2, 3], "does not have 4 coordinates"),
        ([1, 2, 3, 4, 5, 6], "does not have 4 coordinates"),
    ],
)
def test_check_boxes_errors_name_the_file(box, message):
    with pytest.raises(FormatError, match=message) as info:
        check_boxes([{"box": box, "label": "nodule"}], (64, 48), path="images/a.png")
    assert str(info.value).startswith("images/a.png: ")


def test_check_boxes_refuses_unknown_class():
    with pytest.raises(FormatError, match="'polyp', which is not among the classes"):
        check_boxes([{"box": [1, 1, 4, 4], "label": "polyp"}], (64, 48), classes=["nodule"], path="a.png")


def test_mm_of_a_voxel_box():
    affine = np.diag([0.5, 2.0, 1.0, 1.0])
    affine[:3, 3] = [10, 20, 0]
    out = boxes_to_mm([[2, 3, 4, 5]], affine)  # voxels 2-3 along i, 3-4 along j; 2D: in the plane k = 0
    # Lower corner: voxel centre (2, 3) minus half a voxel: (10 + 0.5 * 1.5, 20 + 2 * 2.5).
    np.testing.assert_allclose(out["corners_mm"][0], [[10.75, 25.0, 0.0], [11.75, 29.0, 0.0]])
    np.testing.assert_allclose(out["size_mm"][0], [1.0, 4.0])
    np.testing.assert_allclose(out["centre_mm"][0], [11.25, 27.0, 0.0])


def test_round_trip_pixel_mm_pixel_on_oblique_dicom(tmp_path):
    """A box on an oblique DICOM series lands where the original geometry says, and comes back."""
    pytest.importorskip("pydicom")
    from medsight.io import read, write_dicom_series

    affine = oblique_affine(spacing=(0.7, 0.9, 2.0))
    volume = Image(np.zeros((1, 40, 36, 6), np.int16), affine)
    write_dicom_series(volume, tmp_path / "s", patient={"PatientID": "P1"})
    image = read(tmp_path / "s")
    boxes = np.array([[3.0, 4.0, 1.0, 13.5, 20.0, 4.0], [0.0, 0.0, 0.0, 40.0, 36.0, 6.0]])
    mm = boxes_to_mm(boxes, image.affine)
    # The lower corner is the centre of voxel (3, 4, 1) moved back half a voxel along each axis.
    expected = (affine @ [2.5, 3.5, 0.5, 1])[:3]
    np.testing.assert_allclose(mm["corners_mm"][0, 0], expected, atol=1e-3)
    np.testing.assert_allclose(mm["size_mm"][0], [10.5 * 0.7, 16 * 0.9, 3 * 2.0], atol=1e-4)
    back = boxes_from_mm(mm["corners_mm"], image.affine, ndim=3)
    np.testing.assert_allclose(back, boxes, atol=1e-6)
    # 2D: a radiograph's affine (third column the plane normal) round-trips too.
    flat = oblique_affine(spacing=(0.2, 0.2, 1.0))
    box2d = np.array([[10.25, 3.0, 30.0, 8.75]])
    np.testing.assert_allclose(boxes_from_mm(boxes_to_mm(box2d, flat)["corners_mm"], flat, ndim=2), box2d)
