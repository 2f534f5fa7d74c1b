"""`Batch`: the image, mask and boxes that augmentation moves together.

Axis and box conventions (the same for 2D and 3D):

- ``image`` has shape ``(B, C, *spatial)``: ``spatial`` is ``(a0, a1)`` in 2D or
  ``(a0, a1, a2)`` in 3D. For tensors built from ``Image.array`` these are the
  voxel axes ``(i, j[, k])``; no axis is reordered anywhere in this package.
- Positions are continuous voxel coordinates along those axes: voxel ``v`` covers
  ``[v, v + 1)``, so its centre is at ``v + 0.5`` and the image spans ``[0, n]``.
- A box is ``[lo_0, lo_1, (lo_2,) hi_0, hi_1, (hi_2)]`` in the order of the tensor's
  spatial axes, with exclusive upper corners: the box of the voxels ``lo..hi - 1``
  along each axis. This is MONAI's corner format with our axis order: MONAI's
  ``xyxy`` names the same numbers when x is ``a0`` and y is ``a1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medsight.errors import GeometryError

__all__ = ["Batch"]


@dataclass(frozen=True)
class Batch:
    """A batch of images with their optional label masks and boxes.

    Parameters
    ----------
    image : torch.Tensor, shape (B, C, *spatial)
        Floating point intensities; ``spatial`` has 2 or 3 axes.
    mask : torch.Tensor, shape (B, M, *spatial), optional
        Integer (or bool) label maps on the image grid, usually ``M = 1``. Spatial
        transforms resample them with nearest neighbour, so no new label value appears;
        voxels that come from outside the image get label 0.
    boxes : list of torch.Tensor, optional
        One ``(N_b, 2 * ndim)`` floating tensor per batch item (``N_b`` may be 0), in
        the corner format of the module docstring.
    labels : list of torch.Tensor, optional
        One ``(N_b,)`` tensor per item (class of each box); it is filtered with the boxes.
    keep : list of torch.Tensor, optional
        Set by spatial transforms: one bool ``(N_b,)`` tensor per item that tells which of
        the boxes given first are still in ``boxes`` (a box that left the image is
        dropped). Use it to drop anything else attached to the boxes.
    """

    image: torch.Tensor
    mask: torch.Tensor | None = None
    boxes: list[torch.Tensor] | None = None
    labels: list[torch.Tensor] | None = None
    keep: list[torch.Tensor] | None = None

    def __post_init__(self):
        image = self.image
        if not isinstance(image, torch.Tensor) or image.ndim not in (4, 5):
            shape = tuple(image.shape) if hasattr(image, "shape") else type(image).__name__
            raise GeometryError(
                f"image must be a tensor (B, C, H, W) or (B, C, D, H, W), got {shape}",
                hint="Add batch and channel axes, e.g. image[None, None]",
            )
        if not image.is_floating_point():
            raise TypeError(f"image must be floating point, got {image.dtype}; convert it with .float()")
        if self.mask is not None:
            mask = self.mask
            if mask.is_floating_point() or mask.is_complex():
                raise TypeError(f"mask must hold integer labels, got {mask.dtype}; convert it with .long()")
            if (
                mask.ndim != image.ndim
                or mask.shape[0] != image.shape[0]
                or mask.shape[2:] != image.shape[2:]
            ):
                raise GeometryError(
                    f"mask shape {tuple(mask.shape)} does not match image shape {tuple(image.shape)}",
                    hint="The mask must be (B, M, *spatial) on the image grid",
                )
            if mask.device != image.device:
                raise ValueError(f"mask is on {mask.device} but image is on {image.device}")
        for name in ("boxes", "labels", "keep"):
            items = getattr(self, name)
            if items is not None and len(items) != self.batch_size:
                raise GeometryError(f"{name} has {len(items)} entries for a batch of {self.batch_size}")
        if self.boxes is not None:
            self._check_boxes()

    def _check_boxes(self):
        width = 2 * self.ndim
        for b, boxes in enumerate(self.boxes):
            if boxes.ndim != 2 or boxes.shape[1] != width or not boxes.is_floating_point():
                raise GeometryError(
                    f"boxes[{b}] must be a floating (N, {width}) tensor, "
                    f"got {tuple(boxes.shape)} {boxes.dtype}"
                )
            if bool((boxes[:, self.ndim :] < boxes[:, : self.ndim]).any()):
                raise GeometryError(
                    f"boxes[{b}] has an upper corner below its lower corner",
                    hint=f"Boxes are {self.ndim} lower then {self.ndim} upper corner values",
                )
            if self.labels is not None and len(self.labels[b]) != len(boxes):
                raise GeometryError(f"labels[{b}] has {len(self.labels[b])} entries for {len(boxes)} boxes")
            if self.keep is not None and int(self.keep[b].sum()) != len(boxes):
                raise GeometryError(
                    f"keep[{b}] marks {int(self.keep[b].sum())} boxes, boxes[{b}] has {len(boxes)}"
                )

    @property
    def batch_size(self) -> int:
        return self.image.shape[0]

    @property
    def ndim(self) -> int:
        """Number of spatial axes: 2 or 3."""
        return self.image.ndim - 2

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape[2:])
