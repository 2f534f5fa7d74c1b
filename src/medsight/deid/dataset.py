"""De-identify one DICOM dataset in place: the profile's action on every element, at any depth.

What each action of `medsight.deid.profile` does here:

- ``X`` removes the element. ``Z`` empties it (a sequence loses its items).
- ``D`` puts a dummy value of its VR: ``ANONYMOUS`` for names, ``ANONYMIZED`` for text,
  19000101 for dates, 000000 for times, 0 for numbers written as text; binary and other
  values are emptied. A sequence keeps its items, each de-identified in turn.
- ``U`` replaces every UID in the value (`medsight.deid.uids`); a sequence (``X/Z/U*``)
  keeps its items, whose UIDs are replaced in turn.
- ``C`` cleans. Dates (DA, DT) move by the patient's offset (`medsight.deid.dates`), times
  stay. Free text keeps its words except the identifying values found elsewhere in the same
  dataset (names, IDs, dates, station and institution names: every PN, LO, SH, AE, DA or DT
  value the profile does not keep) and anything shaped like a date, which are cut out; this
  removes what the dataset knows to be identifying, not every name a person could type.
  Sequences keep their items, de-identified in turn; binary data (overlay bitmaps) is kept.
- Patient ID and Patient's Name, wherever they occur, become the keyed pseudonym of the
  patient (`medsight.deid.keys.pseudonym` of the Patient ID, or of the name when the ID is
  empty): the table's ``Z`` allows a dummy value, and the same patient gets the same one in
  every file. Empty ones stay empty.
- Private elements go unless the profile keeps them (Retain Safe Private); UIDs in those
  kept are replaced like public ones, and a kept sequence's items are de-identified in turn.
  Private creators left with no element in their block go too.

The file meta information keeps only what a valid file needs (its SOP Instance UID replaced
like the dataset's); AE titles, presentation addresses and private information go. Patient
Identity Removed, De-identification Method (and its CID 7050 code sequence) and Longitudinal
Temporal Information Modified are then set as PS3.15 E.1.1 asks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from pydicom import Dataset
from pydicom.datadict import dictionary_VR
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from medsight.deid.dates import date_offset, shift_date, shift_datetime
from medsight.deid.keys import pseudonym
from medsight.deid.profile import Profile
from medsight.deid.uids import UIDMap

__all__ = ["Record", "deidentify_dataset"]

_PATIENT_ID, _PATIENT_NAME = 0x00100020, 0x00100010
# File meta attributes a valid Part 10 file needs; the group length is written anew by pydicom.
_META_KEPT = frozenset({0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})
_DUMMY = {"PN": "ANONYMOUS", "DA": "19000101", "DT": "19000101000000", "TM": "000000", "IS": "0", "DS": "0"}
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UT", "PN"})
_IDENTIFYING_VRS = frozenset({"PN", "LO", "SH", "AE", "DA", "DT"})
# 2019-03-15, 15/03/2019, 3.15.19, 20190315: dates written in text, which cleaning cuts out.
_DATE_IN_TEXT = re.compile(r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b|\b(?:1[89]|20)\d{6}\b")
_SCRUBBING_OPTIONS = frozenset(
    {"clean-descriptors", "clean-structured-content", "clean-graphics", "retain-patient-characteristics"}
)


@dataclass
class Record:
    """What `deidentify_dataset` did.

    Attributes
    ----------
    actions : Counter
        Elements changed, per action (``X``, ``Z``, ``D``, ``U``, ``C``).
    patient : str
        The original Patient ID (or name, when the ID is empty) the replacements derive from.
    pseudonym : str
        Its replacement ("" when both were empty).
    date_offset : int or None
        Days added to every date, when dates were shifted.
    """

    actions: Counter
    patient: str
    pseudonym: str
    date_offset: int | None


def deidentify_dataset(
    ds: Dataset, *, key: bytes, options: Profile | Iterable[str] = (), uids: UIDMap | None = None
) -> Record:
    """De-identify `ds` in place under the Basic Profile and `options` (see the module docstring).

    Parameters
    ----------
    ds : pydicom.Dataset
        Modified in place, file meta information included.
    key : bytes
        The secret (`medsight.deid.keys.read_key`).
    options : Profile or iterable of str
        Option names from `medsight.deid.profile.OPTIONS`.
    uids : UIDMap, optional
        Where to collect the UIDs replaced (for a re-identification table); one is made if absent.
    """
    profile = options if isinstance(options, Profile) else Profile(frozenset(options))
    patient = _patient_key(ds)
    offset = date_offset(key, patient) if profile.dates == "modified" else None
    run = _Run(key, profile, uids or UIDMap(key), offset)
    if _SCRUBBING_OPTIONS & profile.options:
        run.identifiers = _identifiers(ds, profile)  # before anything changes
    if hasattr(ds, "file_meta"):
        for tag in [tag for tag in list(ds.file_meta.keys()) if tag not in _META_KEPT]:
            del ds.file_meta[tag]
            run.actions["X"] += 1
        run.apply(ds.file_meta)
    run.apply(ds)
    _mark(ds, profile)
    return Record(run.actions, patient, pseudonym(key, patient) if patient else "", offset)


class _Run:
    """One dataset's de-identification: the walk, and the state it shares between elements."""

    def __init__(self, key: bytes, profile: Profile, uids: UIDMap, offset: int | None):
        self.key, self.profile, self.uids, self.offset = key, profile, uids, offset
        self.actions: Counter = Counter()
        self.identifiers: re.Pattern | None = None

    def apply(self, item: Dataset) -> None:
        has_private = False
        for tag in list(item.keys()):
            if tag.is_private:
                has_private = True
                self._private(item, tag)
            elif tag in (_PATIENT_ID, _PATIENT_NAME):
                self._pseudonym(item, tag)
            else:
                self._public(item, tag, self.profile.action(tag))
        if has_private:
            _drop_unused_creators(item)

    def _public(self, item: Dataset, tag, action: str) -> None:
        if action == "K":
            if _vr(tag) == "SQ":
                self._items(item[tag])
            return
        self.actions[action] += 1
        if action == "X":
            del item[tag]
            return
        elem = item[tag]
        if elem.VR == "SQ":
            if action == "Z":
                elem.value = Sequence()
            else:  # D, U (X/Z/U*) and C keep the items, de-identified in turn
                self._items(elem)
        elif action == "Z":
            elem.value = None
        elif action == "U" and elem.VR == "UI":
            elem.value = _each(elem.value, self.uids)
        elif action == "C":
            self._clean(elem)
        else:
            elem.value = _DUMMY.get(elem.VR, "ANONYMIZED" if elem.VR in _TEXT_VRS else None)

    def _private(self, item: Dataset, tag) -> None:
        if tag.is_private_creator:
            return  # dropped afterwards if its block ends up empty
        creator = item.get((tag.group << 16) | (tag.element >> 8))
        name = str(creator.value or "") if creator else ""
        # A kept element read as UN (implicit VR, unknown to pydicom's private dictionary)
        # goes too: its value, perhaps a sequence, cannot be looked into.
        if tag.element < 0x1000 or self.profile.private_action(name, tag) == "X" or item[tag].VR == "UN":
            del item[tag]
            self.actions["X"] += 1
            return
        elem = item[tag]
        if elem.VR == "SQ":
            self._items(elem)
        elif elem.VR == "UI" and "retain-uids" not in self.profile.options:
            elem.value = _each(elem.value, self.uids)  # a reference to a replaced UID follows it
            self.actions["U"] += 1

    def _pseudonym(self, item: Dataset, tag) -> None:
        patient = _patient_key(item)
        item[tag].value = pseudonym(self.key, patient) if patient else None
        self.actions["D" if patient else "Z"] += 1

    def _items(self, elem) -> None:
        for child in elem.value:
            self.apply(child)

    def _clean(self, elem) -> None:
        if elem.VR in ("DA", "DT"):
            shift = shift_date if elem.VR == "DA" else shift_datetime
            if self.offset is None:
                elem.value = _DUMMY[elem.VR]
                return
            values = _each(elem.value, lambda value: shift(value, self.offset))
            missing = None in values if isinstance(values, list) else values is None
            elem.value = None if missing else values  # a date that cannot be moved is removed
        elif elem.VR in _TEXT_VRS and elem.VR != "PN":
            elem.value = _each(elem.value, self._scrub)
        elif elem.VR == "PN":
            elem.value = _DUMMY["PN"]  # a name is identifying as a whole

    def _scrub(self, text: str) -> str:
        text = str(text)
        if self.identifiers is not None:
            text = self.identifiers.sub("", text)
        return " ".join(_DATE_IN_TEXT.sub("", text).split())


def _each(value, function):
    """`function` applied to each value of a multi-valued element, or to the single value."""
    if isinstance(value, MultiValue | list):
        return [function(v) for v in value]
    return None if value is None else function(value)


def _patient_key(item: Dataset) -> str:
    """What identifies the patient in `item`: the Patient ID, or the name when the ID is empty."""
    for keyword in ("PatientID", "PatientName"):
        value = str(item.get(keyword, "") or "").strip()
        if value:
            return value
    return ""


def _identifiers(ds: Dataset, profile: Profile) -> re.Pattern | None:
    """One pattern matching every identifying value in `ds` (and each part of a name)."""
    found = set()
    for elem in ds.iterall():
        tag = elem.tag
        if elem.VR not in _IDENTIFYING_VRS or elem.value in (None, ""):
            continue
        if tag.is_private or tag in (_PATIENT_ID, _PATIENT_NAME) or profile.action(tag) not in ("K", "C"):
            for value in elem.value if isinstance(elem.value, MultiValue) else [elem.value]:
                text = str(value)
                found.add(text.strip())
                found.update(re.split(r"[\^=\s,]+", text) if elem.VR == "PN" else ())
    words = sorted((w for w in found if len(w) >= 3), key=len, reverse=True)  # shorter ones: noise
    return re.compile("|".join(map(re.escape, words)), re.IGNORECASE) if words else None


def _drop_unused_creators(item: Dataset) -> None:
    tags = list(item.keys())  # iterating a Dataset yields its elements, converting each
    blocks = {(tag.group, tag.element >> 8) for tag in tags if tag.is_private and tag.element >= 0x1000}
    for tag in [tag for tag in tags if tag.is_private_creator]:
        if (tag.group, tag.element) not in blocks:
            del item[tag]


@cache
def _vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _mark(ds: Dataset, profile: Profile) -> None:
    """The attributes that record the de-identification (PS3.15 E.1.1, PS3.3 C.7.1.1)."""
    from medsight import __version__

    codes = profile.codes()
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [meaning for _, meaning in codes] + [f"MedSight {__version__}"]
    items = []
    for value, meaning in codes:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
        items.append(code)
    ds.DeidentificationMethodCodeSequence = items
    ds.LongitudinalTemporalInformationModified = {
        "full": "UNMODIFIED",
        "modified": "MODIFIED",
        "removed": "REMOVED",
    }[profile.dates]
