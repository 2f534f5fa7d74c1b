"""Segmentation: planning rules, preprocessing, metrics, measurements and post-processing of label maps."""

from medsight.tasks.segment.measure import measure_labels
from medsight.tasks.segment.metrics import histogram_auc, pixel_auc, segmentation_metrics, surface_distances
from medsight.tasks.segment.plan import fingerprint, make_plan, topology
from medsight.tasks.segment.postprocess import apply_postprocessing, choose_postprocessing

__all__ = [
    "apply_postprocessing",
    "choose_postprocessing",
    "fingerprint",
    "histogram_auc",
    "make_plan",
    "measure_labels",
    "pixel_auc",
    "segmentation_metrics",
    "surface_distances",
    "topology",
]
