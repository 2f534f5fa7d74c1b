"""Labels to target arrays and logits to probabilities: the conventions training and prediction share."""

from __future__ import annotations

import numpy as np

__all__ = ["encode_targets", "probabilities"]


def encode_targets(samples, classes: list[str], multilabel: bool) -> np.ndarray:
    """Class indices ``(N,)``, or a 0/1 matrix ``(N, K)`` for multi-label; labels must be known."""
    index = {c: i for i, c in enumerate(classes)}
    if multilabel:
        y = np.zeros((len(samples), len(classes)), np.float32)
        for row, s in enumerate(samples):
            y[row, [index[label] for label in s.labels]] = 1
        return y
    return np.array([index[s.labels[0]] for s in samples], np.int64)


def probabilities(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    """Softmax over classes, or an independent sigmoid per label for multi-label models."""
    if multilabel:
        return 1 / (1 + np.exp(-logits))
    z = logits - logits.max(1, keepdims=True)  # shifted: exp cannot overflow
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
