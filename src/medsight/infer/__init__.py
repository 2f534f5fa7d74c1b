"""Prediction from model bundles (torch or ONNX Runtime) and evaluation on a dataset split."""

from medsight.infer.classify import Classifier
from medsight.infer.evaluate import evaluate_classifier
from medsight.infer.evaluate_segment import SegmentationCase, evaluate_segmentations
from medsight.infer.onnx import OnnxClassifier, export_onnx, load_predictor
from medsight.infer.segment import Segmenter, evaluate_segmenter

__all__ = [
    "Classifier",
    "OnnxClassifier",
    "SegmentationCase",
    "Segmenter",
    "evaluate_classifier",
    "evaluate_segmentations",
    "evaluate_segmenter",
    "export_onnx",
    "load_predictor",
]
