"""Prediction from model bundles (torch or ONNX Runtime) and evaluation on a dataset split."""

from medsight.infer.classify import Classifier
from medsight.infer.evaluate import evaluate_classifier
from medsight.infer.onnx import OnnxClassifier, export_onnx, load_predictor

__all__ = ["Classifier", "OnnxClassifier", "evaluate_classifier", "export_onnx", "load_predictor"]
