"""The plan's input for detection, shared by training and prediction: letterboxed, boxes scaled alike.

`prepare` scales an image by one factor (its aspect kept) so that it fits the plan's size,
and pads the rest with the image's minimum, at the far end of each axis, so that the
scaling alone maps boxes: ``box_in_input = box * scale`` per axis.
Normalisation is the classification planner's (`medsight.tasks.classify.preprocess.normalize`),
applied to batches on the device.
"""

from __future__ import annotations

import numpy as np

from medsight.errors import GeometryError
from medsight.image import Image
from medsight.tasks.channels import match_channels
from medsight.tasks.classify.preprocess import normalize

__all__ = ["as_planar", "boxes_to_input", "boxes_to_image", "normalize", "prepare"]


def as_planar(image: Image) -> Image:
    """A one-slice volume as the 2D image it holds (same affine); any other image unchanged.

    DICOM radiographs that carry ImagePositionPatient read as volumes of one slice; detection
    works on them, and annotates them, as on 2D images with ``[i0, j0, i1, j1]`` boxes.
    """
    if image.ndim == 3 and image.spatial_shape[2] == 1:
        return Image(image.array[..., 0], image.affine, kind=image.kind, metadata=image.metadata)
    return image


def prepare(image: Image, pre: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(C, *size)`` float32 input of one image before normalisation, and the scale per axis.

    Returns
    -------
    array : ndarray ``(C, *pre["size"])``
    scale : ndarray ``(ndim,)``
        Input voxels per image voxel along each axis (`boxes_to_input`, `boxes_to_image`).
    """
    import torch
    import torch.nn.functional as F

    path = image.metadata.get("path")
    if image.ndim != pre["ndim"]:
        raise GeometryError(f"a {image.ndim}D image, but the model takes {pre['ndim']}D input", path=path)
    array = match_channels(image.array, pre["channels"], path=path)
    size = np.asarray(pre["size"], int)
    shape = np.asarray(array.shape[1:], int)
    factor = float(np.min(size / shape))
    scaled = np.maximum(1, np.minimum(size, np.round(shape * factor).astype(int)))
    if tuple(scaled) != tuple(shape):
        tensor = torch.from_numpy(np.ascontiguousarray(array))[None]
        if factor < 1:
            tensor = F.interpolate(tensor, size=tuple(int(s) for s in scaled), mode="area")
        else:
            mode = "bilinear" if len(scaled) == 2 else "trilinear"
            tensor = F.interpolate(tensor, size=tuple(int(s) for s in scaled), mode=mode, align_corners=False)
        array = tensor[0].numpy()
    out = np.full((array.shape[0], *size), float(array.min()) if array.size else 0.0, np.float32)
    out[(slice(None), *(slice(0, int(s)) for s in scaled))] = array
    return out, scaled / shape


def boxes_to_input(boxes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Image-voxel boxes ``(N, 2d)`` -> boxes on the prepared input."""
    return np.asarray(boxes, np.float64) * np.tile(scale, 2)


def boxes_to_image(boxes: np.ndarray, scale: np.ndarray, spatial_shape) -> np.ndarray:
    """Boxes on the prepared input -> image voxels, clipped to the image."""
    from medsight.tasks.detect.boxes import clip_boxes

    back = np.asarray(boxes, np.float64).reshape(-1, 2 * len(scale)) / np.tile(scale, 2)
    return clip_boxes(back, spatial_shape)[0]
