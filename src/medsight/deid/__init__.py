"""DICOM de-identification: PS3.15 Annex E confidentiality profiles, and NIfTI/NRRD headers.

- `deidentify_tree(src, dst, key=...)`: a folder in, a de-identified tree out, an audit log.
- `deidentify_dataset(ds, key=...)`: one pydicom dataset, in place.
- `Profile`, `OPTIONS`: the Basic Profile and its options; Table E.1-1 is data
  (``_annex_e.csv``, edition stated there), read by `annex_e_table`.
- `new_key`, `read_key`: the secret behind every replacement; `replace_uid` (keyed
  ``2.25`` UIDs), `pseudonym` (patients), `date_offset` (per-patient date shifts).
- `burned_in_risk`, `find_text_regions`, `mask_regions`: burned-in text in the pixels.
- `deidentify_header_file`: free text out of NIfTI and NRRD headers.
"""

from medsight.deid.dataset import Record, deidentify_dataset
from medsight.deid.dates import date_offset
from medsight.deid.headers import deidentify_header_file
from medsight.deid.keys import new_key, pseudonym, read_key
from medsight.deid.pixels import burned_in_risk, find_text_regions, mask_regions
from medsight.deid.profile import OPTIONS, Profile, annex_e_table
from medsight.deid.tree import deidentify_tree
from medsight.deid.uids import UIDMap, replace_uid

__all__ = [
    "OPTIONS",
    "Profile",
    "Record",
    "UIDMap",
    "annex_e_table",
    "burned_in_risk",
    "date_offset",
    "deidentify_dataset",
    "deidentify_header_file",
    "deidentify_tree",
    "find_text_regions",
    "mask_regions",
    "new_key",
    "pseudonym",
    "read_key",
    "replace_uid",
]
