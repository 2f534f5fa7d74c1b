"""The command line as a user meets it: a real subprocess, exit codes, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medsight.image import Image
from medsight.io import write, write_dicom_series


def run(*args, check_rc=None):
    proc = subprocess.run(
        [sys.executable, "-m", "medsight", *map(str, args)], capture_output=True, text=True, timeout=120
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "ct"
    folder.mkdir()
    arr = np.random.default_rng(0).integers(-1000, 1000, (1, 12, 10, 5)).astype(np.int16)
    write_dicom_series(Image(arr, np.diag([-0.5, -0.5, 2.0, 1.0])), folder, rescale=(1.0, -1024.0))
    return folder, arr


def test_version_and_help():
    from medsight import __version__

    assert run("--version", check_rc=0).stdout.strip() == f"medsight {__version__}"
    out = run("--help", check_rc=0).stdout
    assert "info" in out and "convert" in out


def test_info_json_on_a_series(series):
    folder, arr = series
    data = json.loads(run("info", folder, "--json", check_rc=0).stdout)
    assert data["shape"] == [12, 10, 5] and data["spacing"] == [0.5, 0.5, 2.0]
    assert data["orientation"] == "LPS" and data["modality"] == "CT" and data["n_files"] == 5
    assert data["min"] == int(arr.min()) and data["max"] == int(arr.max())
    assert data["direction"] == [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    for key in ("path", "origin", "dtype", "series_uid"):
        assert key in data
    assert "CT" in run("info", folder, check_rc=0).stdout  # the table view


def test_info_and_convert_do_not_import_torch(series):
    folder, _ = series
    code = (
        f"import sys, runpy; sys.argv = ['medsight', 'info', {str(folder)!r}];\n"
        "try:\n    runpy.run_module('medsight', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'monai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_convert_writes_output_and_provenance(series, tmp_path):
    import hashlib

    folder, arr = series
    out = tmp_path / "ct.nii.gz"
    run("convert", folder, out, check_rc=0)
    from medsight.io import read

    back = read(out)
    np.testing.assert_array_equal(back.array, arr)
    record = json.loads((tmp_path / "ct.nii.gz.provenance.json").read_text())
    first = record["inputs"][0]["files"][0]
    assert first["sha256"] == hashlib.sha256(Path(first["path"]).read_bytes()).hexdigest()
    assert record["outputs"][0]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert record["command"][1:3] == ["convert", str(folder)]
    assert record["started"] <= record["finished"]
    png = tmp_path / "slice.png"
    run("convert", folder, png, "--slice", 2, "--window", 0, 400, check_rc=0)
    assert read(png).spatial_shape == (12, 10)
    dicom_out = tmp_path / "again"
    run("convert", out, dicom_out, check_rc=0)
    np.testing.assert_array_equal(read(dicom_out).array, arr)


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, os.urandom(4000), b"NRRD0004\ntype: short\n"])
def test_bad_files_give_one_line_and_no_traceback(tmp_path, content):
    bad = tmp_path / "bad.nrrd"
    bad.write_bytes(content)
    proc = run("info", bad)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.nrrd" in lines[0] and lines[0].startswith("medsight: error:")


def test_errors_for_missing_path_empty_folder_and_truncated_dicom(tmp_path, series):
    assert "no such file" in run("info", tmp_path / "missing.nii").stderr
    (tmp_path / "empty").mkdir()
    assert "no DICOM files" in run("info", tmp_path / "empty").stderr
    folder, _ = series
    f = sorted(folder.glob("*.dcm"))[0]
    cut = tmp_path / "cut.dcm"
    data = f.read_bytes()
    cut.write_bytes(data[: len(data) - 100])  # pixel data cut short
    proc = run("info", cut)
    assert proc.returncode == 1 and "cut.dcm" in proc.stderr and "Traceback" not in proc.stderr
    debug = run("--debug", "info", cut)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_convert_error_leaves_no_output(tmp_path, series):
    folder, _ = series
    proc = run("convert", folder, tmp_path / "out.xyz")
    assert proc.returncode == 1 and "cannot write .xyz" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_medmnist_info(tmp_path):
    np.savez(tmp_path / "m.npz", train_images=np.zeros((3, 28, 28), np.uint8), train_labels=np.zeros((3, 1)))
    data = json.loads(run("info", tmp_path / "m.npz", "--json", check_rc=0).stdout)
    assert data["format"] == "medmnist" and data["splits"]["train"]["n"] == 3


def test_write_helper_for_png_is_reachable(tmp_path):
    img = Image(np.zeros((1, 4, 4), np.uint8))
    assert write(img, tmp_path / "x.png").exists()
