"""The two halves of every transform: random `sample` and deterministic `apply`.

Parameters are a dict of tensors whose first axis is the batch. They are drawn on
the CPU from a ``torch.Generator`` (float64, int64 or bool), so a seed gives the same
parameters whichever device the images are on, and they turn into JSON losslessly.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from medsight.data.augment._resample import resample
from medsight.data.augment.batch import Batch

__all__ = ["Params", "SpatialTransform", "Transform"]

Params = dict[str, torch.Tensor]


class Transform:
    """Base class: `sample` draws parameters, `apply` uses them and draws nothing."""

    #: Spatial transforms move the mask and boxes too; the others touch the image only.
    spatial: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def sample(self, batch_size: int, spatial_shape: tuple[int, ...], generator: torch.Generator) -> Params:
        """Draw one set of parameters per batch item.

        Parameters
        ----------
        batch_size : int
        spatial_shape : tuple of int
            ``(a0, a1)`` or ``(a0, a1, a2)``: the spatial shape of the images.
        generator : torch.Generator
            A CPU generator; it is the only source of randomness.

        Returns
        -------
        dict of str to torch.Tensor
            Each value has the batch on its first axis.
        """
        raise NotImplementedError

    def apply(self, batch: Batch, params: Params) -> Batch:
        """Apply `params` (from `sample`) to every item of `batch`; inputs are not modified."""
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{self.name}({options})"


class SpatialTransform(Transform):
    """A transform that moves voxels: it describes itself as a forward affine matrix.

    Runs of spatial transforms in a `Pipeline` are composed into one matrix per item
    and resampled once, so an image is interpolated once however many there are.
    """

    spatial: ClassVar[bool] = True

    def matrix(self, params: Params, spatial_shape: tuple[int, ...]) -> torch.Tensor:
        """Forward maps, shape ``(B, ndim + 1, ndim + 1)``, float64.

        They act on homogeneous voxel coordinates centred on the image centre (see
        `Batch` for the axes): a point at ``x`` moves to ``matrix @ (x - centre) + centre``.
        """
        raise NotImplementedError

    def displacement(self, params: Params) -> torch.Tensor | None:
        """Coarse displacement fields ``(B, ndim, *control)`` in voxels, or None."""
        return None

    def apply(self, batch: Batch, params: Params) -> Batch:
        """Resample this transform alone (image padding: the item's minimum, see `Pipeline`)."""
        return resample(batch, self.matrix(params, batch.spatial_shape), self.displacement(params))
