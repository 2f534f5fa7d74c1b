"""De-identification tests; `write_cohort` makes the small synthetic inputs several of them use."""

from __future__ import annotations

import contextlib
from pathlib import Path

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def write_cohort(folder: Path, *, n: int = 2, timepoints: int = 2) -> dict[str, dict]:
    """Brain MRI phantoms as DICOM, 4 slices a visit, with fake PHI; returns folder name -> PHI.

    Folder names carry the patient ID, as exports often do, so a test can check that no
    input path reaches the output.
    """
    from medsight.data.synthetic import cohort
    from medsight.data.synthetic._dicom import write_case_dicom

    written = {}
    for case in cohort("brain-mri", n, seed=3, timepoints=timepoints, shape=(20, 24, 4), spacing=8.0):
        name = f"{case.patient.patient_id}_{case.timepoint}"
        (folder / name).mkdir(parents=True)
        written[name] = write_case_dicom(case, folder / name, seed=3)
    return written


@contextlib.contextmanager
def strict_reading():
    """pydicom raises on any invalid value while reading (for this block only)."""
    from pydicom import config

    before = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        yield
    finally:
        config.settings.reading_validation_mode = before
