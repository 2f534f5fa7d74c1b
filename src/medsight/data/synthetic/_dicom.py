"""A synthetic case as a real DICOM series, with fake PHI and deterministic UIDs.

`write_dicom_series` writes the pixels, geometry and Patient module; it takes no study,
equipment or staff attributes, so each file is then opened once more to add them (and to
replace the writer's random UIDs and current dates with ones derived from the seed, so a
cohort is byte-for-byte reproducible). Every file is rewritten atomically.
"""

from __future__ import annotations

from pathlib import Path

from medsight.data.synthetic.case import Case
from medsight.data.synthetic.patients import SITES
from medsight.data.synthetic.phi import patient_phi, study_phi
from medsight.io import atomic_path, write_dicom_series

__all__ = ["write_case_dicom"]

_PATIENT_POSITION = {"CT": "FFS", "MR": "HFS"}  # feet first for the abdomen, head first for the brain
_BODY_PART = {"DX": "CHEST", "MR": "HEAD", "CT": "ABDOMEN", "US": "BREAST"}


def write_case_dicom(case: Case, folder: Path, *, seed: int, transfer_syntax: str = "explicit") -> dict:
    """Write `case` into `folder` as one series; returns the PHI written (keyword -> value).

    PHI here is every attribute the de-identification profiles of DICOM PS3.15 Annex E
    remove or replace: names, IDs, dates and times, addresses, staff, institution,
    station, device serial number, study description, age, sex, weight and size.
    """
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    patient = patient_phi(case.patient)
    patient["PatientAge"] = f"{case.patient.age_at(case.days):03d}Y"
    study = study_phi(case.patient, modality=case.modality, timepoint=case.timepoint, days=case.days)
    key = [str(seed), case.patient.patient_id, case.patient.birth_date.isoformat(), str(case.timepoint)]
    uid = lambda *what: generate_uid(entropy_srcs=[*key, *what])  # noqa: E731
    rescale = (1.0, -1024.0) if case.modality == "CT" else None  # stored as most CT scanners do
    files = write_dicom_series(
        case.image,
        folder,
        modality=case.modality,
        transfer_syntax=transfer_syntax,
        patient=patient,
        series_description=f"{study['StudyDescription']} (synthetic)",
        study_uid=uid("study"),
        series_uid=uid("series"),
        rescale=rescale,
    )
    frame_of_reference = uid("frame")
    manufacturer, model = SITES[case.patient.site].scanners[case.modality]
    for number, path in enumerate(files):
        ds = dcmread(path)
        for keyword, value in study.items():
            setattr(ds, keyword, value)
        ds.Manufacturer, ds.ManufacturerModelName = manufacturer, model
        ds.BodyPartExamined = _BODY_PART[case.modality]
        if case.modality in _PATIENT_POSITION:
            ds.PatientPosition = _PATIENT_POSITION[case.modality]
        elif case.modality == "DX":
            ds.PatientOrientation = ["L", "F"]  # rows run to the patient's left, columns to the feet
        if "FrameOfReferenceUID" in ds:
            ds.FrameOfReferenceUID = frame_of_reference
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("instance", str(number))
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
    return {**patient, **study}
