"""Prediction from model bundles: the plan's preprocessing, then the network, then post-processing."""

from medsight.infer.classify import Classifier

__all__ = ["Classifier"]
