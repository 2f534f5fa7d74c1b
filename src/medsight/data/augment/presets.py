"""Ready-made pipelines for training."""

from __future__ import annotations

from medsight.data.augment.intensity import (
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    ScaleIntensity,
    ShiftIntensity,
)
from medsight.data.augment.pipeline import Pipeline
from medsight.data.augment.spatial import Elastic, Flip, Rotate, Scale

__all__ = ["default_augmentation"]

# Ranges and probabilities after nnU-Net's defaults ("medium"), narrowed or widened.
_STRENGTHS = {
    "light": {
        "degrees": 10.0, "scale": (0.9, 1.1), "p_spatial": 0.2, "elastic": (0.0, 2.0),
        "noise": (0.0, 0.05), "blur": (0.5, 0.75), "intensity": (0.9, 1.1), "shift": 0.05,
        "gamma": (0.8, 1.25), "p_intensity": 0.1,
    },
    "medium": {
        "degrees": 15.0, "scale": (0.85, 1.25), "p_spatial": 0.2, "elastic": (0.0, 4.0),
        "noise": (0.0, 0.1), "blur": (0.5, 1.0), "intensity": (0.75, 1.25), "shift": 0.1,
        "gamma": (0.7, 1.5), "p_intensity": 0.15,
    },
    "strong": {
        "degrees": 30.0, "scale": (0.7, 1.4), "p_spatial": 0.3, "elastic": (0.0, 6.0),
        "noise": (0.0, 0.15), "blur": (0.5, 1.5), "intensity": (0.65, 1.5), "shift": 0.2,
        "gamma": (0.6, 1.7), "p_intensity": 0.25,
    },
}  # fmt: skip


def default_augmentation(
    ndim: int,
    *,
    strength: str = "medium",
    elastic: bool = False,
    flip_axes: tuple[int, ...] | None = None,
    padding: str = "minimum",
) -> Pipeline:
    """The augmentation MedSight trains with, for 2D or 3D images.

    Flips (each axis with chance 1/2), then rotation, scaling and optionally elastic
    deformation (resampled once), then noise, blur, intensity scale and shift, contrast
    and gamma, each drawn per item with the probability of the chosen strength.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensions of the images.
    strength : {"light", "medium", "strong"}
        Width of the random ranges and how often each transform is drawn. Intensity
        ranges assume normalised images (zero mean and unit variance, or 0..1).
    elastic : bool
        Add an elastic deformation (off by default: it costs a full-size field).
    flip_axes : tuple of int, optional
        Axes that may flip; all by default. Leave out an axis whose mirror image is not
        a plausible scan (left-right for a task that depends on laterality).
    padding : {"minimum", "zeros", "border", "reflection"}
        See `Pipeline`.

    Returns
    -------
    Pipeline
    """
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim}")
    if strength not in _STRENGTHS:
        raise ValueError(f"strength must be one of {sorted(_STRENGTHS)}, got {strength!r}")
    if flip_axes is not None and any(not 0 <= a < ndim for a in flip_axes):
        raise ValueError(f"flip_axes {flip_axes} do not exist in a {ndim}D image (axes 0..{ndim - 1})")
    s = _STRENGTHS[strength]
    spatial = [
        (Flip(flip_axes), 1.0),
        (Rotate(s["degrees"]), s["p_spatial"]),
        (Scale(s["scale"]), s["p_spatial"]),
    ]
    if elastic:
        spatial.append((Elastic(s["elastic"]), s["p_spatial"]))
    p = s["p_intensity"]
    intensity = [
        (GaussianNoise(s["noise"]), p),
        (GaussianBlur(s["blur"]), p),
        (ScaleIntensity(s["intensity"]), p),
        (ShiftIntensity(s["shift"]), p),
        (Contrast(s["intensity"]), p),
        (Gamma(s["gamma"]), 2 * p),
    ]
    return Pipeline(spatial + intensity, padding=padding)
