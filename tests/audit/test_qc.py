"""Quality checks on small synthetic datasets with planted problems, and on their clean twins.

Two datasets: 2D "radiographs" (PNG, classification, with splits and patients) and 3D CT
(NIfTI in HU, with label masks). Each is built clean, or with one planted problem per
sample named in PLANTED_*; QC must report exactly those, with the right files and
severity, and nothing but info on the clean twin.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medsight.audit import Finding, Report, Thresholds, check_quality
from medsight.data import Manifest, Sample, write_manifest
from medsight.image import Image
from medsight.io import write

CLASSES = ["normal", "pneumonia"]
SPLIT_OF = ["train"] * 14 + ["val"] * 5 + ["test"] * 5


def _grid(shape):
    return np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")


def radiograph(rng, size=64) -> np.ndarray:
    """A (size, size) uint8 picture: a dim background, bright random ellipses, noise."""
    x, y = _grid((size, size))
    pixels = np.full((size, size), 30.0)
    for _ in range(4):
        cx, cy = rng.uniform(0.15, 0.85, 2) * size
        rx, ry = rng.uniform(0.08, 0.3, 2) * size
        pixels[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1] = rng.uniform(120, 230)
    pixels += rng.normal(0, 6, pixels.shape)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def save_png(pixels: np.ndarray, path: Path) -> None:
    """Save (rows, cols) uint8 pixels through MedSight's writer, values unchanged."""
    write(Image(pixels.T[None]), path, window=(127.5, 255.0))


def xray_dataset(root: Path, *, plant: bool) -> Path:
    """24 one-image patients, balanced classes in every split; with `plant`, PLANTED_XRAY."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    pictures = [radiograph(rng) for _ in range(24)]
    samples = []

    def add(name, pixels, label, patient, split):
        if pixels is not None:
            save_png(pixels, root / name)
        attributes = {"sex": "FM"[len(samples) % 2], "age": 40 + len(samples), "site": "A"}
        samples.append(
            Sample(image=name, label=label, patient_id=patient, split=split, attributes=attributes)
        )

    for n, (pixels, split) in enumerate(zip(pictures, SPLIT_OF)):
        label = CLASSES[n % 2]
        if plant and n == 7:
            label = "pnemonia"  # typo: not a declared class
        if plant and n == 8:
            pixels = pixels // 4  # under-exposed: intensity range far from the rest
        add(f"x{n:02d}.png", pixels, label, f"p{n:02d}", split)
    if plant:
        # Same pixels, re-encoded as TIFF, in the test split under another patient id: leakage.
        PILImage.fromarray(pictures[1]).save(root / "dup_of_x01.tif")
        add("dup_of_x01.tif", None, CLASSES[1], "p90", "test")
        # A lossy re-encode of a train image in test: a near duplicate across splits.
        buffer = io.BytesIO()
        PILImage.fromarray(pictures[2]).save(buffer, format="JPEG", quality=90)
        (root / "x02_recompressed.jpg").write_bytes(buffer.getvalue())
        add("x02_recompressed.jpg", None, CLASSES[0], "p91", "test")
        # A byte copy within train: a duplicate, but no leakage.
        shutil.copy(root / "x04.png", root / "x04_copy.png")
        add("x04_copy.png", None, CLASSES[0], "p92", "train")
        # Patient p05 (train) comes back in test with another image.
        add("x05_followup.png", radiograph(np.random.default_rng(99)), CLASSES[1], "p05", "test")
        # A truncated file.
        data = (root / "x06.png").read_bytes()
        (root / "x06.png").write_bytes(data[: len(data) // 2])
    manifest = Manifest(samples=samples, root=root, name="xray", classes=CLASSES)
    return write_manifest(manifest, root / "manifest.json")


# (check, severity, files) QC must report on the planted radiographs, and nothing else.
PLANTED_XRAY = {
    ("duplicate", "error", ("x01.png", "dup_of_x01.tif")),
    ("near_duplicate", "error", ("x02.png", "x02_recompressed.jpg")),
    ("duplicate", "warning", ("x04.png", "x04_copy.png")),
    ("patient_leakage", "error", ("x05.png", "x05_followup.png")),
    ("unreadable", "error", ("x06.png",)),
    ("label_set", "error", ("x07.png",)),
    ("intensity", "warning", ("x08.png",)),
}


def ct_volume(rng, shape=(24, 20, 12)) -> tuple[np.ndarray, np.ndarray]:
    """An int16 CT in HU (air, body, lungs, an organ with a lesion, a bone) and its labels 0-2."""
    x, y, z = _grid(shape)
    scale = np.array(shape, dtype=float)

    def ellipsoid(centre, radii):
        c, r = np.asarray(centre) * scale, np.asarray(radii) * scale
        return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1

    hu = np.full(shape, -1000.0)
    hu[ellipsoid(rng.uniform(0.45, 0.55, 3), (rng.uniform(0.35, 0.42), rng.uniform(0.3, 0.4), 2))] = 30
    lung = rng.uniform(0.3, 0.4, 3)
    hu[ellipsoid(lung, (0.12, rng.uniform(0.1, 0.2), 0.3))] = -850
    organ_centre = rng.uniform(0.5, 0.65, 3)
    organ = ellipsoid(organ_centre, rng.uniform(0.1, 0.18, 3))
    lesion = ellipsoid(organ_centre, (0.06, 0.06, 0.12))
    hu[organ] = 60
    hu[lesion] = 100
    hu[ellipsoid(rng.uniform(0.4, 0.6, 3) * (1, 0.5, 1) + (0, 0.45, 0), (0.05, 0.05, 2))] = 700
    hu += rng.normal(0, 15, shape)
    labels = np.zeros(shape, np.uint8)
    labels[organ] = 1
    labels[lesion] = 2
    return np.clip(np.round(hu), -1024, 3071).astype(np.int16), labels


def _lps(spacing) -> np.ndarray:
    return np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])


def ct_dataset(root: Path, *, plant: bool) -> Path:
    """12 CT patients with organ/lesion masks; with `plant`, the problems in PLANTED_CT."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    samples = []
    for n in range(12):
        ct, labels = ct_volume(rng)
        spacing = (1.5 + 0.02 * (n % 5), 1.5 + 0.02 * (n % 5), 3.0)
        affine = mask_affine = _lps(spacing)
        attributes = {"modality": "CT", "sex": "FM"[n % 2], "age": 50 + n}
        if plant:
            if n == 1:
                labels = labels[:, :, :-1]  # mask one slice short: another grid
            elif n == 2:
                ct = (ct.astype(np.int32) + 1024).astype(np.int16)  # stored values, no rescale
            elif n == 3:
                labels = np.zeros_like(labels)
            elif n == 4:
                labels[:3, :3, :3] = 7  # a label nobody declared
            elif n == 5:
                affine = mask_affine = _lps((1.5, 1.5, 12.0))  # odd slice spacing
            elif n == 6:
                del attributes["age"]
            elif n == 8:
                affine = mask_affine = np.diag([*spacing, 1.0])  # RAS where the rest is LPS
            elif n == 9:
                ct = (ct.astype(np.int32) - 1024).astype(np.int16)  # rescale intercept applied twice
        write(Image(ct[None], affine), root / f"c{n:02d}.nii.gz")
        write(Image(labels[None], mask_affine, kind="label"), root / f"c{n:02d}_mask.nii.gz")
        split = "train" if n < 8 else "val" if n < 10 else "test"
        samples.append(
            Sample(
                image=f"c{n:02d}.nii.gz",
                mask=f"c{n:02d}_mask.nii.gz",
                patient_id=f"c{n:02d}",
                split=split,
                attributes=attributes,
            )
        )
    if plant:
        data = (root / "c07.nii.gz").read_bytes()
        (root / "c07.nii.gz").write_bytes(data[: len(data) // 3])
    manifest = Manifest(samples=samples, root=root, name="ct", label_names={1: "organ", 2: "lesion"})
    return write_manifest(manifest, root / "manifest.json")


PLANTED_CT = {
    ("grid", "error", ("c01.nii.gz", "c01_mask.nii.gz")),
    ("ct_units", "error", ("c02.nii.gz",)),
    ("empty_mask", "warning", ("c03_mask.nii.gz",)),
    ("label_set", "error", ("c04_mask.nii.gz",)),
    ("geometry", "warning", ("c05.nii.gz",)),
    ("missing", "warning", ("c06.nii.gz",)),
    ("unreadable", "error", ("c07.nii.gz",)),
    ("geometry", "warning", ("c08.nii.gz",)),
    ("ct_units", "warning", ("c09.nii.gz",)),
}


def problems(report: Report) -> set[tuple]:
    """Errors and warnings as (check, severity, files)."""
    return {(f.check, f.severity, f.files) for f in report.findings if f.severity != "info"}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("qc")
    return {
        "xray_clean": xray_dataset(base / "xray_clean", plant=False),
        "xray_planted": xray_dataset(base / "xray_planted", plant=True),
        "ct_clean": ct_dataset(base / "ct_clean", plant=False),
        "ct_planted": ct_dataset(base / "ct_planted", plant=True),
    }


@pytest.mark.parametrize("name", ["xray_clean", "ct_clean"])
def test_clean_dataset_gives_no_errors_or_warnings(datasets, name):
    report = check_quality(datasets[name])
    assert problems(report) == set()
    assert report.n_readable == report.n_samples > 0
    assert not report.fails("warning")
    if name == "xray_clean":
        (counts,) = [f for f in report.findings if f.check == "class_balance"]
        assert counts.severity == "info" and counts.details["counts"] == {"normal": 12, "pneumonia": 12}


@pytest.mark.parametrize("name, planted", [("xray_planted", PLANTED_XRAY), ("ct_planted", PLANTED_CT)])
def test_every_planted_problem_is_found_with_its_files_and_severity(datasets, name, planted):
    report = check_quality(datasets[name])
    assert problems(report) == planted
    assert report.fails("error") and not report.fails("never")
    summary = report.summary
    assert summary["samples"] == report.n_samples and summary["readable"] == report.n_samples - 1
    for severity in ("error", "warning", "info"):
        assert summary[severity] == sum(f.severity == severity for f in report.findings)
    ranks = [("error", "warning", "info").index(f.severity) for f in report.findings]
    assert ranks == sorted(ranks)  # errors first


def test_planted_radiograph_findings_say_what_and_who(datasets):
    findings = {(f.check, f.files): f for f in check_quality(datasets["xray_planted"]).findings}
    assert "truncated" in findings["unreadable", ("x06.png",)].message
    leak = findings["patient_leakage", ("x05.png", "x05_followup.png")]
    assert leak.patients == ("p05",) and leak.details["splits"] == {"train": 1, "test": 1}
    assert "train and test" in findings["duplicate", ("x01.png", "dup_of_x01.tif")].message
    near = findings["near_duplicate", ("x02.png", "x02_recompressed.jpg")]
    assert near.patients == ("p02", "p91") and near.details["hash_bits"] == 256
    assert "within train" in findings["duplicate", ("x04.png", "x04_copy.png")].message
    assert "did you mean 'pneumonia'" in findings["label_set", ("x07.png",)].message


def test_planted_ct_findings_say_what_and_who(datasets):
    findings = {(f.check, f.files): f for f in check_quality(datasets["ct_planted"]).findings}
    assert "NIfTI" in findings["unreadable", ("c07.nii.gz",)].message
    assert "24 x 20 x 11" in findings["grid", ("c01.nii.gz", "c01_mask.nii.gz")].message
    assert "no negative values" in findings["ct_units", ("c02.nii.gz",)].message
    assert "below air" in findings["ct_units", ("c09.nii.gz",)].message
    assert "1 of 12 masks" in findings["empty_mask", ("c03_mask.nii.gz",)].message
    assert "mask value 7" in findings["label_set", ("c04_mask.nii.gz",)].message
    spacing = findings["geometry", ("c05.nii.gz",)]
    assert spacing.details["kind"] == "spacing" and spacing.details["values"]["c05.nii.gz"] == [
        1.5,
        1.5,
        12.0,
    ]
    orientation = findings["geometry", ("c08.nii.gz",)]
    assert orientation.details["kind"] == "orientation" and "RAS" in orientation.message
    assert findings["missing", ("c06.nii.gz",)].message == "age missing on 1 of 12 samples"


def test_report_to_dict_is_json_with_every_finding(datasets):
    import json

    report = check_quality(datasets["ct_planted"])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["format"] == "medsight-qc" and data["summary"]["error"] == 4
    assert len(data["findings"]) == len(report.findings)
    assert {tuple(f["files"]) for f in data["findings"]} == {files for _, _, files in PLANTED_CT}
    assert data["thresholds"]["near_duplicate_bits"] == Thresholds().near_duplicate_bits
    assert set(data["checks"]) >= {"unreadable", "duplicate", "near_duplicate", "patient_leakage"}
    assert data["seconds"]["scan"] > 0


def test_each_file_is_read_once_and_progress_reaches_the_total(datasets, monkeypatch):
    import medsight.io

    reads: list[str] = []
    original = medsight.io.read

    def counting_read(path, **options):
        reads.append(Path(path).name)
        return original(path, **options)

    monkeypatch.setattr(medsight.io, "read", counting_read)
    ticks: list[tuple[int, int]] = []
    check_quality(datasets["ct_clean"], workers=1, progress=lambda done, total: ticks.append((done, total)))
    assert sorted(reads) == sorted({*reads}) and len(reads) == 24  # 12 images + 12 masks, once each
    assert ticks[0] == (0, 12) and ticks[-1] == (12, 12)
    assert [done for done, _ in ticks] == list(range(13))


def tiny_dataset(root: Path, labels, *, classes=None, patients=True, boxes=None, arrays=None) -> Path:
    """Distinct 16 x 16 noise images (or `arrays` as NIfTI), one per label, without splits."""
    root.mkdir()
    rng = np.random.default_rng(len(labels))
    samples = []
    for n, label in enumerate(labels):
        if arrays is None:
            name = f"t{n}.png"
            save_png(rng.integers(0, 256, (16, 16)).astype(np.uint8), root / name)
        else:
            name = f"t{n}.nii.gz"
            write(Image(arrays[n][None]), root / name)
        samples.append(
            Sample(
                image=name,
                label=label,
                patient_id=f"q{n}" if patients else None,
                boxes=boxes[n] if boxes else None,
            )
        )
    return write_manifest(Manifest(samples=samples, root=root, classes=classes), root / "manifest.json")


def test_class_imbalance_and_empty_classes_are_warnings(tmp_path):
    skewed = check_quality(tiny_dataset(tmp_path / "skewed", ["a"] * 11 + ["b"]))
    assert problems(skewed) == {("class_balance", "warning", ())}
    (warning,) = [f for f in skewed.findings if f.severity == "warning"]
    assert "'b' has 1 samples" in warning.message and "11:1" in warning.message
    # 19:2 is under the 10:1 ratio, but 'b' holds under 10% of a two-class dataset.
    minority = check_quality(tiny_dataset(tmp_path / "minority", ["a"] * 19 + ["b"] * 2))
    assert [f.details["counts"] for f in minority.findings if f.severity == "warning"] == [{"a": 19, "b": 2}]
    balanced = check_quality(
        tiny_dataset(tmp_path / "three", ["a", "b", "c"] * 3, classes=["a", "b", "c", "d"])
    )
    assert [f.message for f in balanced.findings if f.severity == "warning"] == [
        "declared classes without samples: d"
    ]


def test_samples_without_patient_ids_are_a_warning(tmp_path):
    report = check_quality(tiny_dataset(tmp_path / "anonymous", ["a", "b"] * 5, patients=False))
    assert problems(report) == {("missing", "warning", ())}
    assert "patient level" in report.findings[0].message


def test_boxes_outside_the_image_are_errors(tmp_path):
    inside, outside = [{"box": [0, 0, 16, 16], "label": "x"}], [{"box": [4, 4, 30, 8], "label": "x"}]
    report = check_quality(tiny_dataset(tmp_path / "boxes", ["a", "b"] * 5, boxes=[inside] * 9 + [outside]))
    assert problems(report) == {("box_bounds", "error", ("t9.png",))}


def test_nan_voxels_are_an_error_and_constant_images_a_warning(tmp_path):
    rng = np.random.default_rng(1)
    arrays = [rng.normal(100, 20, (12, 12, 4)).astype(np.float32) for _ in range(10)]
    arrays[3][0, 0, 0] = np.nan
    arrays[5] = np.full((12, 12, 4), 7.0, np.float32)
    report = check_quality(tiny_dataset(tmp_path / "odd", ["a", "b"] * 5, arrays=arrays))
    assert problems(report) == {
        ("intensity", "error", ("t3.nii.gz",)),
        ("intensity", "warning", ("t5.nii.gz",)),
    }


def test_the_same_pixels_in_any_format_or_type_are_exact_duplicates(tmp_path):
    pixels = radiograph(np.random.default_rng(5))
    root = tmp_path / "formats"
    root.mkdir()
    save_png(pixels, root / "a.png")
    write(Image(pixels.T[None].astype(np.int16)), root / "b.nii.gz")  # another type, a 3D file
    write(Image(np.asfortranarray(pixels.T[None].astype(np.float32))), root / "c.nrrd")
    save_png(radiograph(np.random.default_rng(6)), root / "d.png")
    samples = [
        Sample(image=n, patient_id=n[0], split=s)
        for n, s in zip(["a.png", "b.nii.gz", "c.nrrd", "d.png"], ["train", "train", "test", "test"])
    ]
    report = check_quality(write_manifest(Manifest(samples=samples, root=root), root / "m.json"))
    duplicates = [f for f in report.findings if f.check == "duplicate"]
    assert [(f.severity, f.files) for f in duplicates] == [("error", ("a.png", "b.nii.gz", "c.nrrd"))]


def test_perceptual_hash_matches_imagehash_phash(datasets):
    imagehash = pytest.importorskip("imagehash")
    from medsight.audit._qc_hash import grey_view, perceptual_hash
    from medsight.io import read

    root = datasets["xray_clean"].parent
    differing = []
    for path in sorted(root.glob("x*.png"))[:8]:
        ours = int("".join(f"{int(w):016x}" for w in perceptual_hash(grey_view(read(path).array))), 16)
        theirs = int(str(imagehash.phash(PILImage.open(path), hash_size=16)), 16)
        differing.append(bin(ours ^ theirs).count("1"))
    assert max(differing) <= 6  # of 256: only 8-bit rounding in imagehash's resize differs


def test_qc_never_imports_torch(datasets):
    code = (
        "import sys\n"
        "from medsight.audit import check_quality\n"
        "import medsight.cli.qc\n"
        f"check_quality({str(datasets['ct_planted'])!r})\n"
        "print('torch' in sys.modules, 'monai' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_finding_rejects_an_unknown_severity():
    with pytest.raises(ValueError, match="severity"):
        Finding("x", "fatal", "no such severity")


def test_near_groups_chain_close_hashes_across_row_blocks():
    from medsight.audit._qc_hash import near_groups

    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, (300, 4), dtype=np.uint64)  # random: ~128 bits apart
    flip = np.uint64(1)
    chain = [10, 20, 30]  # 10-20 and 20-30 are 3 bits apart, 10-30 six: one group by chaining
    hashes[20] = hashes[10]
    hashes[20, 0] ^= flip | flip << np.uint64(5) | flip << np.uint64(9)
    hashes[30] = hashes[20]
    hashes[30, 2] ^= flip << np.uint64(1) | flip << np.uint64(6) | flip << np.uint64(10)
    hashes[200:260] = hashes[199]  # sixty copies of one hash
    unlinked = np.arange(300)
    unlinked[250:260] = unlinked[199]  # ... ten of them marked as exact duplicates of 199
    for block_bytes in (1, 1 << 25):  # one row at a time, or all at once
        groups = near_groups(hashes, 4, unlinked=unlinked, block_bytes=block_bytes)
        assert sorted(groups) == [(chain, 3, 3), ([199, *range(200, 260)], 0, 0)]
    assert near_groups(hashes, 2, unlinked=np.arange(300))[0] == ([199, *range(200, 260)], 0, 0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32])
def test_percentiles_by_counting_equal_numpys(dtype):
    from medsight.audit._qc_scan import percentiles

    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    rng = np.random.default_rng(2)
    for n in (1, 2, 999):
        values = rng.integers(max(info.min, -3000), min(info.max, 3000), n, endpoint=True).astype(dtype)
        assert np.allclose(
            percentiles(values, (0, 1, 50, 99, 100)), np.percentile(values, (0, 1, 50, 99, 100))
        )
