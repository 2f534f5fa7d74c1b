"""Keyed UID replacement: deterministic, key-dependent, valid, everywhere, never for well-known UIDs."""

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from medsight.deid import deidentify_dataset, replace_uid
from medsight.deid.uids import UIDMap
from tests.deid import KEY, OTHER_KEY


def test_replacement_is_deterministic_key_dependent_and_valid():
    uids = [generate_uid() for _ in range(200)] + ["1.2.3", "9" * 64]
    first = [replace_uid(KEY, uid) for uid in uids]
    assert first == [replace_uid(KEY, uid) for uid in uids]
    assert len(set(first)) == len(uids)  # no collisions
    other = [replace_uid(OTHER_KEY, uid) for uid in uids]
    assert not set(first) & set(other)
    for new in first + other:
        assert new.startswith("2.25.") and len(new) <= 64 and UID(new).is_valid, new


def test_well_known_and_empty_uids_are_kept():
    for uid in (CTImageStorage, ExplicitVRLittleEndian, "1.2.840.10008.2.16.4", ""):
        assert replace_uid(KEY, uid) == uid
    assert replace_uid(KEY, "1.2.3\0") == replace_uid(KEY, "1.2.3")  # padding is not part of it


def test_uid_map_remembers_what_it_replaced():
    uids = UIDMap(KEY)
    assert uids("1.2.3") == replace_uid(KEY, "1.2.3") and uids(CTImageStorage) == CTImageStorage
    assert uids.replaced == {"1.2.3": replace_uid(KEY, "1.2.3")}


def _nested_dataset() -> Dataset:
    """A CT with a reference three sequences deep, a coding scheme UID and file meta."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, "1.2.3.4"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "1.2.3", "1.2.3.5", "1.2.3.6"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = CTImageStorage, "1.2.3.9"
    series = Dataset()
    series.SeriesInstanceUID, series.ReferencedInstanceSequence = "1.2.3.5", [ref]
    study = Dataset()
    study.StudyInstanceUID, study.ReferencedSeriesSequence = "1.2.3", [series]
    ds.CurrentRequestedProcedureEvidenceSequence = [study]
    scheme = Dataset()
    scheme.CodingSchemeDesignator, scheme.CodingSchemeUID = "SCT", "2.16.840.1.113883.6.96"
    ds.CodingSchemeIdentificationSequence = [scheme]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CTImageStorage, "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def test_every_uid_is_replaced_consistently_at_any_depth():
    ds = _nested_dataset()
    deidentify_dataset(ds, key=KEY)
    new = {uid: replace_uid(KEY, uid) for uid in ("1.2.3", "1.2.3.4", "1.2.3.5", "1.2.3.6", "1.2.3.9")}
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == new["1.2.3.4"]
    assert ds.StudyInstanceUID == new["1.2.3"] and ds.FrameOfReferenceUID == new["1.2.3.6"]
    study = ds.CurrentRequestedProcedureEvidenceSequence[0]
    series = study.ReferencedSeriesSequence[0]
    ref = series.ReferencedInstanceSequence[0]  # depth 3
    assert (study.StudyInstanceUID, series.SeriesInstanceUID) == (new["1.2.3"], new["1.2.3.5"])
    assert ref.ReferencedSOPInstanceUID == new["1.2.3.9"] and ref.ReferencedSOPClassUID == CTImageStorage
    assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == CTImageStorage
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeUID == "2.16.840.1.113883.6.96"
    left = {e.value for e in ds.iterall() if e.VR == "UI"} | {e.value for e in ds.file_meta}
    assert not left & {"1.2.3", "1.2.3.4", "1.2.3.5", "1.2.3.6", "1.2.3.9"}


def test_retain_uids_keeps_them():
    ds = _nested_dataset()
    deidentify_dataset(ds, key=KEY, options=["retain-uids"])
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    ref = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == "1.2.3.9"


def test_multi_valued_uids(tmp_path):
    ds = _nested_dataset()
    ds.add_new(0x00080058, "UI", ["1.2.3.7", "1.2.3.8"])  # Failed SOP Instance UID List
    deidentify_dataset(ds, key=KEY)
    assert list(ds[0x00080058].value) == [replace_uid(KEY, "1.2.3.7"), replace_uid(KEY, "1.2.3.8")]
    ds.save_as(tmp_path / "x.dcm", enforce_file_format=True)
    assert pydicom.dcmread(tmp_path / "x.dcm").SOPInstanceUID == replace_uid(KEY, "1.2.3.4")
