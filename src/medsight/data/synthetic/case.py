"""`Case`: one synthetic image with its exact ground truth and whom and when it shows."""

from __future__ import annotations

from dataclasses import dataclass, field

from medsight.data.synthetic.patients import Patient
from medsight.image import Image

__all__ = ["Case"]


@dataclass
class Case:
    """A phantom image and everything known about it.

    Attributes
    ----------
    image : Image
        The image as a scanner would store it (radiograph and ultrasound pixel values,
        MR signal, CT in HU as int16).
    patient : Patient
        Sex, age, site and dates; the same object for every time point of a patient.
    timepoint : int
        0 for the first visit, then 1, 2, ... in time order.
    days : int
        Days since the first visit.
    mask : Image or None
        Label map on the image grid (``kind="label"``); its values are `label_names`.
    label : str or None
        The image's class, for the kinds that have classes.
    boxes : list of dict
        ``{"box": [i0, j0, i1, j1] (3D: 6 numbers), "label": name}`` in voxel index units,
        upper corners exclusive (the manifest convention).
    label_names : dict of int to str
        Names of the values in `mask`.
    truth : dict
        Exact ground truth (JSON-serialisable): volumes in mL or areas in mm^2, rates,
        lesion centres and sizes. Each phantom documents its keys.
    """

    image: Image
    patient: Patient
    timepoint: int = 0
    days: int = 0
    mask: Image | None = None
    label: str | None = None
    boxes: list[dict] = field(default_factory=list)
    label_names: dict[int, str] = field(default_factory=dict)
    truth: dict = field(default_factory=dict)

    @property
    def modality(self) -> str:
        return self.image.metadata.get("modality", "OT")

    @property
    def attributes(self) -> dict:
        """Sex, age at this visit, site, scanner, and days since the first visit."""
        return {**self.patient.attributes(self.modality, self.days), "days": self.days}

    def __repr__(self) -> str:
        what = f", label={self.label!r}" if self.label else ""
        return (
            f"Case({self.patient.patient_id}, timepoint={self.timepoint}, days={self.days}{what}, "
            f"boxes={len(self.boxes)}, image={self.image})"
        )
