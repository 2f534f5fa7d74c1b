"""A folder in, a de-identified tree out: layout, audit log, bad input, determinism, re-runs."""

import datetime
import json
import shutil

import pydicom
import pytest

from medsight.deid import date_offset, deidentify_tree, pseudonym
from medsight.errors import MedsightError
from tests.deid import KEY, OTHER_KEY, strict_reading, write_cohort


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """2 patients x 2 visits x 4 slices, a text file, a truncated file, a force-only file and
    one slice that says it has burned-in annotation."""
    src = tmp_path_factory.mktemp("deid-tree") / "in"
    phi = write_cohort(src)
    bad = src / "odd"
    bad.mkdir()
    slices = sorted(src.rglob("*.dcm"))
    raw = slices[0].read_bytes()
    (bad / "notes.txt").write_text(f"patient {next(iter(phi.values()))['PatientName']}\n")
    (bad / "cut.dcm").write_bytes(raw[: len(raw) - 100])
    (bad / "no_preamble.dcm").write_bytes(raw[132:])  # readable only with force=True
    ds = pydicom.dcmread(slices[1])
    ds.BurnedInAnnotation = "YES"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.save_as(bad / "burned.dcm", enforce_file_format=True)
    return src, phi


def _tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _audit(summary):
    with open(summary["audit_log"], encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def first_run(inputs, tmp_path_factory):
    src, _ = inputs
    dst = tmp_path_factory.mktemp("deid-tree-out") / "out"
    return dst, deidentify_tree(src, dst, key=KEY, options=["retain-longitudinal-modified"])


def test_tree_is_named_by_new_uids_and_valid(inputs, first_run):
    src, phi = inputs
    dst, summary = first_run
    # 16 slices: written, or quarantined when the text detector finds something in them
    assert summary["files"] == 20 and summary["rejected"] == 3
    assert summary["written"] + summary["quarantined"] == 17 and summary["written"] >= 12
    assert summary["audit_log"] == str(dst.parent / "out.deid_audit.jsonl")  # beside, not inside
    outputs = sorted(dst.rglob("*.dcm"))
    assert len(outputs) == summary["written"]
    assert all(p.is_dir() or p.suffix == ".dcm" for p in dst.rglob("*"))  # nothing else in OUT
    names = {part for p in outputs for part in p.relative_to(dst).parts}
    assert not any(name.split("_")[0] in part for name in phi for part in names)  # no patient ID in paths
    with strict_reading():
        for path in outputs:
            ds = pydicom.dcmread(path)
            assert path.relative_to(dst).as_posix() == (
                f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
            )
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert ds.PatientIdentityRemoved == "YES" and ds.PatientID.startswith("ANON-")


def test_audit_log_has_one_row_per_input_with_reasons(inputs, first_run):
    src, _ = inputs
    rows = {row["input"]: row for row in _audit(first_run[1])}
    assert sorted(rows) == sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert rows["odd/notes.txt"]["status"] == "rejected" and rows["odd/notes.txt"]["output"] is None
    assert rows["odd/notes.txt"]["reasons"] == ["not a DICOM file"]
    assert "truncated" in rows["odd/cut.dcm"]["reasons"][0]
    assert "force=True" in rows["odd/no_preamble.dcm"]["reasons"][0]
    burned = rows["odd/burned.dcm"]
    assert burned["status"] == "quarantined" and burned["output"] is None
    assert any("Burned In Annotation" in reason or "burned" in reason.lower() for reason in burned["reasons"])
    for row in rows.values():
        if row["status"] == "written":
            assert row["actions"]["U"] >= 3 and row["actions"]["C"] > 0 and row["output"].endswith(".dcm")
        elif row["status"] == "quarantined" and row["input"] != "odd/burned.dcm":
            assert "text region(s) found in the pixels" in row["reasons"][0]


def test_dates_shift_per_patient_across_files(inputs, first_run):
    _, phi = inputs
    by_patient = {}
    for path in first_run[0].rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        by_patient.setdefault(ds.PatientID, set()).add(ds.StudyDate)
    for name, values in phi.items():
        alias = pseudonym(KEY, values["PatientID"])
        shifted = date_offset(KEY, values["PatientID"])
        original = datetime.date.fromisoformat(values["StudyDate"])
        assert (original + datetime.timedelta(days=shifted)).strftime("%Y%m%d") in by_patient[alias], name


def test_same_key_same_bytes_other_key_other_uids(inputs, first_run, tmp_path):
    src, _ = inputs
    dst, _ = first_run
    deidentify_tree(src, tmp_path / "again", key=KEY, options=["retain-longitudinal-modified"])
    assert _tree(tmp_path / "again") == _tree(dst)
    deidentify_tree(src, tmp_path / "other", key=OTHER_KEY, options=["retain-longitudinal-modified"])
    ours = {p for p in _tree(dst)}
    theirs = {p for p in _tree(tmp_path / "other")}
    assert len(theirs) == len(ours) and not ours & theirs


def test_interrupted_run_finishes_with_the_same_result(inputs, first_run, tmp_path):
    src, _ = inputs
    dst, summary = first_run
    half = tmp_path / "half"
    shutil.copytree(src, half)
    for path in sorted(half.rglob("*.dcm"))[::2]:
        path.unlink()
    out = tmp_path / "out"
    deidentify_tree(half, out, key=KEY, options=["retain-longitudinal-modified"])
    (out / ".1.2.3.deadbeef.tmp.dcm").write_bytes(b"half-written")  # what a killed writer leaves
    again = deidentify_tree(src, out, key=KEY, options=["retain-longitudinal-modified"])
    assert _tree(out) == _tree(dst)
    assert _audit(again) == _audit(summary)


def test_parallel_run_gives_the_same_tree(inputs, first_run, tmp_path):
    src, _ = inputs
    deidentify_tree(src, tmp_path / "par", key=KEY, options=["retain-longitudinal-modified"], jobs=2)
    assert _tree(tmp_path / "par") == _tree(first_run[0])


@pytest.mark.parametrize(
    "header, options, regions, status, searched",
    [
        ({}, (), [], "written", False),  # an MR slice: not at risk
        ({}, ("clean-pixel-data",), [(0, 0, 4, 8)], "written", False),  # not at risk: not searched
        ({"Modality": "OT"}, (), [(0, 0, 4, 8)], "quarantined", False),  # at risk: kept out unchecked
        ({"Modality": "OT"}, ("clean-pixel-data",), [(0, 0, 4, 8)], "written", True),  # masked
        ({"Modality": "OT"}, ("clean-pixel-data",), [], "written", True),  # checked, nothing found
        (
            {"BurnedInAnnotation": "YES"},
            ("clean-pixel-data",),
            [],
            "quarantined",
            True,
        ),  # declared, not found
    ],
)
def test_burned_in_text_policy(inputs, tmp_path, monkeypatch, header, options, regions, status, searched):
    from medsight.deid import pixels

    src, _ = inputs
    masked = []
    calls = []
    monkeypatch.setattr(pixels, "find_text_regions", lambda ds: calls.append(ds) or regions)
    monkeypatch.setattr(pixels, "mask_regions", lambda ds, found: masked.append(found))
    one = tmp_path / "one"
    one.mkdir()
    ds = pydicom.dcmread(sorted(src.glob("MRI-0001_0/*.dcm"))[0])
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    ds.save_as(one / "slice.dcm", enforce_file_format=True)
    (row,) = _audit(deidentify_tree(one, tmp_path / "out", key=KEY, options=options))
    assert row["status"] == status and len(list((tmp_path / "out").rglob("*.dcm"))) == (status == "written")
    assert bool(calls) == searched
    assert masked == ([regions] if regions and searched else [])
    assert status == "written" or "burned-in text suspected" in row["reasons"][-1]


def test_reid_table_is_kept_apart(inputs, tmp_path):
    src, phi = inputs
    with pytest.raises(MedsightError, match="re-identification table must not be inside"):
        deidentify_tree(src, tmp_path / "out", key=KEY, reid_table=tmp_path / "out" / "reid.csv")
    summary = deidentify_tree(src, tmp_path / "out", key=KEY, reid_table=tmp_path / "reid.csv")
    lines = (tmp_path / "reid.csv").read_text().splitlines()
    assert lines[0] == "kind,original,replacement" and summary["reid_table"] == str(tmp_path / "reid.csv")
    patient = next(iter(phi.values()))["PatientID"]
    assert f"patient,{patient},{pseudonym(KEY, patient)}" in lines
    assert sum(line.startswith("uid,") for line in lines) > 16
    assert not any(line.startswith("date-offset") for line in lines)  # dates were not shifted


def test_overlapping_folders_are_refused(inputs, tmp_path):
    src, _ = inputs
    with pytest.raises(MedsightError, match="overlap"):
        deidentify_tree(src, src / "out", key=KEY)
    with pytest.raises(MedsightError, match="not found"):
        deidentify_tree(tmp_path / "missing", tmp_path / "out", key=KEY)
