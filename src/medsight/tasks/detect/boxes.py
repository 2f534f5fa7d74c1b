"""Boxes: overlap, clipping, checks of annotated boxes, and pixels <-> patient millimetres.

Convention (the manifest's and `medsight.data.augment.Batch`'s): a box is
``[i0, j0, i1, j1]`` (3D ``[i0, j0, k0, i1, j1, k1]``) in continuous voxel coordinates
along the image's own axes (``i`` = column / x, ``j`` = row / y, ``k`` = slice). Voxel
``v`` covers ``[v, v + 1)``: lower corners inclusive, upper corners exclusive, so the box of
the single voxel ``(3, 5)`` is ``[3, 5, 4, 6]`` and the image spans ``[0, n]`` on each axis.

In patient space a box is given by its two opposite corners in RAS+ mm (``corners_mm``):
the affine maps voxel *centres*, so the continuous coordinate ``c`` lies at
``affine @ (c - 0.5)``. On an oblique grid the box stays a box along the image axes, and
`boxes_from_mm` maps its corners back exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medsight.errors import FormatError

__all__ = [
    "EDGE_TOLERANCE",
    "box_iou",
    "boxes_from_mm",
    "boxes_to_mm",
    "centres",
    "check_boxes",
    "clip_boxes",
]

# Annotations that overshoot the image by at most this much (voxels) are clipped, not refused:
# tools write the right edge as `width` or `width + 0.5`, and resampling adds rounding.
EDGE_TOLERANCE = 1.0


def _as_boxes(boxes) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, array.shape[-1] if array.ndim == 2 else 4)
    if array.ndim != 2 or array.shape[1] not in (4, 6):
        raise ValueError(f"boxes must be (N, 4) or (N, 6), got shape {array.shape}")
    return array


def box_iou(a, b) -> np.ndarray:
    """Intersection over union of every box in `a` ``(N, 2d)`` with every box in `b` ``(M, 2d)``.

    2D (d = 2) or 3D (d = 3) corner boxes; returns ``(N, M)`` float64. Empty boxes give 0.
    """
    a, b = _as_boxes(a), _as_boxes(b)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"cannot compare {a.shape[1] // 2}D boxes with {b.shape[1] // 2}D boxes")
    d = a.shape[1] // 2
    lo = np.maximum(a[:, None, :d], b[None, :, :d])
    hi = np.minimum(a[:, None, d:], b[None, :, d:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    vol_a = np.clip(a[:, d:] - a[:, :d], 0, None).prod(-1)
    vol_b = np.clip(b[:, d:] - b[:, :d], 0, None).prod(-1)
    union = vol_a[:, None] + vol_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def centres(boxes) -> np.ndarray:
    """Centre of each box, ``(N, d)``, in the boxes' coordinates."""
    boxes = _as_boxes(boxes)
    d = boxes.shape[1] // 2
    return (boxes[:, :d] + boxes[:, d:]) / 2


def clip_boxes(boxes, spatial_shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the image ``[0, n]`` per axis, and which of them keep a positive extent.

    Returns
    -------
    clipped : ndarray ``(N, 2d)``
    keep : ndarray of bool ``(N,)``
        False for boxes that lie wholly outside the image (nothing left after clipping).
    """
    boxes = _as_boxes(boxes)
    d = boxes.shape[1] // 2
    size = np.asarray(spatial_shape, dtype=np.float64)[:d]
    clipped = np.concatenate([np.clip(boxes[:, :d], 0, size), np.clip(boxes[:, d:], 0, size)], axis=1)
    keep = (clipped[:, d:] - clipped[:, :d] > 0).all(axis=1)
    return clipped, keep


def check_boxes(
    boxes: list[dict] | None,
    spatial_shape: Sequence[int],
    *,
    classes: Sequence[str] | None = None,
    path=None,
) -> tuple[np.ndarray, list[str]]:
    """Annotated boxes of one image checked against it; clear errors naming the file.

    Parameters
    ----------
    boxes : list of dict, or None
        ``{"box": [...], "label": name}`` as in the manifest. An empty list (or None) is an
        image without findings: a true negative, kept and returned as zero boxes.
    spatial_shape : sequence of int
        The image's voxel counts along ``i, j[, k]``.
    classes : sequence of str, optional
        The known class names; a box with another label is an error.
    path : str or Path, optional
        The image file, named in errors.

    Returns
    -------
    boxes : ndarray ``(N, 2 * ndim)`` float64, clipped to the image
    labels : list of str

    Raises
    ------
    FormatError
        A box with the wrong number of coordinates for the image's dimension, inverted or empty
        (an upper corner not above its lower one), outside the image by more than
        `EDGE_TOLERANCE` voxels, or with an unknown class.
    """
    ndim = len(spatial_shape)
    rows, labels = [], []
    for n, entry in enumerate(boxes or []):
        coords = entry.get("box") if isinstance(entry, dict) else None
        label = str(entry.get("label", "object")) if isinstance(entry, dict) else ""
        if not isinstance(coords, (list, tuple, np.ndarray)) or len(coords) != 2 * ndim:
            raise FormatError(
                f"box {n} ({coords!r}) does not have {2 * ndim} coordinates for a {ndim}D image",
                path=path,
                hint="2D boxes are [i0, j0, i1, j1], 3D boxes [i0, j0, k0, i1, j1, k1] (voxels)",
            )
        box = np.asarray(coords, dtype=np.float64)
        if not np.all(np.isfinite(box)):
            raise FormatError(f"box {n} {box.tolist()} holds a non-finite coordinate", path=path)
        if np.any(box[ndim:] <= box[:ndim]):
            raise FormatError(
                f"box {n} {box.tolist()} is empty or inverted",
                path=path,
                hint="Upper corners must be greater than lower corners (exclusive upper corner)",
            )
        size = np.asarray(spatial_shape, dtype=np.float64)
        if np.any(box[:ndim] < -EDGE_TOLERANCE) or np.any(box[ndim:] > size + EDGE_TOLERANCE):
            raise FormatError(
                f"box {n} {box.tolist()} lies outside the image "
                f"({' x '.join(map(str, spatial_shape))} voxels)",
                path=path,
                hint="Boxes are in voxel indices of this image (i = column, j = row); check their units",
            )
        if classes is not None and label not in classes:
            raise FormatError(
                f"box {n} has class {label!r}, which is not among the classes {list(classes)}",
                path=path,
                hint="Declare the class, or relabel the box",
            )
        rows.append(box)
        labels.append(label)
    if not rows:
        return np.zeros((0, 2 * ndim)), []
    clipped, keep = clip_boxes(np.stack(rows), spatial_shape)
    if not keep.all():  # within tolerance of the edge but wholly outside: nothing to learn
        raise FormatError(
            f"box {int(np.flatnonzero(~keep)[0])} lies on the image's edge with no area inside it",
            path=path,
        )
    return clipped, labels


def _points_to_mm(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Continuous voxel coordinates ``(N, d)`` -> RAS+ mm ``(N, 3)`` (voxel centres at v + 0.5)."""
    d = points.shape[1]
    homogeneous = np.zeros((len(points), 4))
    homogeneous[:, :d] = points - 0.5
    homogeneous[:, 3] = 1.0
    return (homogeneous @ np.asarray(affine, np.float64).T)[:, :3]


def boxes_to_mm(boxes, affine) -> dict[str, np.ndarray]:
    """Boxes in voxels -> patient space (RAS+ mm) through the image's `affine`.

    Returns
    -------
    dict
        ``corners_mm`` ``(N, 2, 3)``: the lower and upper corner of each box; ``centre_mm``
        ``(N, 3)``; ``size_mm`` ``(N, d)``: the extent along each image axis in mm.
    """
    boxes = _as_boxes(boxes)
    d = boxes.shape[1] // 2
    affine = np.asarray(affine, np.float64)
    lower, upper = _points_to_mm(boxes[:, :d], affine), _points_to_mm(boxes[:, d:], affine)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)[:d]
    return {
        "corners_mm": np.stack([lower, upper], axis=1),
        "centre_mm": (lower + upper) / 2,
        "size_mm": (boxes[:, d:] - boxes[:, :d]) * spacing,
    }


def boxes_from_mm(corners_mm, affine, *, ndim: int) -> np.ndarray:
    """Corner pairs in RAS+ mm ``(N, 2, 3)`` -> voxel boxes ``(N, 2 * ndim)`` on the grid of `affine`.

    The inverse of `boxes_to_mm`; corners are re-ordered per axis, so a box given with its
    corners swapped (a flipped grid) still comes back with lower corners first.
    """
    corners = np.asarray(corners_mm, dtype=np.float64).reshape(-1, 2, 3)
    inverse = np.linalg.inv(np.asarray(affine, np.float64))
    flat = np.concatenate([corners.reshape(-1, 3), np.ones((len(corners) * 2, 1))], axis=1)
    voxels = (flat @ inverse.T)[:, :ndim].reshape(-1, 2, ndim) + 0.5
    return np.concatenate([voxels.min(axis=1), voxels.max(axis=1)], axis=1)
