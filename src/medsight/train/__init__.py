"""Training: one loop with checkpoints and resume, temperature calibration, task drivers.

- `fit`: the loop (cached inputs, augmentation, history.jsonl, best weights, checkpoints, budget).
- `train_classifier`: data -> plan -> fit -> calibrate -> model bundle.
"""

from medsight.train.classify import train_classifier
from medsight.train.loop import FitResult, fit

__all__ = ["FitResult", "fit", "train_classifier"]
