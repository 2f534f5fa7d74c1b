"""The plan's preprocessing of a segmentation case, shared by training and prediction.

`to_plan_grid` puts an image (and its label map) in the canonical orientation at the plan's
spacing; `normalize` applies the planned intensity normalisation to the array. Prediction
runs the same steps, then maps the labels back onto the input's own grid.
"""

from __future__ import annotations

import numpy as np

from medsight.errors import FormatError, GeometryError
from medsight.image import Image
from medsight.tasks.channels import match_channels

__all__ = ["check_label_map", "normalize", "to_plan_grid"]


def to_plan_grid(image: Image, pre: dict, label: Image | None = None) -> tuple[Image, Image | None]:
    """`image` (channels matched) and its `label` map, RAS-oriented (3D) at the plan's spacing.

    The label map is resampled onto the resampled image's grid with nearest neighbour, so
    both share one grid exactly.
    """
    if image.ndim != pre["ndim"]:
        raise GeometryError(
            f"a {image.ndim}D image, but the model takes {pre['ndim']}D input",
            path=image.metadata.get("path"),
            hint="Train a model of this dimension, or give images like the training ones",
        )
    array = match_channels(image.array, pre["channels"], path=image.metadata.get("path"))
    image = Image(array, image.affine, metadata=image.metadata)
    if image.ndim == 3:
        image = image.reorient("RAS")
        label = label.reorient("RAS") if label is not None else None
    if not np.allclose(image.spacing, pre["spacing"], rtol=1e-3):
        resampled = image.resample(tuple(pre["spacing"]))
    else:
        resampled = image
    if label is not None and not (resampled is image and label.same_grid(image)):
        label = label.resample(like=resampled)
    return resampled, label


def normalize(array: np.ndarray, spec: dict) -> np.ndarray:
    """float32 ``(C, *spatial)``: CT clipped and z-scored with the foreground statistics, or
    each channel z-scored over the image."""
    array = array.astype(np.float32, copy=True)
    if spec["kind"] == "ct":
        lo, hi = spec["clip"]
        np.clip(array, lo, hi, out=array)
        array -= spec["mean"]
        array /= spec["std"]
        return array
    if spec["kind"] == "zscore_image":
        for channel in array:
            channel -= channel.mean()
            channel /= max(float(channel.std()), 1e-6)
        return array
    raise ValueError(f"unknown normalisation {spec['kind']!r}")


def check_label_map(label: Image, image: Image, n_classes: int, *, path=None) -> np.ndarray:
    """The label map's ``(*spatial)`` int array, checked: same grid as `image`, values in range."""
    if label.spatial_shape != image.spatial_shape or not label.same_grid(image, atol=1e-2):
        raise GeometryError(
            f"label map grid {label.spatial_shape} (spacing {tuple(round(s, 3) for s in label.spacing)}) "
            f"does not match its image {image.spatial_shape} "
            f"(spacing {tuple(round(s, 3) for s in image.spacing)})",
            path=path,
            hint="Resample the label map onto the image (medsight convert) or fix the pairing",
        )
    values = label.array[0]
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.mod(values, 1) == 0):
            raise FormatError("label map holds non-integer values", path=path, hint="Give a label map")
        values = values.astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > n_classes:
        raise FormatError(
            f"label values {low}..{high} fall outside the declared classes 0..{n_classes}",
            path=path,
            hint="Declare every class in the manifest's 'classes', or fix the label map",
        )
    return values
