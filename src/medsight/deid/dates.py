"""Dates moved by a per-patient number of days, so intervals within a patient survive.

With the Retain Longitudinal Temporal Information, Modified Dates option every date (DA)
and date-time (DT) of a patient moves back by the same number of whole days, derived from the
key and the patient's original ID: the same patient gets the same offset in every file and run,
two patients (almost always) different ones. Times of day (TM) are kept as they are, since a
whole-day shift leaves them right.
"""

from __future__ import annotations

import datetime
import re

from medsight.deid.keys import keyed_digest

__all__ = ["OFFSET_DAYS", "date_offset", "shift_date", "shift_datetime"]

OFFSET_DAYS = (-3650, -365)  # one to ten years back: far enough that no date stays recognisable

_DA = re.compile(r"(\d{4})\.?(\d{2})\.?(\d{2})")  # YYYYMMDD; ACR-NEMA wrote YYYY.MM.DD
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?([+-]\d{4})?")


def date_offset(key: bytes, patient: str) -> int:
    """Days (negative) to add to every date of `patient`, within `OFFSET_DAYS`."""
    low, high = OFFSET_DAYS
    number = int.from_bytes(keyed_digest(key, "date-offset", patient)[:8], "big")
    return low + number % (high - low + 1)


def shift_date(value: str, days: int) -> str | None:
    """A DA value moved by `days`; None when it is not a date (it cannot be moved, only removed)."""
    match = _DA.fullmatch(value.strip())
    if match is None:
        return None
    try:
        date = datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None
    return _shifted(date, days).strftime("%Y%m%d")


def shift_datetime(value: str, days: int) -> str | None:
    """A DT value moved by `days`, keeping its precision, time and UTC offset; None if not a DT."""
    match = _DT.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, time, zone = match.groups()
    try:
        date = _shifted(datetime.date(int(year), int(month or 1), int(day or 1)), days)
    except ValueError:
        return None
    text = date.strftime("%Y%m%d")[: 4 + 2 * bool(month) + 2 * bool(day)]
    return text + (time or "") + (zone or "")


def _shifted(date: datetime.date, days: int) -> datetime.date:
    try:
        return date + datetime.timedelta(days=days)
    except OverflowError:  # year 0001 or 9999: nothing to keep there
        return datetime.date(1900, 1, 1)
