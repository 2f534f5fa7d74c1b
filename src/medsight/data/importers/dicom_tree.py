"""A tree of DICOM files: one sample per image series, attributes from the headers."""

from __future__ import annotations

import os
from pathlib import Path

from medsight.data.manifest import Manifest, Sample
from medsight.errors import FormatError, NotFoundError


def from_dicom_tree(root: str | Path) -> Manifest:
    """Every image series under `root`; a sample's image is its folder (``folder#UID`` when the
    folder holds several series). Time points number each patient's studies by date.

    Whole-slide microscopy and non-image objects (SEG, SR, RT) are left out.
    """
    from medsight.io.dicom._metadata import parse_age
    from medsight.io.dicom._scan import WHOLE_SLIDE_SOP, scan_folder

    root = Path(root)
    samples, when = [], {}
    for folder, _, _ in sorted(os.walk(root)):
        folder = Path(folder)
        if any(part.startswith(".") for part in folder.relative_to(root).parts):
            continue
        try:
            found = scan_folder(folder, recursive=False)
        except NotFoundError:
            continue
        images = [
            s for s in found if s.is_image and str(s.datasets[0].get("SOPClassUID", "")) != WHOLE_SLIDE_SOP
        ]
        for series in images:
            ds = series.datasets[0]
            where = folder.relative_to(root).as_posix() or "."
            image = where if len(images) == 1 else f"{where}#{series.series_uid}"
            attributes = {
                "modality": series.modality or None,
                "sex": str(ds.get("PatientSex") or "") or None,
                "age": parse_age(ds.get("PatientAge")),
                "site": str(ds.get("InstitutionName") or "") or None,
                "device": " ".join(
                    str(ds.get(k) or "") for k in ("Manufacturer", "ManufacturerModelName")
                ).strip()
                or None,
                "body_part": str(ds.get("BodyPartExamined") or "") or None,
                "series_description": series.description or None,
            }
            sample = Sample(
                image,
                patient_id=str(ds.get("PatientID") or "") or None,
                attributes={k: v for k, v in attributes.items() if v is not None},
            )
            samples.append(sample)
            when[id(sample)] = (
                str(ds.get("StudyDate") or ""),
                str(ds.get("StudyTime") or ""),
                str(ds.get("StudyInstanceUID") or ""),
            )
    if not samples:
        raise FormatError("no DICOM image series", path=root)
    _number_timepoints(samples, when)
    return Manifest(samples, root=root, name=root.name, source="DICOM tree")


def _number_timepoints(samples: list[Sample], when: dict) -> None:
    """Per patient with dated studies: 0 for the first study, 1 for the next, ..."""
    by_patient: dict[str, list[Sample]] = {}
    for s in samples:
        if s.patient_id and when[id(s)][0]:
            by_patient.setdefault(s.patient_id, []).append(s)
    for group in by_patient.values():
        studies = sorted({when[id(s)] for s in group})
        if len(studies) > 1:
            for s in group:
                s.timepoint = studies.index(when[id(s)])
