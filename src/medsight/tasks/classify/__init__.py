"""Classification: planning rules, preprocessing and target/probability conventions shared by
training and prediction, metrics."""

from medsight.tasks.classify.metrics import classification_metrics, expected_calibration_error, reliability
from medsight.tasks.classify.plan import fingerprint, make_plan
from medsight.tasks.classify.preprocess import normalize, prepare
from medsight.tasks.classify.targets import encode_targets, probabilities

__all__ = [
    "classification_metrics",
    "encode_targets",
    "expected_calibration_error",
    "fingerprint",
    "make_plan",
    "normalize",
    "prepare",
    "probabilities",
    "reliability",
]
