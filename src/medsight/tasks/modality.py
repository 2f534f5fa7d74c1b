"""The modality of training images, which picks the intensity normalisation a plan uses."""

from __future__ import annotations

from collections import Counter

import numpy as np

__all__ = ["HU_AIR", "modality_of"]

HU_AIR = -900.0  # intensities this low are Hounsfield units of air (-1000): a CT


def modality_of(images: list, lowest: float) -> str | None:
    """The modality the images' metadata names most often (DICOM's Modality); failing that
    (NIfTI, NRRD and PNG carry none), ``"CT"`` when the lowest intensity, `lowest`, is air in
    Hounsfield units: MR, ultrasound, radiographs and photographs have no values that low."""
    named = Counter(im.metadata.get("modality") for im in images if im.metadata.get("modality"))
    if named:
        return named.most_common(1)[0][0]
    return "CT" if np.isfinite(lowest) and lowest <= HU_AIR else None
