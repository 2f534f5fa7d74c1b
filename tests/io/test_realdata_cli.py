"""The `medsight` command on real DICOM data, run as a user would: in a subprocess.

`info --json` is checked against SimpleITK (converted LPS -> RAS here), `convert`
against SimpleITK reading the output back, and the provenance sidecar against hashlib.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")
pydicom = pytest.importorskip("pydicom")

from medsight.image import Image
from medsight.io import read

pytestmark = pytest.mark.realdata

FLIP_XY = np.diag([-1.0, -1.0, 1.0])


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def series(shared_data) -> Path:
    return shared_data / "dicom" / "torchio_series"


@pytest.fixture(scope="module")
def sitk_series(series):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
    return reader.Execute()


# -- info ------------------------------------------------------------------------


def test_info_json_matches_sitk(series, sitk_series):
    proc = run_cli("info", "--json", series)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # exactly one JSON object, nothing else on stdout
    assert isinstance(summary, dict)
    keys = {
        "path",
        "modality",
        "shape",
        "spacing",
        "origin",
        "direction",
        "orientation",
        "dtype",
        "min",
        "max",
        "series_uid",
        "n_files",
    }
    assert keys <= summary.keys()

    itk = sitk_series
    voxels = sitk.GetArrayFromImage(itk)
    first = pydicom.dcmread(series / "IMG0001.dcm", stop_before_pixels=True)
    assert summary["path"] == str(series)
    assert summary["modality"] == "CT" == first.Modality
    assert summary["shape"] == list(itk.GetSize()) == [88, 128, 17]  # i, j, k
    np.testing.assert_allclose(summary["spacing"], itk.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(summary["origin"], np.multiply(itk.GetOrigin(), [-1, -1, 1]), atol=1e-3)
    direction = FLIP_XY @ np.array(itk.GetDirection()).reshape(3, 3)
    assert np.array(summary["direction"]).shape == (3, 3)
    np.testing.assert_allclose(summary["direction"], direction, atol=1e-6)
    assert summary["orientation"] == "RAS"
    assert summary["dtype"] == "int16"
    assert (summary["min"], summary["max"]) == (int(voxels.min()), int(voxels.max()))
    assert summary["series_uid"] == first.SeriesInstanceUID
    assert summary["n_files"] == 17


def test_info_does_not_import_torch_or_monai(series):
    code = (
        "import json, runpy, sys\n"
        f"sys.argv = ['medsight', 'info', {str(series)!r}]\n"
        "try:\n"
        "    runpy.run_module('medsight', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'monai'))\n"
        "print('HEAVY=' + json.dumps(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "torchio_series" in proc.stdout  # the table was printed: the command did run
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY=")][-1]
    assert json.loads(line.removeprefix("HEAVY=")) == []


def test_info_on_a_seg_file_is_one_clear_error(shared_data):
    """A SEG is not an image: one line naming the file and the object, exit status 1."""
    seg = shared_data / "dicom" / "dcmqi_ct3slice" / "liver.dcm"
    for args in (("info", seg), ("info", "--json", seg)):
        proc = run_cli(*args)
        assert proc.returncode == 1
        assert proc.stdout == ""  # no half-written JSON or table
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr
        assert lines[0].startswith("medsight: error: ")
        assert "liver.dcm" in lines[0] and "Segmentation Storage" in lines[0]
        assert "not an image" in lines[0]


def test_info_on_a_folder_of_non_images_describes_them(shared_data, tmp_path):
    """A folder holding only a SEG and an SR is described (not an error), marked not-an-image."""
    src = shared_data / "dicom" / "dcmqi_ct3slice"
    for name in ("liver.dcm", "sr.dcm"):
        os.symlink(src / name, tmp_path / name)
    proc = run_cli("info", "--json", tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert isinstance(listed, list) and len(listed) == 2
    assert {(d["is_image"], d["modality"], d["sop_class"]) for d in listed} == {
        (False, "SEG", "Segmentation Storage"),
        (False, "SR", "Comprehensive SR Storage"),
    }


# -- convert ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_convert_keeps_voxels_and_geometry(series, sitk_series, tmp_path, suffix):
    out = tmp_path / f"ct{suffix}"
    proc = run_cli("convert", series, out)
    assert proc.returncode == 0, proc.stderr
    sidecar = out.with_name(out.name + ".provenance.json")
    # Written atomically: the output and its sidecar, no temporary files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, sidecar.name])

    source = Image.from_sitk(sitk_series)
    for back in (read(out), Image.from_sitk(sitk.ReadImage(str(out)))):
        assert back.array.dtype == np.int16
        assert np.array_equal(back.array, source.array)
        np.testing.assert_allclose(back.affine, source.affine, atol=1e-4)

    record = json.loads(sidecar.read_text())
    inputs = record["inputs"]
    assert len(inputs) == 1 and inputs[0]["path"] == str(series)
    files = {Path(f["path"]).name: f for f in inputs[0]["files"]}
    assert len(files) == 17
    first = series / "IMG0001.dcm"
    assert files["IMG0001.dcm"]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert files["IMG0001.dcm"]["bytes"] == first.stat().st_size
    (output,) = record["outputs"]
    assert output["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert record["command"][1:] == ["convert", str(series), str(out)]
