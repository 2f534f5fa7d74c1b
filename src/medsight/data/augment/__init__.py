"""Augmentation for 2D and 3D batches that moves image, mask and boxes together.

Images are ``(B, C, *spatial)`` float tensors on any device, masks ``(B, M, *spatial)``
integer labels, boxes per item ``(N, 2 * ndim)`` corners in the order of the spatial
axes with exclusive upper corners (see `Batch`). Every transform draws its random
parameters in `sample` (from a seeded CPU generator) and applies them in a
deterministic `apply`; a `Pipeline` records per item what it applied, as JSON, and
`Pipeline.replay` re-applies a record exactly.

>>> pipeline = default_augmentation(3)
>>> out, record = pipeline(Batch(image, mask=mask, boxes=boxes), generator=seed)
"""

from medsight.data.augment.batch import Batch
from medsight.data.augment.intensity import (
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    ScaleIntensity,
    ShiftIntensity,
)
from medsight.data.augment.pipeline import Pipeline, Record
from medsight.data.augment.presets import default_augmentation
from medsight.data.augment.spatial import Elastic, Flip, Rotate, Scale, Translate
from medsight.data.augment.transform import Params, SpatialTransform, Transform

__all__ = [
    "Batch",
    "Contrast",
    "Elastic",
    "Flip",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "Params",
    "Pipeline",
    "Record",
    "Rotate",
    "Scale",
    "ScaleIntensity",
    "ShiftIntensity",
    "SpatialTransform",
    "Transform",
    "Translate",
    "default_augmentation",
]
