"""Spatial transforms: flips, rotation, scaling, translation and elastic deformation.

Each one describes itself as a forward affine matrix on voxel coordinates centred on
the image centre (see `Batch` for the axes); `Pipeline` composes consecutive ones and
resamples once. Used on its own, a transform resamples by itself.
"""

from __future__ import annotations

import torch

from medsight.data.augment._draw import log_uniform, positive_range, uniform, value_range
from medsight.data.augment.transform import Params, SpatialTransform

__all__ = ["Elastic", "Flip", "Rotate", "Scale", "Translate"]


def _identity(batch_size: int, ndim: int) -> torch.Tensor:
    return torch.eye(ndim + 1, dtype=torch.float64).repeat(batch_size, 1, 1)


class Flip(SpatialTransform):
    """Mirror along spatial axes, each chosen independently.

    Parameters
    ----------
    axes : sequence of int, optional
        Spatial axes that may flip (0 is ``a0``); all of them by default.
    axis_probability : float
        Chance that each of `axes` flips. With 1, every one of them flips.

    Notes
    -----
    Parameter ``flip``: bool ``(B, ndim)``, whether each axis flips. A flip maps the
    coordinate ``x`` to ``n - x``, so it is exact: voxel ``v`` goes to ``n - 1 - v``.
    """

    def __init__(self, axes: tuple[int, ...] | None = None, *, axis_probability: float = 0.5):
        if not 0 <= axis_probability <= 1:
            raise ValueError(f"axis_probability must be within [0, 1], got {axis_probability}")
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.axis_probability = float(axis_probability)

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        ndim = len(spatial_shape)
        axes = range(ndim) if self.axes is None else self.axes
        if any(not 0 <= a < ndim for a in axes):
            raise ValueError(f"Flip axes {self.axes} do not exist in a {ndim}D image (axes 0..{ndim - 1})")
        allowed = torch.zeros(ndim, dtype=torch.bool)
        allowed[list(axes)] = True
        draw = torch.rand((batch_size, ndim), generator=generator, dtype=torch.float64)
        return {"flip": (draw < self.axis_probability) & allowed}

    def matrix(self, params, spatial_shape) -> torch.Tensor:
        flip = params["flip"]
        matrix = _identity(len(flip), flip.shape[1])
        matrix[:, :-1, :-1] = torch.diag_embed(1.0 - 2.0 * flip.double())
        return matrix


def _plane_rotation(angle: torch.Tensor, ndim: int, p: int, q: int) -> torch.Tensor:
    """Rotations by `angle` (radians) in the plane of axes p and q, from p towards q."""
    matrix = _identity(len(angle), ndim)
    cos, sin = angle.cos(), angle.sin()
    matrix[:, p, p], matrix[:, p, q], matrix[:, q, p], matrix[:, q, q] = cos, -sin, sin, cos
    return matrix


class Rotate(SpatialTransform):
    """Rotation about the image centre, in voxel coordinates.

    Parameters
    ----------
    degrees : float, (low, high) or sequence of three of those
        Range of each angle; one number ``v`` means ``(-v, v)``. In 3D three sequential
        rotations are drawn, in the planes ``(a1, a2)``, ``(a0, a2)`` and ``(a0, a1)``;
        give three ranges to set them apart, e.g. ``(0, 0, 30)`` rotates only in the
        ``(a0, a1)`` plane (in-plane for thick-slice scans).

    Notes
    -----
    Parameter ``degrees``: ``(B, 1)`` in 2D, ``(B, 3)`` in 3D. A positive angle turns
    the first axis of its plane towards the second. Voxels are taken as cubes: resample
    anisotropic images to isotropic spacing first if the shape must be preserved in mm.
    """

    _PLANES = {2: [(0, 1)], 3: [(1, 2), (0, 2), (0, 1)]}

    def __init__(self, degrees=15.0):
        per_angle = not isinstance(degrees, (int, float)) and len(degrees) == 3
        values = degrees if per_angle else [degrees] * 3
        self.degrees = tuple(value_range(v, name="degrees", symmetric=True) for v in values)
        self._per_angle = per_angle

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        ndim = len(spatial_shape)
        if ndim == 2 and self._per_angle:
            raise ValueError("three degree ranges were given but a 2D image has one rotation angle")
        ranges = self.degrees[2:] if ndim == 2 else self.degrees
        angles = [uniform(generator, (batch_size,), lo, hi) for lo, hi in ranges]
        return {"degrees": torch.stack(angles, dim=1)}

    def matrix(self, params, spatial_shape) -> torch.Tensor:
        angles = torch.deg2rad(params["degrees"])
        ndim = len(spatial_shape)
        matrix = _identity(len(angles), ndim)
        for k, (p, q) in enumerate(self._PLANES[ndim]):
            matrix = _plane_rotation(angles[:, k], ndim, p, q) @ matrix
        return matrix


class Scale(SpatialTransform):
    """Zoom about the image centre: a factor above 1 makes objects larger.

    Parameters
    ----------
    factors : (low, high)
        Range of the zoom factor, drawn log-uniformly (zooming in by 1.25 and out by
        0.8 are equally likely).
    isotropic : bool
        One factor for all axes (default) or one per axis.

    Notes
    -----
    Parameter ``factors``: ``(B, ndim)``.
    """

    def __init__(self, factors=(0.85, 1.25), *, isotropic: bool = True):
        self.factors = positive_range(factors, name="factors")
        self.isotropic = bool(isotropic)

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        ndim = len(spatial_shape)
        factors = log_uniform(generator, (batch_size, 1 if self.isotropic else ndim), *self.factors)
        return {"factors": factors.expand(batch_size, ndim).contiguous()}

    def matrix(self, params, spatial_shape) -> torch.Tensor:
        factors = params["factors"]
        matrix = _identity(len(factors), factors.shape[1])
        matrix[:, :-1, :-1] = torch.diag_embed(factors)
        return matrix


class Translate(SpatialTransform):
    """Shift by a number of voxels along each axis.

    Parameters
    ----------
    shift : float or (low, high)
        Range of the shift in voxels, the same for every axis; ``v`` means ``(-v, v)``.

    Notes
    -----
    Parameter ``shift``: ``(B, ndim)`` voxels.
    """

    def __init__(self, shift=10.0):
        self.shift = value_range(shift, name="shift", symmetric=True)

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        return {"shift": uniform(generator, (batch_size, len(spatial_shape)), *self.shift)}

    def matrix(self, params, spatial_shape) -> torch.Tensor:
        shift = params["shift"]
        matrix = _identity(len(shift), shift.shape[1])
        matrix[:, :-1, -1] = shift
        return matrix


class Elastic(SpatialTransform):
    """Smooth random deformation: random displacements on a coarse grid, interpolated.

    Parameters
    ----------
    magnitude : float or (low, high)
        Standard deviation, in voxels, of the displacement of each control point; drawn
        per item from this range (one number means a fixed value).
    control_points : int or tuple of int
        Control grid size per axis (at least 2), spread from the first to the last voxel.

    Notes
    -----
    Parameter ``displacement``: ``(B, ndim, *control)`` voxels, added to the sampling
    position of each output voxel after (bi/tri)linear interpolation. In a `Pipeline`
    it joins the affine of its run of spatial transforms, wherever it stands in it.
    A box follows its transformed corners, which is an approximation under elastic
    deformation (exact for affine maps).
    """

    def __init__(self, magnitude=(0.0, 4.0), *, control_points: int | tuple[int, ...] = 5):
        self.magnitude = value_range(magnitude, name="magnitude", symmetric=False)
        if self.magnitude[0] < 0:
            raise ValueError(f"magnitude must not be negative, got {magnitude}")
        points = (control_points,) if isinstance(control_points, int) else tuple(control_points)
        if any(int(p) < 2 for p in points):
            raise ValueError(f"control_points must be at least 2 per axis, got {control_points}")
        self.control_points = tuple(int(p) for p in points)

    def sample(self, batch_size, spatial_shape, generator) -> Params:
        ndim = len(spatial_shape)
        points = self.control_points * ndim if len(self.control_points) == 1 else self.control_points
        if len(points) != ndim:
            raise ValueError(f"control_points {self.control_points} do not fit a {ndim}D image")
        magnitude = uniform(generator, (batch_size,), *self.magnitude).view(-1, *[1] * (ndim + 1))
        noise = torch.randn((batch_size, ndim, *points), generator=generator, dtype=torch.float64)
        return {"displacement": noise * magnitude}

    def matrix(self, params, spatial_shape) -> torch.Tensor:
        return _identity(len(params["displacement"]), len(spatial_shape))

    def displacement(self, params: Params) -> torch.Tensor:
        return params["displacement"]
