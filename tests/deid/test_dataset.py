"""One dataset: pseudonyms, private tags, free text, file meta and the de-identification record."""

import io

import pydicom
import pytest
from pydicom.dataset import Dataset

from medsight.deid import deidentify_dataset, pseudonym
from tests.deid import KEY, strict_reading, write_cohort


@pytest.fixture(scope="module")
def mri(tmp_path_factory):
    """One synthetic MRI slice with fake PHI, plus what the tests below plant in it."""
    folder = tmp_path_factory.mktemp("deid-dataset")
    phi = write_cohort(folder, n=1, timepoints=1)
    (name,) = phi
    return next((folder / name).glob("*.dcm")), phi[name]


def _load(path) -> Dataset:
    ds = pydicom.dcmread(path)
    ds.file_meta.SourceApplicationEntityTitle = "ST-ANNE-CT01"
    ds.file_meta.PrivateInformationCreatorUID = "1.2.3.99"
    ds.file_meta.PrivateInformation = b"HOSPITAL SECRET\0"
    block = ds.private_block(0x0029, "ACME 1.0", create=True)
    block.add_new(0x10, "LO", str(ds.PatientName))  # a vendor copy of the name
    nested = Dataset()
    nested.PatientID = ds.PatientID
    nested.add_new(0x00091001, "LO", "nested private")
    ds.ReferencedPatientPhotoSequence = [nested]
    return ds


def _written(ds) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_phi_is_gone_and_the_file_is_valid(mri):
    path, phi = mri
    ds = _load(path)
    record = deidentify_dataset(ds, key=KEY)
    raw = _written(ds)
    for keyword, value in phi.items():
        if keyword not in ("PatientSex", "StudyDescription", "InstitutionalDepartmentName"):
            assert value.encode() not in raw, keyword  # not even inside another value
    for planted in (b"ST-ANNE-CT01", b"HOSPITAL SECRET", b"ACME 1.0", b"nested private"):
        assert planted not in raw
    assert record.patient == phi["PatientID"] and record.pseudonym == pseudonym(KEY, phi["PatientID"])
    assert record.actions["X"] > 5 and record.actions["U"] >= 3 and record.date_offset is None
    with strict_reading():
        back = pydicom.dcmread(io.BytesIO(raw))
    assert back.PatientID == back.PatientName == record.pseudonym
    assert back["PatientSex"].is_empty and back.pixel_array.shape == (back.Rows, back.Columns)
    assert set(back.file_meta.keys()) <= {
        0x00020000,
        0x00020001,
        0x00020002,
        0x00020003,
        0x00020010,
        0x00020012,
        0x00020013,
    }
    assert back.InstitutionName == "ANONYMIZED" and back.OperatorsName == "ANONYMOUS"  # D
    assert "StudyDescription" not in back and "PatientAddress" not in back  # X


def test_the_record_attributes_of_ps3_15(mri):
    ds = _load(mri[0])
    deidentify_dataset(ds, key=KEY, options=["clean-descriptors", "retain-longitudinal-modified"])
    assert ds.PatientIdentityRemoved == "YES"
    codes = [(c.CodeValue, c.CodingSchemeDesignator) for c in ds.DeidentificationMethodCodeSequence]
    assert codes == [("113100", "DCM"), ("113107", "DCM"), ("113105", "DCM")]
    assert ds.DeidentificationMethod[0] == "Basic Application Confidentiality Profile"
    assert ds.DeidentificationMethod[-1].startswith("MedSight ")
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"


def test_same_patient_same_pseudonym_in_nested_items_too(mri):
    ds = _load(mri[0])
    original = ds.PatientID
    deidentify_dataset(ds, key=KEY, options=["retain-safe-private"])
    # Referenced Patient Photo Sequence is X; a retained sequence would keep the same pseudonym
    assert "ReferencedPatientPhotoSequence" not in ds and ds.PatientID == pseudonym(KEY, original)
    assert not [e for e in ds if e.tag.is_private]  # ACME 1.0 is not on the safe list


def test_retain_safe_private_keeps_exactly_table_e3_10_1(mri):
    ds = _load(mri[0])
    series = ds.SeriesInstanceUID
    # GEMS_ACQU_01 reserved block 0x11 here, so (0019,xx23) Table Speed is (0019,1123)
    ds.add_new(0x00190010, "LO", "OTHER VENDOR")
    ds.add_new(0x00190011, "LO", "GEMS_ACQU_01")
    ds.add_new(0x00191023, "DS", "39.37")  # same offset, another creator: not safe
    ds.add_new(0x00191123, "DS", "39.37")  # safe
    ds.add_new(0x00191124, "DS", "0.75")  # Mid Scan Time: safe
    ds.add_new(0x00191102, "LO", "Lindqvist")  # not in the table
    nq = ds.private_block(0x0099, "NQHeader", create=True)
    nq.add_new(0x02, "UI", series)  # Analyzed Series UID: safe, and replaced like any UID
    kept = deidentify_dataset(ds, key=KEY, options=["retain-safe-private"])
    private = {e.tag: e.value for e in ds if e.tag.is_private}
    assert private.pop(0x00191123) == "39.37" and private.pop(0x00191124) == "0.75"
    assert private.pop(0x00990000 | (nq.block_start + 0x02)) == ds.SeriesInstanceUID != series
    assert set(private.values()) == {"GEMS_ACQU_01", "NQHeader"}  # their creators, nothing else
    assert kept.actions["U"] >= 1

    ds = _load(mri[0])
    ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x23, "DS", "39.37")
    deidentify_dataset(ds, key=KEY)  # without the option every private attribute goes
    assert not [e for e in ds if e.tag.is_private]


def test_options_retain_what_they_name(mri):
    path, phi = mri
    ds = _load(path)
    options = ["retain-patient-characteristics", "retain-device-identity", "retain-institution-identity"]
    deidentify_dataset(ds, key=KEY, options=options)
    assert ds.PatientSex == phi["PatientSex"] and ds.PatientAge == phi["PatientAge"]
    assert ds.StationName == phi["StationName"] and ds.DeviceSerialNumber == phi["DeviceSerialNumber"]
    assert ds.InstitutionName == phi["InstitutionName"]
    assert ds.PatientName != phi["PatientName"] and "PatientAddress" not in ds


def test_clean_descriptors_cut_identifying_values_out_of_free_text(mri):
    path, phi = mri
    ds = _load(path)
    family = phi["PatientName"].split("^")[0]
    ds.StudyDescription = f"MRI for {family} at {phi['InstitutionName']} on 2018-02-19"
    ds.ImageComments = f"ID {phi['PatientID']} seen 19/02/2018"
    deidentify_dataset(ds, key=KEY, options=["clean-descriptors"])
    assert ds.StudyDescription == "MRI for at on"
    assert ds.ImageComments == "ID seen"
    without = _load(path)
    deidentify_dataset(without, key=KEY)
    assert "StudyDescription" not in without and "ImageComments" not in without


def test_structured_content_text_is_dummied_or_cleaned():
    def report() -> Dataset:
        ds = Dataset()
        ds.PatientID, ds.PatientName = "P1", "Doe^Jane"
        text = Dataset()
        text.ValueType, text.TextValue = "TEXT", "Jane Doe has a 12 mm nodule"
        name = Dataset()
        name.ValueType, name.PersonName = "PNAME", "Smith^John"
        container = Dataset()
        container.ValueType, container.ContentSequence = "CONTAINER", [text, name]
        ds.ContentSequence = [container]
        return ds

    basic = report()
    deidentify_dataset(basic, key=KEY)
    text, name = basic.ContentSequence[0].ContentSequence
    assert text.TextValue == "ANONYMIZED" and name.PersonName == "ANONYMOUS"
    cleaned = report()
    deidentify_dataset(cleaned, key=KEY, options=["clean-structured-content"])
    text, name = cleaned.ContentSequence[0].ContentSequence
    assert text.TextValue == "has a 12 mm nodule" and name.PersonName == "ANONYMOUS"


def test_input_with_empty_patient_id_gets_no_shared_pseudonym():
    ds = Dataset()
    ds.PatientID, ds.PatientName = "", ""
    record = deidentify_dataset(ds, key=KEY)
    assert ds["PatientID"].is_empty and ds["PatientName"].is_empty and record.pseudonym == ""
