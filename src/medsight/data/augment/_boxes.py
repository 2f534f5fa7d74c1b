"""Moving boxes with the forward map of a spatial transform."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

# Fixed-point steps that invert an elastic warp at box corners; displacements are
# smooth and a few voxels large, so the error after these is far below a voxel.
_INVERSE_STEPS = 5
# A clipped box thinner than this (in voxels) along an axis has left the image.
_MIN_EXTENT = 1e-3


def move_boxes(
    boxes: list[torch.Tensor],
    matrix: torch.Tensor,
    spatial_shape: tuple[int, ...],
    displacement: torch.Tensor | None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The axis-aligned bounds of each box's moved corners, clipped to the image.

    Parameters
    ----------
    boxes : list of torch.Tensor
        Per item ``(N, 2 * ndim)`` corner boxes (see `Batch`).
    matrix : torch.Tensor, shape (B, ndim + 1, ndim + 1)
        Forward maps on centred voxel coordinates, float64 on the CPU.
    spatial_shape : tuple of int
    displacement : torch.Tensor, shape (B, ndim, *control), optional
        Elastic control displacements (voxels), as added to the sampling grid.

    Returns
    -------
    boxes, keep : list of torch.Tensor
        The moved boxes without those that left the image, and per item a bool
        ``(N,)`` tensor of which input boxes they are.
    """
    ndim = len(spatial_shape)
    moved, keep = [], []
    for b, item in enumerate(boxes):
        device = item.device
        size = torch.tensor(spatial_shape, dtype=torch.float64, device=device)
        m = matrix[b].to(device)
        linear, offset = m[:ndim, :ndim], m[:ndim, ndim]
        centred = _corners(item.double()) - size / 2  # (N, 2**ndim, ndim)
        points = centred @ linear.T + offset + size / 2
        if displacement is not None and bool(displacement[b].any()) and len(item):
            field = displacement[b].to(device=device, dtype=torch.float64)
            for _ in range(_INVERSE_STEPS):
                points = (centred - _field_at(field, points, size)) @ linear.T + offset + size / 2
        lo = torch.minimum(torch.maximum(points.amin(dim=1), torch.zeros_like(size)), size)
        hi = torch.minimum(torch.maximum(points.amax(dim=1), torch.zeros_like(size)), size)
        inside = ((hi - lo) > _MIN_EXTENT).all(dim=1)
        moved.append(torch.cat([lo, hi], dim=1)[inside].to(item.dtype))
        keep.append(inside)
    return moved, keep


def _corners(boxes: torch.Tensor) -> torch.Tensor:
    """``(N, 2**ndim, ndim)``: every combination of lower and upper coordinates."""
    ndim = boxes.shape[1] // 2
    lo, hi = boxes[:, :ndim], boxes[:, ndim:]
    corners = [
        torch.stack([hi[:, a] if upper else lo[:, a] for a, upper in enumerate(choice)], dim=1)
        for choice in itertools.product((False, True), repeat=ndim)
    ]
    return torch.stack(corners, dim=1)


def _field_at(field: torch.Tensor, points: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """The interpolated displacement ``(ndim, *control)`` at continuous voxel positions."""
    ndim = field.shape[0]
    # The field is spread from the first to the last voxel centre (align_corners=True).
    span = (size - 1).clamp(min=1)
    normalised = 2 * (points - 0.5) / span - 1
    grid = normalised.flip(-1).reshape(1, -1, *[1] * (ndim - 1), ndim)  # grid_sample wants (x, y, z) last
    values = F.grid_sample(field[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return values.reshape(ndim, -1).T.reshape(points.shape)
