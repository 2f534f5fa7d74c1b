"""measure_labels and `medsight measure`: analytic shapes, geometry, intensities, bad input, real masks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from medsight.errors import FormatError, GeometryError, NotFoundError
from medsight.image import LPS_TO_RAS, Image
from medsight.io import write
from medsight.tasks.segment.measure import measure_file, measure_labels

SPACING = (0.7, 0.9, 1.3)


def _sphere(radius: float, spacing=SPACING, offset=(0.3, -0.2, 0.1)) -> tuple[np.ndarray, np.ndarray]:
    """A ball of `radius` mm on an anisotropic grid; its centre in voxel indices (off the grid points)."""
    spacing = np.array(spacing)
    n = (np.ceil(2 * radius / spacing) + 4).astype(int)
    centre = (n - 1) / 2 + np.array(offset)
    grids = np.meshgrid(*[(np.arange(k) - centre[a]) * spacing[a] for a, k in enumerate(n)], indexing="ij")
    return (sum(g**2 for g in grids) <= radius**2).astype(np.uint8), centre


def _lps_affine(spacing=SPACING) -> np.ndarray:
    """An oblique LPS-oriented grid (what a DICOM series gives)."""
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = [-12.0, 40.0, -75.0]
    return LPS_TO_RAS @ affine


def test_sphere_volume_surface_extent_centroid():
    radius = 12.0
    mask, centre = _sphere(radius)
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = [5.0, -7.0, 11.0]
    (row,) = measure_labels(Image(mask[None], affine, kind="label"))
    assert row["label"] == 1 and row["voxels"] == int(mask.sum()) and row["name"] is None
    assert row["volume_ml"] == pytest.approx(4 / 3 * np.pi * radius**3 / 1000, rel=0.01)
    # Marching cubes on a binary mask overestimates a sphere's area by its staircase (~8%;
    # IBSI and pyradiomics share this bias, checked against pyradiomics below).
    assert 1.0 < row["surface_mm2"] / (4 * np.pi * radius**2) < 1.12
    for extent, step in zip(row["extent_mm"], SPACING):
        assert abs(extent - 2 * radius) <= 2 * step
    np.testing.assert_allclose(row["centroid_ras_mm"], affine[:3, 3] + centre * SPACING, atol=0.05)


def test_box_exact_on_an_lps_grid():
    labels = np.zeros((30, 20, 14), np.uint8)
    labels[3:23, 4:14, 3:11] = 2  # 20 x 10 x 8 voxels
    affine = _lps_affine()
    (row,) = measure_labels(Image(labels[None], affine, kind="label"), names={2: "box"})
    assert row["label"] == 2 and row["name"] == "box" and row["voxels"] == 1600
    assert row["volume_ml"] == pytest.approx(1600 * np.prod(SPACING) / 1000, rel=1e-12)
    np.testing.assert_allclose(row["extent_mm"], np.array([20, 10, 8]) * SPACING, rtol=1e-12)
    centre = np.array([12.5, 8.5, 6.5])  # mean voxel index of the box
    np.testing.assert_allclose(row["centroid_ras_mm"], (affine @ [*centre, 1])[:3], atol=1e-9)
    # An LPS grid: voxel axis i points to the patient's left, so RAS x falls along i.
    assert row["centroid_ras_mm"][0] < affine[0, 3]


def test_several_labels_names_from_metadata_and_image_statistics():
    labels = np.zeros((10, 8, 6), np.int16)
    labels[1:4, 1:3, 1:5] = 1
    labels[6:9, 4:7, 2:3] = 3
    ramp = np.broadcast_to(np.arange(10, dtype=np.float32)[:, None, None], labels.shape)
    label_map = Image(labels[None], kind="label", metadata={"label_names": {1: "liver", 3: "tumour"}})
    rows = measure_labels(label_map, image=Image(ramp[None].copy()))
    assert [(r["label"], r["name"], r["voxels"]) for r in rows] == [(1, "liver", 24), (3, "tumour", 9)]
    assert rows[0]["mean"] == pytest.approx(2.0) and rows[0]["sd"] == pytest.approx(np.std([1, 2, 3]))
    assert rows[1]["mean"] == pytest.approx(7.0)


def test_2d_area_and_perimeter_use_the_pixel_spacing():
    labels = np.zeros((12, 9), np.uint8)
    labels[2:9, 3:7] = 1  # 7 x 4 pixels
    dx, dy = 0.5, 2.0
    (row,) = measure_labels(Image(labels[None], np.diag([dx, dy, 1.0, 1.0]), kind="label"))
    assert "volume_ml" not in row and row["area_mm2"] == pytest.approx(28 * dx * dy)
    # The 0.5 contour runs through the boundary pixels' centres and cuts each corner diagonally.
    expected = 2 * (6 * dx + 3 * dy) + 4 * np.hypot(dx / 2, dy / 2)
    assert row["perimeter_mm"] == pytest.approx(expected)
    assert row["extent_mm"] == pytest.approx([7 * dx, 4 * dy])
    assert row["centroid_ras_mm"] == pytest.approx([5 * dx, 4.5 * dy, 0.0])


def test_whole_number_floats_are_labels_but_fractions_and_negatives_are_not():
    labels = np.zeros((6, 5, 4), np.float32)
    labels[1:3, 1:3, 1:3] = 1.0
    assert measure_labels(Image(labels[None], kind="label"))[0]["voxels"] == 8
    with pytest.raises(FormatError, match="not whole numbers") as info:
        measure_labels(Image((labels * 0.4)[None], metadata={"path": "prob.nii.gz"}))
    assert "prob.nii.gz" in str(info.value) and info.value.hint
    with pytest.raises(FormatError, match="negative"):
        measure_labels(Image((-labels).astype(np.int8)[None]))
    with pytest.raises(FormatError, match="one channel"):
        measure_labels(Image(np.stack([labels, labels])))
    assert measure_labels(Image(np.zeros((1, 4, 4, 4), np.uint8), kind="label")) == []


def test_image_on_another_grid_is_refused_unless_resampling_is_asked():
    labels = np.zeros((1, 8, 8, 4), np.uint8)
    labels[0, 2:6, 2:6, 1:3] = 1
    label_map = Image(labels, kind="label", metadata={"path": "seg.nii.gz"})
    image = Image(
        np.full((1, 4, 4, 2), 7.0, np.float32), np.diag([2.0, 2.0, 2.0, 1.0]), metadata={"path": "ct.nii.gz"}
    )
    with pytest.raises(GeometryError) as info:
        measure_labels(label_map, image=image)
    assert (
        "seg.nii.gz" in str(info.value) and "ct.nii.gz" in str(info.value) and "resample" in str(info.value)
    )
    (row,) = measure_labels(label_map, image=image, resample_image=True)
    assert row["mean"] == pytest.approx(7.0) and row["sd"] == pytest.approx(0.0)


@pytest.fixture
def nifti_pair(tmp_path):
    labels = np.zeros((1, 10, 9, 5), np.uint8)
    labels[0, 2:5, 2:6, 1:4] = 1
    labels[0, 6:9, 5:8, 2] = 2
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    write(Image(labels, affine, kind="label"), tmp_path / "labels.nii.gz")
    write(Image(np.full(labels.shape, 40, np.int16), affine), tmp_path / "ct.nii.gz")
    return tmp_path / "labels.nii.gz", tmp_path / "ct.nii.gz"


def _cli(args, capsys):
    import medsight.cli.measure  # noqa: F401  (registers the command)
    from medsight.cli import main

    try:
        main(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    return capsys.readouterr().out


def test_measure_file_and_cli_json(nifti_pair, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps narrow tables
    labels, ct = nifti_pair
    result = measure_file(labels, image=ct)
    assert result["spacing"] == pytest.approx([0.8, 0.8, 2.5])
    assert [r["voxels"] for r in result["labels"]] == [36, 9]
    printed = json.loads(_cli(["measure", str(labels), "--image", str(ct), "--json"], capsys))
    assert set(printed) == {"labels", "path", "spacing"} and printed["path"] == str(labels)
    assert printed["labels"][0]["volume_ml"] == pytest.approx(36 * 0.8 * 0.8 * 2.5 / 1000)
    assert printed["labels"][1]["mean"] == 40.0
    table = _cli(["measure", str(labels), "--image", str(ct)], capsys)
    assert "volume mL" in table and "0.0576" in table  # label 1: 36 voxels x 1.6 mm^3


def test_cli_bad_input_is_one_line_naming_the_file(nifti_pair, tmp_path, capsys):
    import medsight.cli.measure  # noqa: F401
    from medsight.cli import main

    labels, _ = nifti_pair
    probabilities = tmp_path / "prob.nii.gz"
    write(Image(np.full((1, 4, 4, 4), 0.3, np.float32)), probabilities)
    other_grid = tmp_path / "other.nii.gz"
    write(Image(np.zeros((1, 5, 5, 5), np.int16)), other_grid)
    for args, words in [
        (["measure", str(probabilities)], ["prob.nii.gz", "whole numbers"]),
        (["measure", str(tmp_path / "missing.nii.gz")], ["missing.nii.gz", "no such file"]),
        (["measure", str(labels), "--image", str(other_grid)], ["other.nii.gz", "different grids"]),
    ]:
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and all(w in err for w in words), err
    with pytest.raises(NotFoundError):
        measure_file(tmp_path / "missing.nii.gz")


def test_cli_measures_a_dicom_seg_on_its_source_grid(tmp_path, capsys):
    from medsight.io import read, write_dicom_series
    from medsight.io.dicom._seg import write_seg

    write_dicom_series(
        Image(np.zeros((1, 12, 10, 4), np.int16), np.diag([-0.5, -0.5, 2.0, 1.0])), tmp_path / "ct"
    )
    ct = read(tmp_path / "ct")
    labels = np.zeros(ct.spatial_shape, np.uint8)
    labels[2:6, 3:5, 1:3] = 1  # 16 voxels of 0.5 mm^3, none on the last slice
    seg = write_seg(
        ct.with_array(labels[None], kind="label"),
        ct.metadata["files"],
        tmp_path / "seg.dcm",
        names={1: "lesion"},
    )
    for extra in (["--source", str(tmp_path / "ct")], []):  # the series' grid, or the SEG's own
        printed = json.loads(_cli(["measure", str(seg), "--json", *extra], capsys))
        (row,) = printed["labels"]
        assert (row["name"], row["voxels"]) == ("lesion", 16)
        assert row["volume_ml"] == pytest.approx(0.008) and printed["spacing"] == pytest.approx(
            [0.5, 0.5, 2.0]
        )
        assert row["centroid_ras_mm"] == pytest.approx([-1.75, -1.75, 3.0])


@pytest.mark.realdata
def test_spleen_mask_volume_is_voxel_count_times_voxel_volume(shared_data):
    import nibabel as nib

    folder = shared_data / "volumes" / "ivadomed" / "ct_scan"
    mask_path = folder / "derivatives/labels/sub-spleen2/ct/sub-spleen2_ct_seg-manual.nii.gz"
    result = measure_file(mask_path, image=folder / "sub-spleen2/ct/sub-spleen2_ct.nii.gz")
    nifti = nib.load(mask_path)
    count = int(np.count_nonzero(np.asanyarray(nifti.dataobj)))
    voxel_mm3 = float(np.prod(nifti.header.get_zooms()[:3]))
    (row,) = result["labels"]
    assert row["voxels"] == count > 0
    assert row["volume_ml"] == pytest.approx(count * voxel_mm3 / 1000, rel=1e-6)
    assert 100 < row["volume_ml"] < 1000 and 0 < row["mean"] < 200  # a spleen, in HU


@pytest.mark.realdata
@pytest.mark.parametrize("case", ["brain1", "brain2", "breast1"])
def test_agrees_with_pyradiomics_reference_values(shared_data, case):
    folder = shared_data / "volumes" / "pyradiomics"
    with open(folder / "baseline" / "baseline_shape.csv") as f:
        shape = {r["featureName"]: r[case] for r in csv.DictReader(f)}
    with open(folder / "baseline" / "baseline_firstorder.csv") as f:
        rows = list(csv.DictReader(f))
    first = {r["featureName"]: r[case] for r in rows}
    # The original mask's centre of mass is only filled in the other configurations' columns.
    centre = {r["featureName"]: r[f"{case}_normalization"] for r in rows}[
        "diagnostics_Mask-original_CenterOfMass"
    ]
    (row,) = measure_file(folder / f"{case}_label.nrrd", image=folder / f"{case}_image.nrrd")["labels"]
    assert row["voxels"] == int(shape["diagnostics_Mask-original_VoxelNum"])
    assert row["volume_ml"] * 1000 == pytest.approx(float(shape["original_shape_VoxelVolume"]), rel=1e-9)
    assert row["surface_mm2"] == pytest.approx(float(shape["original_shape_SurfaceArea"]), rel=0.01)
    assert row["mean"] == pytest.approx(float(first["original_firstorder_Mean"]), rel=1e-9)
    assert row["sd"] ** 2 == pytest.approx(float(first["original_firstorder_Variance"]), rel=1e-9)
    # pyradiomics gives the centre of mass in LPS (ITK); ours is RAS.
    lps = [float(v) for v in centre.strip("()").split(",")]
    assert row["centroid_ras_mm"] == pytest.approx([-lps[0], -lps[1], lps[2]], abs=1e-6)
