"""The plan's preprocessing, shared by training and prediction so both see the same input.

`prepare` turns an `Image` into a float32 array ``(C, *size)``: channel count fixed (RGB
to grey by luminance, or grey repeated), resized to the plan's size (area-weighted when
shrinking). `normalize` then applies the planned intensity normalisation to a batch.
"""

from __future__ import annotations

import numpy as np

from medsight.errors import GeometryError
from medsight.image import Image
from medsight.tasks.channels import match_channels

__all__ = ["normalize", "prepare"]


def prepare(image: Image, pre: dict) -> np.ndarray:
    """``(C, *size)`` float32 input of one image, before normalisation."""
    import torch
    import torch.nn.functional as F

    if image.ndim != pre["ndim"]:
        raise GeometryError(
            f"a {image.ndim}D image, but the model takes {pre['ndim']}D input",
            path=image.metadata.get("path"),
        )
    array = match_channels(image.array, pre["channels"], path=image.metadata.get("path"))
    size = tuple(pre["size"])
    if array.shape[1:] == size:
        return np.ascontiguousarray(array)
    tensor = torch.from_numpy(np.ascontiguousarray(array))[None]
    shrinking = all(s <= t for s, t in zip(size, array.shape[1:]))
    if shrinking:
        out = F.interpolate(tensor, size=size, mode="area")
    else:
        out = F.interpolate(
            tensor, size=size, mode="bilinear" if len(size) == 2 else "trilinear", align_corners=False
        )
    return out[0].numpy()


def normalize(batch, spec: dict):
    """Planned intensity normalisation of a torch batch ``(B, C, *spatial)``."""
    if spec["kind"] == "zscore":
        return (batch - spec["mean"]) / spec["std"]
    if spec["kind"] == "ct":  # clip to the foreground percentiles, then scale to about [-1, 1]
        lo, hi = spec["clip"]
        return (batch.clamp(lo, hi) - (lo + hi) / 2) / ((hi - lo) / 2)
    raise ValueError(f"unknown normalisation {spec['kind']!r}")
