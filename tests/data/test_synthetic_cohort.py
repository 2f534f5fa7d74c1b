"""Cohorts of every kind: determinism, patients and sites, export with a manifest, DICOM, CLI."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from medsight.data import read_manifest
from medsight.data.synthetic import KINDS, SITES, cohort, export_cohort, get_kind
from medsight.io import read

# Coarse grids keep the 3D kinds fast; the phantoms are the same, only sampled coarser.
SMALL = {
    "chest-xray": {},
    "ultrasound": {},
    "brain-mri": {"shape": (44, 52, 40), "spacing": 4.0},
    "body-ct": {"shape": (64, 52, 36), "spacing": (6.0, 6.0, 6.0)},
}


def _cases(kind, seed, n=2, **kw):
    return list(cohort(kind, n, seed=seed, timepoints=2, **SMALL[kind], **kw))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_cohort_other_seed_other_cohort(kind):
    first, again, other = _cases(kind, 7), _cases(kind, 7), _cases(kind, 8)
    assert len(first) == 4
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.image.array, b.image.array)
        np.testing.assert_array_equal(a.mask.array, b.mask.array)
        assert np.array_equal(a.image.affine, b.image.affine)
        assert (a.label, a.boxes, a.truth, a.attributes, a.patient) == (
            b.label,
            b.boxes,
            b.truth,
            b.attributes,
            b.patient,
        )
    assert not any(np.array_equal(a.image.array, c.image.array) for a, c in zip(first, other))


@pytest.mark.parametrize("kind", KINDS)
def test_patients_visits_and_attributes(kind):
    spec = get_kind(kind)
    cases = _cases(kind, 1, n=3)
    ids = [c.patient.patient_id for c in cases]
    assert ids == [f"{spec.prefix}-0001"] * 2 + [f"{spec.prefix}-0002"] * 2 + [f"{spec.prefix}-0003"] * 2
    for first, later in zip(cases[::2], cases[1::2]):
        assert (first.timepoint, later.timepoint) == (0, 1) and later.days > first.days == 0
        assert later.patient == first.patient and later.label == first.label
    for case in cases:
        attributes = case.attributes
        assert set(attributes) == {"sex", "age", "site", "scanner", "days"}
        assert attributes["sex"] in ("F", "M") and attributes["site"] in SITES
        assert spec.ages[0] <= case.patient.age <= spec.ages[1]
        assert attributes["scanner"] == " ".join(SITES[attributes["site"]].scanners[spec.modality])
        assert case.modality == spec.modality and case.image.ndim == spec.ndim


def test_classes_are_balanced_and_can_be_chosen():
    labels = [c.label for c in cohort("chest-xray", 9, seed=2)]
    assert sorted(labels) == sorted(["normal", "consolidation", "nodule"] * 3)
    assert {c.label for c in cohort("ultrasound", 4, seed=2, classes="benign,malignant")} == {
        "benign",
        "malignant",
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: cohort("mri", 2),
            "did you mean 'brain-mri'.*kinds: chest-xray, brain-mri, body-ct, ultrasound",
        ),
        (lambda: cohort("xray", 0), "unknown phantom kind"),
        (lambda: cohort("chest-xray", 0), "n must be"),
        (lambda: cohort("chest-xray", 2, classes=["tumour"]), "classes must be among"),
        (lambda: cohort("body-ct", 2, classes=["normal"]), "have no classes"),
        (lambda: cohort("brain-mri", 2, colour="red"), "take no option colour"),
        (lambda: cohort("brain-mri", 2, timepoints=9), "reach beyond"),
        (lambda: cohort("chest-xray", 2, site_effect=-1), "site_effect must be"),
        (lambda: export_cohort("brain-mri", "unused", format="png"), "PNG holds 2D"),
        (lambda: export_cohort("ultrasound", "unused", format="jpeg"), "format must be one of"),
        (
            lambda: export_cohort("ultrasound", "unused", format="dicom", transfer_syntax="zip"),
            "transfer_syntax",
        ),
    ],
)
def test_bad_arguments_fail_at_once_and_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("kind", KINDS)
def test_site_effect_is_visible_when_configured_and_absent_when_off(kind):
    spec = get_kind(kind)
    (base,) = list(cohort(kind, 1, seed=5, timepoints=1, site_effect=0, **SMALL[kind]))
    images = {}
    for strength in (0.0, 1.0):
        for site in ("A", "B"):
            patient = replace(base.patient, site=site)
            extra = {"label": base.label} if spec.classes else {}
            case = spec.make(seed=_seed(5), patient=patient, site_effect=strength, **extra, **SMALL[kind])
            images[strength, site] = case.image.array.astype(float)
    np.testing.assert_array_equal(images[0.0, "A"], images[0.0, "B"])
    np.testing.assert_array_equal(images[0.0, "A"], base.image.array)  # site A is the reference
    np.testing.assert_array_equal(images[1.0, "A"], images[0.0, "A"])
    assert not np.array_equal(images[1.0, "B"], images[1.0, "A"])
    # Site B's scanner renders brighter (gain; for CT a calibration offset of +12 HU).
    a, b = images[1.0, "A"], images[1.0, "B"]
    assert b.mean() - a.mean() > 0.004 * (a.max() - a.min())


def _seed(cohort_seed: int, number: int = 0) -> int:
    """The seed `cohort` gives patient `number`."""
    return int(np.random.SeedSequence([cohort_seed, number]).generate_state(1)[0])


@pytest.mark.parametrize("kind", KINDS)
def test_export_writes_a_manifest_that_loads(kind, tmp_path):
    spec = get_kind(kind)
    manifest_path = export_cohort(kind, tmp_path / "out", n=2, seed=3, timepoints=2, **SMALL[kind])
    assert manifest_path == tmp_path / "out" / "manifest.json"
    manifest = read_manifest(manifest_path)
    truth = json.loads((tmp_path / "out" / "truth.json").read_text())
    assert len(manifest) == 4 and manifest.label_names == spec.label_names
    assert manifest.classes == (list(spec.classes) if spec.classes else None)
    expected = list(cohort(kind, 2, seed=3, timepoints=2, **SMALL[kind]))
    for sample, case in zip(manifest, expected):
        assert not sample.image.startswith("/") and manifest.path(sample.image).is_file()
        assert manifest.path(sample.mask).is_file()
        image, mask = manifest.load_image(sample), manifest.load_mask(sample)
        assert image.same_grid(mask) and image.spatial_shape[:2] == case.image.spatial_shape[:2]
        np.testing.assert_array_equal(mask.array.reshape(case.mask.array.shape), case.mask.array)
        assert sample.patient_id == case.patient.patient_id and sample.timepoint == case.timepoint
        assert sample.label == case.label and sample.attributes == case.attributes
        assert sample.boxes == (case.boxes if spec.has_boxes else None)
        assert truth["cases"][sample.image]["patient_id"] == sample.patient_id
    if spec.ndim == 3:  # NIfTI keeps voxels and geometry exactly
        np.testing.assert_array_equal(manifest.load_image(manifest.samples[0]).array, expected[0].image.array)
        assert manifest.load_image(manifest.samples[0]).same_grid(expected[0].image, atol=1e-4)
    with pytest.raises(Exception, match="not a new or empty folder"):
        export_cohort(kind, tmp_path / "out", n=1)


@pytest.mark.parametrize("kind", KINDS)
def test_dicom_export_reads_back_with_geometry_and_phi(kind, tmp_path):
    pydicom = pytest.importorskip("pydicom")
    sitk = pytest.importorskip("SimpleITK")
    from medsight.image import Image

    out = tmp_path / "dicom_out"
    manifest = read_manifest(
        export_cohort(kind, out, n=1, seed=4, timepoints=1, format="dicom", **SMALL[kind])
    )
    (case,) = list(cohort(kind, 1, seed=4, timepoints=1, **SMALL[kind]))
    (sample,) = manifest.samples
    folder = manifest.path(sample.image)
    expected = case.image.array if case.image.ndim == 3 else case.image.array[..., None]

    ours = read(folder)
    np.testing.assert_array_equal(ours.array, expected)
    np.testing.assert_allclose(ours.affine, case.image.affine, atol=1e-4)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    theirs = Image.from_sitk(reader.Execute())
    np.testing.assert_array_equal(theirs.array, expected)
    np.testing.assert_allclose(theirs.affine, case.image.affine, atol=1e-4)
    assert manifest.load_mask(sample).same_grid(manifest.load_image(sample))

    phi = json.loads((out / "phi.json").read_text(encoding="utf-8"))
    written = phi["series"][sample.image]
    assert written["PatientName"].count("^") >= 1 and len(written["PatientBirthDate"]) == 8
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for keyword, value in written.items():
            assert str(ds.data_element(keyword).value) == value, keyword
        raw = path.read_bytes()  # what a leak test searches: the distinctive values, as stored
        assert phi["values"] and all(value.encode("utf-8") in raw for value in phi["values"]), path
        assert ds.StudyDate == case.patient.date_at(case.days).strftime("%Y%m%d")
        assert ds.Modality == get_kind(kind).modality and ds.Manufacturer in case.attributes["scanner"]


def test_dicom_export_is_reproducible(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    folders = []
    for name in ("a", "b"):
        export_cohort("chest-xray", tmp_path / name, n=1, seed=9, format="dicom")
        folders.append(next((tmp_path / name / "dicom").rglob("*.dcm")))
    first, second = (pydicom.dcmread(p) for p in folders)
    assert first.SOPInstanceUID == second.SOPInstanceUID and first.StudyInstanceUID == second.StudyInstanceUID
    assert folders[0].read_bytes() == folders[1].read_bytes()


def _run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "medsight", "synth", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_cli_writes_cohort_manifest_and_provenance(tmp_path):
    result = _run(
        "ultrasound", "--n", "3", "--out", "cohort", "--seed", "2", "--site-effect", "0.5", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = tmp_path / "cohort"
    assert "manifest.json" in result.stdout
    manifest = read_manifest(out / "manifest.json")
    assert len(manifest) == 3 and all(manifest.path(s.image).is_file() for s in manifest)
    record = json.loads((out / "provenance.json").read_text())
    assert record["parameters"]["kind"] == "ultrasound" and record["parameters"]["seed"] == 2
    written = {f["path"] for f in record["outputs"][0]["files"]}
    assert "cohort/manifest.json" in written and len(written) == 3 + 3 + 2  # images, masks, json files


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lungs", "--n", "2", "--out", "x"], "unknown phantom kind 'lungs'"),
        (["body-ct", "--n", "2", "--out", "x", "--format", "png"], "PNG holds 2D"),
        (["chest-xray", "--n", "-1", "--out", "x"], "n must be"),
    ],
)
def test_cli_bad_arguments_give_one_line_and_exit_1(args, message, tmp_path):
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()  # nothing written
