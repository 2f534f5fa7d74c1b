"""Fake but realistic protected health information (PHI) for DICOM headers.

Names, birth dates, record numbers, addresses, telephone numbers, accession numbers,
physicians and study dates, deterministic by patient, so that de-identification can be
tested against known values. Every value is invented: the telephone numbers lie in
ranges reserved for drama (UK 07700 900xxx), the addresses and institutions do not exist.
Some names carry accents, to test that de-identification handles non-ASCII text.
"""

from __future__ import annotations

import hashlib

import numpy as np

from medsight.data.synthetic.patients import SITES, Patient

__all__ = ["patient_phi", "study_phi"]

# Names as text, split once: a one-name-per-line list would run to a hundred lines.
_FAMILY = """Okafor Lindqvist Moreau Kowalski Haddad Nakamura Brennan Castillo Novak Fitzgerald Adeyemi
Rossi Schneider Papadopoulos Ivanova Dubois Murphy Andersen Chowdhury Tanaka Gallagher Silva Müller
Nguyen Østergaard Horvath Walsh Kaur Bianchi Fernández Jansen Abernathy Whitlock Sorensen Quigley
Mbeki Larkin Petrov Ahlberg Coutinho""".split()  # noqa: SIM905
_GIVEN = {
    "F": """Grace Ingrid Amélie Zofia Leila Yuki Siobhan Lucía Petra Maeve Chioma Giulia Hanna Eleni
    Anya Margot Nora Freya Priya Aiko Orla Beatriz Renée Mai Solveig Ilona Clodagh Harpreet""".split(),  # noqa: SIM905
    "M": """Samuel Erik Théo Piotr Karim Hiroshi Declan Mateo Tomas Liam Tunde Marco Jürgen Nikos
    Dmitri Julien Cormac Anders Rahul Kenji Owen Rafael Hugo Minh Henrik Bence Ciarán Arjun""".split(),  # noqa: SIM905
}
_STREETS = (
    "Larch Avenue",
    "Quarry Lane",
    "Willow Crescent",
    "Beacon Street",
    "Orchard Row",
    "Tannery Close",
    "Heron Way",
    "Copper Hill",
    "Station Parade",
    "Foundry Walk",
    "Glebe Road",
    "Mariner's Court",
)
_TOWNS = ("Riverton", "Kilmartin", "Fairhaven", "Ashcombe", "Dunmore", "Elmsworth", "Thornbury")
_DESCRIPTIONS = {
    "DX": "XR CHEST PA",
    "MR": "MRI BRAIN WITHOUT CONTRAST",
    "CT": "CT ABDOMEN PELVIS WITH CONTRAST",
    "US": "US BREAST UNILATERAL",
}


def _rng(*parts) -> np.random.Generator:
    """A generator seeded by a stable hash of `parts` (Python's own hash changes per run)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _person(rng, sex: str | None = None) -> str:
    sex = sex or ("F" if rng.random() < 0.5 else "M")
    return f"{rng.choice(_FAMILY)}^{rng.choice(_GIVEN[sex])}"


def patient_phi(patient: Patient) -> dict[str, str]:
    """DICOM Patient-module values for `patient` (keyword -> value), the same at every visit."""
    rng = _rng("patient", patient.patient_id, patient.birth_date, patient.site)
    name = _person(rng, patient.sex)
    if rng.random() < 0.3:  # a middle initial
        name += f"^{chr(65 + int(rng.integers(26)))}"
    number = int(rng.integers(10**6, 10**7))
    return {
        "PatientName": name,
        "PatientID": f"{patient.site}{number}",
        "PatientBirthDate": patient.birth_date.strftime("%Y%m%d"),
        "PatientSex": patient.sex,
        "OtherPatientIDs": "{} {} {}".format(*rng.integers([100, 100, 1000], [999, 999, 9999])),
        "PatientAddress": f"{int(rng.integers(1, 200))} {rng.choice(_STREETS)}, {rng.choice(_TOWNS)}",
        "PatientTelephoneNumbers": f"07700 900{int(rng.integers(0, 1000)):03d}",
        "PatientWeight": f"{rng.normal(78 if patient.sex == 'M' else 66, 11):.1f}",
        "PatientSize": f"{rng.normal(1.77 if patient.sex == 'M' else 1.64, 0.07):.2f}",
    }


def study_phi(patient: Patient, *, modality: str, timepoint: int, days: int) -> dict[str, str]:
    """Study, staff, institution and device values for one visit (keyword -> value).

    Dates and times (StudyDate, SeriesDate, AcquisitionDate, ContentDate,
    InstanceCreationDate and their times) are the visit's: the first visit plus `days`.
    """
    rng = _rng("study", patient.patient_id, patient.birth_date, modality, timepoint)
    doctor = _rng("referrer", patient.patient_id, patient.birth_date)  # one referrer per patient
    site = SITES[patient.site]
    date = patient.date_at(days).strftime("%Y%m%d")
    seconds = int(rng.integers(8 * 3600, 18 * 3600))
    time = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    values = {
        "AccessionNumber": f"{patient.site}{date[2:4]}{int(rng.integers(10**6, 10**7))}",
        "StudyID": f"{int(rng.integers(10**4, 10**5))}",
        "StudyDescription": _DESCRIPTIONS[modality],
        "ReferringPhysicianName": _person(doctor) + "^^Dr",
        "PerformingPhysicianName": _person(rng) + "^^Dr",
        "OperatorsName": _person(rng),
        "InstitutionName": site.institution,
        "InstitutionAddress": site.address,
        "InstitutionalDepartmentName": "Radiology",
        "StationName": f"{patient.site}{modality}{int(rng.integers(1, 4)):02d}",
        "DeviceSerialNumber": f"SN{int(rng.integers(10**5, 10**6))}",
    }
    for level in ("Study", "Series", "Acquisition", "Content", "InstanceCreation"):
        values[f"{level}Date"], values[f"{level}Time"] = date, time
    return values
