"""Dates: per-patient keyed shifts that keep intervals, or the table's action when not retained."""

import datetime

import pytest
from pydicom.dataset import Dataset

from medsight.deid import date_offset, deidentify_dataset
from medsight.deid.dates import OFFSET_DAYS, shift_date, shift_datetime
from tests.deid import KEY, OTHER_KEY


def test_offset_is_keyed_per_patient_and_in_range():
    offsets = [date_offset(KEY, f"P{i}") for i in range(200)]
    assert all(OFFSET_DAYS[0] <= o <= OFFSET_DAYS[1] for o in offsets)
    assert len(set(offsets)) > 150  # different patients, (almost always) different offsets
    assert offsets[0] == date_offset(KEY, "P0") != date_offset(OTHER_KEY, "P0")


@pytest.mark.parametrize(
    "value, days, expected",
    [
        ("20190315", -10, "20190305"),
        ("2019.03.15", -15, "20190228"),  # ACR-NEMA style in, standard style out
        ("20000301", -1, "20000229"),
        ("bad", -1, None),
        ("20191350", -1, None),
    ],
)
def test_shift_date(value, days, expected):
    assert shift_date(value, days) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("20190315103000.123456+0100", "20190305103000.123456+0100"),
        ("20190315", "20190305"),
        ("201903", "201902"),  # the precision stays: year and month only
        ("2019", "2018"),
        ("x2019", None),
    ],
)
def test_shift_datetime_keeps_precision_time_and_zone(value, expected):
    assert shift_datetime(value, -10) == expected


def _visit(patient: str, study_date: str, birth: str = "19500101") -> Dataset:
    ds = Dataset()
    ds.PatientID, ds.PatientName, ds.PatientBirthDate = patient, "Doe^Jane", birth
    ds.StudyDate, ds.StudyTime, ds.SeriesDate = study_date, "101500", study_date
    ds.AcquisitionDateTime = study_date + "101500"
    ds.InstanceCreationDate = study_date  # not in Table E.1-1: still a date
    item = Dataset()
    item.ObservationDateTime = study_date + "120000"
    ds.ContentSequence = [item]
    return ds


def _days(a: str, b: str) -> int:
    return (datetime.date.fromisoformat(b[:8]) - datetime.date.fromisoformat(a[:8])).days


def test_modified_dates_keep_intervals_within_a_patient():
    first, later, other = _visit("P1", "20180219"), _visit("P1", "20190202"), _visit("P2", "20180219")
    for ds in (first, later, other):
        deidentify_dataset(ds, key=KEY, options=["retain-longitudinal-modified"])
    assert _days(first.StudyDate, later.StudyDate) == _days("20180219", "20190202")
    assert first.StudyDate != "20180219" and first.StudyDate != other.StudyDate
    offset = _days("20180219", first.StudyDate)
    assert offset == date_offset(KEY, "P1")
    assert first.SeriesDate == first.InstanceCreationDate == first.StudyDate
    assert first.AcquisitionDateTime == first.StudyDate + "101500" and first.StudyTime == "101500"
    assert first.ContentSequence[0].ObservationDateTime == first.StudyDate + "120000"  # nested
    assert first["PatientBirthDate"].is_empty  # Z in every column: birth dates never survive
    assert first.LongitudinalTemporalInformationModified == "MODIFIED"


def test_full_dates_are_kept():
    ds = _visit("P1", "20180219")
    deidentify_dataset(ds, key=KEY, options=["retain-longitudinal-full"])
    assert ds.StudyDate == ds.SeriesDate == "20180219" and ds.StudyTime == "101500"
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_without_a_dates_option_the_table_decides():
    ds = _visit("P1", "20180219")
    deidentify_dataset(ds, key=KEY)
    assert ds["StudyDate"].is_empty and ds["StudyTime"].is_empty  # Z: present, empty
    assert ds.SeriesDate == "19000101"  # X/D: D, a dummy date
    assert ds.AcquisitionDateTime == "19000101000000"  # X/Z/D
    assert ds.InstanceCreationDate == "19000101"  # unlisted date: dummy
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert "20180219" not in str(ds)
