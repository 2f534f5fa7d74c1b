"""Synthetic phantoms with exact ground truth, deterministic by seed: MedSight's built-in data.

One case (`Case`: image, label map, class, boxes, exact truth, patient):

- `chest_xray(label=, seed=)`: PA radiograph (DX, 12-bit); ``normal``, ``consolidation``,
  ``nodule`` (1-3, with boxes); lung, heart and lesion masks.
- `brain_mri(seed=, timepoint=)`: T1-like head MRI; scalp, skull, CSF, grey and white
  matter, ventricles, hippocampi with exact volumes in mL; atrophy over the visits.
- `body_ct(seed=, timepoint=)`: abdominal CT in HU (int16); body, liver, spleen, kidneys,
  aorta, IVC, spine and liver tumours that grow or respond over the visits.
- `ultrasound(label=, seed=)`: breast B-mode with speckle and shadowing; ``normal``,
  ``benign``, ``malignant`` lesions with masks and boxes.

Cohorts:

- `cohort(kind, n, seed=)`: the cases of `n` patients (several visits each where it makes
  sense), classes balanced; `KINDS` names the kinds.
- `export_cohort(kind, out, n=, seed=, format=)`: writes NIfTI/PNG or real DICOM series
  (with fake PHI, listed in ``phi.json``), masks, ``truth.json`` and a ``manifest.json``.

Every patient has sex, age, site and scanner (`Patient`, `SITES`); `site_effect` sets how
strongly each site's images differ (gain, contrast, noise, blur), 0 for none.
"""

from medsight.data.synthetic.brain import brain_mri
from medsight.data.synthetic.case import Case
from medsight.data.synthetic.chest import chest_xray
from medsight.data.synthetic.cohort import KINDS, Kind, cohort, get_kind
from medsight.data.synthetic.ct import body_ct
from medsight.data.synthetic.export import FORMATS, export_cohort
from medsight.data.synthetic.patients import SITES, Appearance, Patient, Site, make_patient
from medsight.data.synthetic.ultrasound import ultrasound

__all__ = [
    "FORMATS",
    "KINDS",
    "SITES",
    "Appearance",
    "Case",
    "Kind",
    "Patient",
    "Site",
    "body_ct",
    "brain_mri",
    "chest_xray",
    "cohort",
    "export_cohort",
    "get_kind",
    "make_patient",
    "ultrasound",
]
