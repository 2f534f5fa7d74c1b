"""Detection: boxes (overlap, checks, pixels <-> mm), metrics (COCO AP/mAP, LUNA16 FROC), planning,
the plan's input (letterboxing), and MONAI's RetinaNetDetector set up from the plan (`detector`)."""

from medsight.tasks.detect.boxes import box_iou, boxes_from_mm, boxes_to_mm, check_boxes, clip_boxes
from medsight.tasks.detect.metrics import DetectionSet, average_precision, detection_metrics, froc
from medsight.tasks.detect.plan import fingerprint, make_plan

__all__ = [
    "DetectionSet",
    "average_precision",
    "box_iou",
    "boxes_from_mm",
    "boxes_to_mm",
    "check_boxes",
    "clip_boxes",
    "detection_metrics",
    "fingerprint",
    "froc",
    "make_plan",
]
