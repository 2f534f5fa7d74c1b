"""Channel count of an input made to match what a model takes."""

from __future__ import annotations

import numpy as np

from medsight.errors import GeometryError

__all__ = ["match_channels"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def match_channels(array: np.ndarray, channels: int, *, path=None) -> np.ndarray:
    """float32 ``(channels, *spatial)`` from ``(C, *spatial)``: RGB(A) to grey by luminance, or
    grey repeated to RGB; any other mismatch is an error."""
    array = array.astype(np.float32, copy=False)
    if array.shape[0] == channels:
        return array
    if channels == 1 and array.shape[0] in (3, 4):
        return np.tensordot(_LUMA, array[:3], axes=1)[None]
    if channels == 3 and array.shape[0] == 1:
        return np.repeat(array, 3, axis=0)
    raise GeometryError(f"image has {array.shape[0]} channels, the model takes {channels}", path=path)
