"""One resampling for a whole run of spatial transforms: image, mask and boxes together."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from medsight.data.augment._boxes import move_boxes
from medsight.data.augment.batch import Batch

PADDINGS = ("minimum", "zeros", "border", "reflection")


def resample(
    batch: Batch,
    matrix: torch.Tensor,
    displacement: torch.Tensor | None = None,
    *,
    padding: str = "minimum",
) -> Batch:
    """Move image, mask and boxes of every item by its forward map.

    Parameters
    ----------
    batch : Batch
    matrix : torch.Tensor, shape (B, ndim + 1, ndim + 1)
        Forward maps on centred voxel coordinates (see `SpatialTransform.matrix`).
    displacement : torch.Tensor, shape (B, ndim, *control), optional
        Elastic displacements in voxels, added to the sampling positions.
    padding : {"minimum", "zeros", "border", "reflection"}
        Image value where the sampling leaves the image: the item's minimum per channel
        (air in CT, background in MR), 0, the nearest edge voxel, or a mirror image.
        Masks always get label 0 there.

    Returns
    -------
    Batch
        Items whose map is the identity keep their tensors; pure flips use
        ``torch.flip`` (exact); all other items are resampled in one batched
        ``grid_sample`` call: bilinear for the image, nearest for the mask.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    ndim, shape = batch.ndim, batch.spatial_shape
    matrix = matrix.to(torch.float64)
    eye = torch.eye(ndim + 1, dtype=torch.float64)
    warped = torch.zeros(batch.batch_size, dtype=torch.bool)
    if displacement is not None:
        warped = displacement.flatten(1).ne(0).any(dim=1)
    still = (matrix == eye).all(dim=2).all(dim=1) & ~warped
    signs = matrix[:, :ndim, :ndim]
    unshifted = (matrix[:, :ndim, ndim] == 0).all(dim=1)
    flip_only = (signs.abs() == eye[:ndim, :ndim]).all(dim=2).all(dim=1) & unshifted & ~warped & ~still
    gridded = ~(still | flip_only)

    image, mask = batch.image, batch.mask
    if not bool(gridded.all()) and not bool(still.all()):  # items are written one group at a time
        fresh = torch.Tensor.clone if bool(still.any()) else torch.empty_like
        image = fresh(image)
        mask = None if mask is None else fresh(mask)
    for b in flip_only.nonzero()[:, 0].tolist():
        dims = [1 + a for a in range(ndim) if signs[b, a, a] < 0]  # item tensors are (C, *spatial)
        image[b] = batch.image[b].flip(dims)
        if mask is not None:
            mask[b] = batch.mask[b].flip(dims)
    if bool(gridded.any()):
        index = gridded.nonzero()[:, 0]
        moved_image, moved_mask = _resample_items(batch, matrix[index], displacement, index, padding)
        if bool(gridded.all()):
            image, mask = moved_image, moved_mask
        else:
            on_device = index.to(image.device)
            image.index_copy_(0, on_device, moved_image)
            if mask is not None:
                mask.index_copy_(0, on_device, moved_mask)

    boxes, labels, keep = batch.boxes, batch.labels, batch.keep
    if boxes is not None:
        boxes, kept = move_boxes(boxes, matrix, shape, displacement)
        if labels is not None:
            labels = [item[k.to(item.device)] for item, k in zip(labels, kept)]
        keep = kept if keep is None else [_compose_keep(old, new) for old, new in zip(keep, kept)]
    return replace(batch, image=image, mask=mask, boxes=boxes, labels=labels, keep=keep)


def _resample_items(batch, matrix, displacement, index, padding):
    """Image and mask of the items `index`, grid-sampled by their forward maps `matrix`."""
    device = batch.image.device
    every = len(index) == batch.batch_size
    on_device = index.to(device)
    theta = _sampling_matrix(matrix, batch.spatial_shape)
    field = None if displacement is None else displacement[index]
    grid = sampling_grid(theta, batch.spatial_shape, field, dtype=batch.image.dtype, device=device)
    image = _sample_image(batch.image if every else batch.image.index_select(0, on_device), grid, padding)
    if batch.mask is None:
        return image, None
    labels = batch.mask if every else batch.mask.index_select(0, on_device)
    # grid_sample needs floats; labels up to 2**24 survive float32 exactly.
    mask = grid_sample(labels.to(grid.dtype), grid, mode="nearest", padding="zeros")
    return image, mask.to(batch.mask.dtype)


def _sample_image(image: torch.Tensor, grid: torch.Tensor, padding: str) -> torch.Tensor:
    if padding == "minimum":
        low = image.flatten(2).amin(dim=2).view(*image.shape[:2], *[1] * (image.ndim - 2))
        return grid_sample(image - low, grid, mode="bilinear", padding="zeros").add_(low)
    return grid_sample(image, grid, mode="bilinear", padding=padding)


def grid_sample(source: torch.Tensor, grid: torch.Tensor, *, mode: str, padding: str) -> torch.Tensor:
    """``F.grid_sample`` (``align_corners=False``) that keeps every CPU thread busy.

    On the CPU grid_sample runs items in parallel but each item on one thread, so a
    batch smaller than the thread count leaves cores idle. Then each item's output is
    cut into slabs along its first axis, sampled as a batch of slabs.
    """
    size, rows = grid.shape[0], grid.shape[1]
    spare = torch.get_num_threads() // size if source.device.type == "cpu" else 1
    slabs = max(k for k in range(1, max(spare, 1) + 1) if rows % k == 0)
    if slabs == 1:
        return F.grid_sample(source, grid, mode=mode, padding_mode=padding, align_corners=False)
    items = []
    for b in range(size):
        slab_grid = grid[b].view(slabs, rows // slabs, *grid.shape[2:])
        part = F.grid_sample(
            source[b : b + 1].expand(slabs, *source.shape[1:]),  # a view: the item is not copied
            slab_grid,
            mode=mode,
            padding_mode=padding,
            align_corners=False,
        )
        items.append(part.transpose(0, 1).reshape(source.shape[1], rows, *part.shape[3:]))
    return items[0][None] if size == 1 else torch.stack(items)


def _sampling_matrix(matrix: torch.Tensor, spatial_shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse maps in grid_sample's normalised coordinates, axes still in tensor order.

    Normalised ``u = (x - n/2) / (n/2)`` is -1 and 1 at the image borders, which is
    grid_sample's meaning with ``align_corners=False``.
    """
    half = torch.tensor([n / 2 for n in spatial_shape] + [1.0], dtype=torch.float64)
    return torch.linalg.inv(matrix) * half[None, :] / half[None, :, None]


def sampling_grid(
    theta: torch.Tensor,
    spatial_shape: tuple[int, ...],
    displacement: torch.Tensor | None,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """``grid_sample`` grid ``(B, *spatial, ndim)`` for normalised inverse maps `theta`.

    The same grid as ``F.affine_grid`` (``align_corners=False``) with the axes of `theta`
    reversed, built from per-axis coordinate vectors by broadcasting: several times
    faster than affine_grid's batched matrix product on the CPU.
    """
    batch_size, ndim = theta.shape[0], len(spatial_shape)
    theta = theta.to(device=device, dtype=dtype)
    ones = [1] * ndim
    centres = []
    for a, n in enumerate(spatial_shape):
        view = [1, *ones]
        view[1 + a] = n
        centres.append(((torch.arange(n, device=device, dtype=dtype) * 2 + 1) / n - 1).view(view))
    if displacement is not None:
        mode = "bilinear" if ndim == 2 else "trilinear"
        field = F.interpolate(
            displacement.to(device=device, dtype=dtype), size=spatial_shape, mode=mode, align_corners=True
        )
    grid = torch.empty((batch_size, *spatial_shape, ndim), device=device, dtype=dtype)
    for a in range(ndim):
        component = theta[:, a, ndim].view(batch_size, *ones)
        for b in range(ndim):  # small broadcasts first, the full-size tensor last
            component = component + theta[:, a, b].view(batch_size, *ones) * centres[b]
        if displacement is not None:
            component = component + field[:, a] * (2 / spatial_shape[a])
        grid[..., ndim - 1 - a] = component  # grid_sample reads (x, y, z): the last axis first
    return grid


def _compose_keep(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Which of the first boxes survive both the earlier drops (`old`) and these (`new`)."""
    keep = old.clone()
    keep[old.nonzero()[:, 0]] = new.to(old.device)
    return keep
