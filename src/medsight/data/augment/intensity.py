"""Intensity transforms: batched elementwise ops on the image only.

One value per batch item; statistics (minimum, maximum, mean) are per item and
channel. Offsets and noise levels are in the image's units: the default ranges
suit normalised images (zero mean and unit variance, or 0..1).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from medsight.data.augment._draw import log_uniform, positive_range, uniform, value_range
from medsight.data.augment.batch import Batch
from medsight.data.augment.transform import Params, Transform

__all__ = ["Contrast", "Gamma", "GaussianBlur", "GaussianNoise", "ScaleIntensity", "ShiftIntensity"]


def _per_item(values: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Parameters ``(B,)`` as a tensor that broadcasts over ``(B, C, *spatial)``."""
    return values.to(device=image.device, dtype=image.dtype).view(-1, *[1] * (image.ndim - 1))


def _stat_shape(image: torch.Tensor) -> tuple[int, ...]:
    return (*image.shape[:2], *[1] * (image.ndim - 2))


class ScaleIntensity(Transform):
    """Multiply intensities by a factor.

    Parameters
    ----------
    factors : (low, high)
        Range of the factor, drawn uniformly. Parameter ``factor``: ``(B,)``.
    """

    def __init__(self, factors=(0.9, 1.1)):
        self.factors = value_range(factors, name="factors", symmetric=False)

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        return {"factor": uniform(generator, (batch_size,), *self.factors)}

    def apply(self, batch: Batch, params: Params) -> Batch:
        return replace(batch, image=batch.image * _per_item(params["factor"], batch.image))


class ShiftIntensity(Transform):
    """Add an offset to intensities.

    Parameters
    ----------
    offsets : float or (low, high)
        Range of the offset, in intensity units; ``v`` means ``(-v, v)``.
        Parameter ``offset``: ``(B,)``.
    """

    def __init__(self, offsets=0.1):
        self.offsets = value_range(offsets, name="offsets", symmetric=True)

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        return {"offset": uniform(generator, (batch_size,), *self.offsets)}

    def apply(self, batch: Batch, params: Params) -> Batch:
        return replace(batch, image=batch.image + _per_item(params["offset"], batch.image))


class Gamma(Transform):
    """Gamma curve on the item's own intensity range: ``lo + (hi - lo) * t ** gamma``.

    ``t`` is the intensity mapped from ``[lo, hi]`` (the item's minimum and maximum per
    channel) to ``[0, 1]``, so the range is kept and a gamma below 1 brightens.

    Parameters
    ----------
    gammas : (low, high)
        Range of gamma, drawn log-uniformly. Parameter ``gamma``: ``(B,)``.
    """

    def __init__(self, gammas=(0.7, 1.5)):
        self.gammas = positive_range(gammas, name="gammas")

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        return {"gamma": log_uniform(generator, (batch_size,), *self.gammas)}

    def apply(self, batch: Batch, params: Params) -> Batch:
        image = batch.image
        lo, hi = image.flatten(2).aminmax(dim=2)
        lo, span = lo.view(_stat_shape(image)), (hi - lo).view(_stat_shape(image))
        # A constant channel (span 0) maps to t = 0 and back to itself.
        inverse = torch.where(span > 0, 1 / span, torch.zeros_like(span))
        out = (image - lo).mul_(inverse).pow_(_per_item(params["gamma"], image))
        return replace(batch, image=out.mul_(span).add_(lo))


class Contrast(Transform):
    """Stretch intensities about the item's mean: ``mean + factor * (x - mean)``.

    Parameters
    ----------
    factors : (low, high)
        Range of the factor, drawn log-uniformly. Parameter ``factor``: ``(B,)``.
    """

    def __init__(self, factors=(0.75, 1.25)):
        self.factors = positive_range(factors, name="factors")

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        return {"factor": log_uniform(generator, (batch_size,), *self.factors)}

    def apply(self, batch: Batch, params: Params) -> Batch:
        image = batch.image
        mean = image.flatten(2).mean(dim=2).view(_stat_shape(image))
        factor = _per_item(params["factor"], image)
        return replace(batch, image=torch.addcmul(mean * (1 - factor), image, factor))


class GaussianNoise(Transform):
    """Add zero-mean Gaussian noise.

    Parameters
    ----------
    std : float or (low, high)
        Range of the noise standard deviation, in intensity units.

    Notes
    -----
    Parameters ``std``: ``(B,)``, and ``seed``: ``(B,)`` int64, the seed of the item's
    noise field. The field is drawn on the image's device, so a seed gives the same
    noise on every run on one kind of device but not the same on CPU and CUDA.
    """

    def __init__(self, std=(0.0, 0.1)):
        self.std = value_range(std, name="std", symmetric=False)
        if self.std[0] < 0:
            raise ValueError(f"std must not be negative, got {std}")

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        std = uniform(generator, (batch_size,), *self.std)
        seed = torch.randint(0, 2**62, (batch_size,), generator=generator, dtype=torch.int64)
        return {"std": std, "seed": seed}

    def apply(self, batch: Batch, params: Params) -> Batch:
        image = batch.image
        noise = torch.empty_like(image)
        for b, seed in enumerate(params["seed"].tolist()):  # one draw per item, not per voxel
            noise[b].normal_(generator=torch.Generator(device=image.device).manual_seed(seed))
        return replace(batch, image=torch.addcmul(image, noise, _per_item(params["std"], image)))


class GaussianBlur(Transform):
    """Isotropic Gaussian smoothing, one axis at a time, edges replicated.

    Parameters
    ----------
    sigma : float or (low, high)
        Range of the standard deviation in voxels; 0 leaves an item unchanged.
    truncate : float
        Kernel radius in standard deviations (of the largest sigma in the batch).

    Notes
    -----
    Parameter ``sigma``: ``(B,)`` voxels. 2D images are filtered by a grouped
    ``conv2d``; 3D images by banded matrix products along each axis, because oneDNN's
    depthwise ``conv3d`` measured 3 to 20 times slower than BLAS on patches up to 256
    voxels a side.
    """

    def __init__(self, sigma=(0.5, 1.5), *, truncate: float = 3.0):
        self.sigma = value_range(sigma, name="sigma", symmetric=False)
        if self.sigma[0] < 0 or truncate <= 0:
            raise ValueError(
                f"sigma must not be negative and truncate must be positive, got {sigma}, {truncate}"
            )
        self.truncate = float(truncate)

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        return {"sigma": uniform(generator, (batch_size,), *self.sigma)}

    def apply(self, batch: Batch, params: Params) -> Batch:
        image = batch.image
        sigma = params["sigma"].to(torch.float64)
        radius = math.ceil(self.truncate * float(sigma.max())) if len(sigma) else 0
        if radius == 0:
            return batch
        kernels = _gaussian_kernels(sigma, radius).to(device=image.device, dtype=image.dtype)
        blur = _blur_by_conv2d if image.ndim == 4 else _blur_by_matmul
        return replace(batch, image=blur(image, kernels))


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, 2 * radius + 1)`` normalised kernels; sigma 0 gives the identity kernel."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    # A tiny floor turns sigma 0 into exp(0) = 1 at the centre and exp(-inf) = 0 elsewhere.
    kernel = torch.exp(-0.5 * (offsets / sigma.clamp(min=1e-12)[:, None]) ** 2)
    return kernel / kernel.sum(dim=1, keepdim=True)


def _blur_by_conv2d(image: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Separable filtering of ``(B, C, H, W)``, one kernel per item; items and channels are conv groups."""
    radius = kernels.shape[1] // 2
    weight = kernels.repeat_interleave(image.shape[1], dim=0)[:, None, None, :]  # (B * C, 1, 1, k)
    out = image.reshape(1, -1, *image.shape[2:])
    out = F.conv2d(
        F.pad(out, (0, 0, radius, radius), mode="replicate"), weight.transpose(2, 3), groups=len(weight)
    )
    out = F.conv2d(F.pad(out, (radius, radius, 0, 0), mode="replicate"), weight, groups=len(weight))
    return out.view(image.shape)


def _blur_by_matmul(image: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Separable filtering of ``(B, C, *spatial)``: along each axis, a product with a banded matrix.

    Row ``i`` of an axis's matrix holds the item's kernel centred on ``i``; taps that
    fall outside the image are added to the edge voxel (replicated edges).
    """
    size, radius = len(kernels), kernels.shape[1] // 2
    taps = torch.arange(-radius, radius + 1, device=image.device)
    out = image
    for axis, n in enumerate(image.shape[2:]):
        columns = (torch.arange(n, device=image.device)[:, None] + taps).clamp(0, n - 1)
        band = torch.zeros((size, n, n), device=image.device, dtype=image.dtype)
        band.scatter_add_(
            2, columns.expand(size, n, -1), kernels[:, None, :].expand(size, n, -1).contiguous()
        )
        after = math.prod(image.shape[3 + axis :])
        if after == 1:  # the last axis: rows of voxels times the transposed band
            out = out.reshape(size, -1, n) @ band.transpose(1, 2)
        else:
            out = band[:, None] @ out.reshape(size, -1, n, after)
    return out.reshape(image.shape)
