"""The confidentiality profile: one action per data element, from PS3.15 Annex E and the options.

Table E.1-1 is data (``_annex_e.csv``, the edition is stated there); this module reads it
once and answers `Profile.action(tag)` with one of

- ``K`` keep, ``X`` remove, ``Z`` empty, ``D`` replace with a dummy value,
- ``U`` replace the UID (`medsight.deid.uids`), ``C`` clean (see `medsight.deid.dataset`).

How the rules the table leaves open are settled:

- Compound actions (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``): the standard lets the
  attribute's Type in the IOD decide (X where Type 3, Z where Type 2, D or U where Type 1).
  MedSight has no IOD tables, so it takes the last, least destructive action, which keeps
  every IOD valid: the value is then emptied or replaced, never left as it was.
- Several chosen options acting on one row: ``K`` wins over ``C``, which wins over the rest.
- Attributes the table does not list are kept, except where their VR carries identity in
  any attribute: UIDs (``UI``) are replaced unless they name a class or coding scheme; dates
  and times (``DA``, ``DT``, ``TM``) follow the dates options and otherwise get dummies;
  person names (``PN``) and application entity titles (``AE``, a device's network name)
  get dummies or are removed; public attributes unknown to pydicom's dictionary are removed
  (nothing says what they hold); group lengths are removed (stale after any change).
- Free text inside structured content and graphics that the table does not list (Text Value
  of SR content items; Unformatted Text Value of graphic annotations too where an edition
  does not list it, 2026d does: D, C under Clean Descriptors) gets a dummy, or is cleaned
  under Clean Structured Content or Clean Graphics: the table's ``D`` on their sequences
  would otherwise leave it.
- Private attributes are removed; with Retain Safe Private those of Table E.3.10-1
  (``_safe_private.csv``, edition stated there) are kept, matched by private creator, group
  and offset within the creator's block.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources

from pydicom.datadict import dictionary_VR, keyword_for_tag

from medsight.deid.uids import names_a_class
from medsight.errors import MedsightError

__all__ = [
    "BASIC_PROFILE",
    "OPTIONS",
    "Profile",
    "TABLE_E1_1_EDITION",
    "TABLE_E3_10_1_EDITION",
    "annex_e_table",
]

# Editions of the two tables (their CSV headers say where they come from: both as extracted
# by pymedphys/pymedphys from NEMA's pages of 2026d, pinned by their SHA-256).
TABLE_E1_1_EDITION = "2026d"
TABLE_E3_10_1_EDITION = "2026d"

# CID 7050 "De-identification Method": code value and meaning of the profile and each option.
BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
# option name -> (column of Table E.1-1, CID 7050 code value, code meaning)
OPTIONS = {
    "retain-safe-private": ("rtn_safe_priv", "113111", "Retain Safe Private Option"),
    "retain-uids": ("rtn_uids", "113110", "Retain UIDs Option"),
    "retain-device-identity": ("rtn_dev_id", "113109", "Retain Device Identity Option"),
    "retain-institution-identity": ("rtn_inst_id", "113112", "Retain Institution Identity Option"),
    "retain-patient-characteristics": ("rtn_pat_chars", "113108", "Retain Patient Characteristics Option"),
    "retain-longitudinal-full": (
        "rtn_long_full_dates",
        "113106",
        "Retain Longitudinal Temporal Information Full Dates Option",
    ),
    "retain-longitudinal-modified": (
        "rtn_long_modif_dates",
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    "clean-descriptors": ("clean_desc", "113105", "Clean Descriptors Option"),
    "clean-structured-content": ("clean_struct_cont", "113104", "Clean Structured Content Option"),
    "clean-graphics": ("clean_graph", "113103", "Clean Graphics Option"),
    "clean-pixel-data": (None, "113101", "Clean Pixel Data Option"),
}
ACTIONS = frozenset("KXZDUC")

_CURVE, _OVERLAY_DATA, _OVERLAY_COMMENTS = "(50XX,XXXX)", "(60XX,3000)", "(60XX,4000)"
_PRIVATE = "(GGGG,EEEE) where GGGG is odd"
_TEXT_VALUE, _UNFORMATTED_TEXT_VALUE = 0x0040A160, 0x00700006
_DATE_VRS = ("DA", "DT", "TM")


@cache
def annex_e_table() -> dict[str, dict[str, str]]:
    """Table E.1-1 as read from ``_annex_e.csv``: tag text such as ``(0010,0010)`` -> row."""
    text = resources.files("medsight.deid").joinpath("_annex_e.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["tag"]: row for row in rows}


@cache
def safe_private() -> frozenset[tuple[str, int, int]]:
    """Table E.3.10-1 as read from ``_safe_private.csv``: (private creator, group, element
    offset within the creator's block), e.g. ``("GEMS_ACQU_01", 0x0019, 0x23)``."""
    text = resources.files("medsight.deid").joinpath("_safe_private.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return frozenset((row["creator"], int(row["group"], 16), int(row["element"][2:], 16)) for row in rows)


@cache
def _by_tag() -> dict[int, dict[str, str]]:
    patterns = (_CURVE, _OVERLAY_DATA, _OVERLAY_COMMENTS, _PRIVATE)
    return {int(t[1:5] + t[6:10], 16): row for t, row in annex_e_table().items() if t not in patterns}


def table_row(tag: int) -> dict[str, str] | None:
    """The row of Table E.1-1 for `tag`, repeating groups (curves, overlays) included."""
    row = _by_tag().get(tag)
    if row is not None:
        return row
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2:
        return None
    if 0x5000 <= group <= 0x50FF:
        return annex_e_table()[_CURVE]
    if 0x6000 <= group <= 0x60FF and element in (0x3000, 0x4000):
        return annex_e_table()[_OVERLAY_DATA if element == 0x3000 else _OVERLAY_COMMENTS]
    return None


@dataclass(frozen=True)
class Profile:
    """The Basic Application Level Confidentiality Profile with a set of options.

    Parameters
    ----------
    options : iterable of str
        Names from `OPTIONS`, e.g. ``("retain-longitudinal-modified", "clean-descriptors")``.
    """

    options: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self):
        options = frozenset(self.options)
        object.__setattr__(self, "options", options)
        unknown = sorted(options - OPTIONS.keys())
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], OPTIONS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Choose from: {', '.join(OPTIONS)}"
            raise MedsightError(f"unknown de-identification option {unknown[0]!r}", hint=hint)
        if {"retain-longitudinal-full", "retain-longitudinal-modified"} <= options:
            raise MedsightError(
                "retain-longitudinal-full and retain-longitudinal-modified exclude each other",
                hint="Keep dates as they are (full) or shift them (modified), not both",
            )

    @property
    def dates(self) -> str:
        """What happens to dates: ``"full"`` (kept), ``"modified"`` (shifted) or ``"removed"``."""
        if "retain-longitudinal-full" in self.options:
            return "full"
        return "modified" if "retain-longitudinal-modified" in self.options else "removed"

    def action(self, tag: int) -> str:
        """The action on the public attribute `tag`: one of ``K X Z D U C``."""
        return _action(self.options, int(tag))

    def private_action(self, creator: str, tag: int) -> str:
        """``K`` for a safe private attribute under Retain Safe Private, else ``X``.

        `creator` is the value of the private creator that reserved `tag`'s block; the block
        byte itself (``xx`` in ``(0019,xx23)``) depends on the file, so only the group and the
        offset within the block are compared.
        """
        if "retain-safe-private" not in self.options:
            return "X"
        return "K" if (creator.strip(), tag >> 16, tag & 0xFF) in safe_private() else "X"

    def codes(self) -> list[tuple[str, str]]:
        """CID 7050 codes (value, meaning) of the profile and its options, in a fixed order."""
        return [BASIC_PROFILE] + [OPTIONS[name][1:] for name in OPTIONS if name in self.options]


@lru_cache(maxsize=65536)
def _action(options: frozenset[str], tag: int) -> str:
    row = table_row(tag)
    if row is not None:
        chosen = {row[OPTIONS[name][0]] for name in options if OPTIONS[name][0]} - {""}
        for action in ("K", "C"):
            if action in chosen:
                return action
        if chosen:
            return chosen.pop()  # an option column with neither K nor C (none in 2026d)
        return row["basic"].split("/")[-1].rstrip("*")
    return _unlisted(options, tag)


def _unlisted(options: frozenset[str], tag: int) -> str:
    """Attributes Table E.1-1 does not name (see the module docstring)."""
    if tag & 0xFFFF == 0:
        return "X"  # group length
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "X"
    if tag == _TEXT_VALUE:
        return "C" if "clean-structured-content" in options else "D"
    if tag == _UNFORMATTED_TEXT_VALUE:
        return "C" if "clean-graphics" in options else "D"
    if vr == "UI":
        if names_a_class(keyword_for_tag(tag)) or "retain-uids" in options:
            return "K"
        return "U"
    if vr in _DATE_VRS:
        if "retain-longitudinal-full" in options:
            return "K"
        return "C" if "retain-longitudinal-modified" in options else "D"
    if vr == "PN":
        return "D"
    if vr == "AE":
        return "K" if "retain-device-identity" in options else "X"
    return "K"
