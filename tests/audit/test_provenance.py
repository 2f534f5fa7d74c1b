import hashlib
import json

import pytest

from medsight.audit import Provenance, sha256_file


def test_sidecar_records_inputs_outputs_and_times(tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(b"input bytes")
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(b"a")
    out = tmp_path / "out.nii.gz"
    with Provenance(inputs=[src, folder], parameters={"seed": 3}, command=["medsight", "x"]) as prov:
        out.write_bytes(b"result")
        prov.add_output(out)
    record = json.loads((tmp_path / "out.nii.gz.provenance.json").read_text())
    assert record["inputs"][0]["sha256"] == hashlib.sha256(b"input bytes").hexdigest()
    assert record["inputs"][1]["files"][0]["path"].endswith("a.dcm")
    assert record["outputs"][0]["sha256"] == sha256_file(out)
    assert record["parameters"] == {"seed": 3} and record["command"] == ["medsight", "x"]
    assert record["started"] <= record["finished"] and record["duration_s"] >= 0
    assert record["medsight_version"]


def test_failed_run_writes_no_sidecar_and_folder_outputs_get_one_inside(tmp_path):
    out = tmp_path / "out.nii"
    with pytest.raises(RuntimeError), Provenance() as prov:
        out.write_bytes(b"partial")
        prov.add_output(out)
        raise RuntimeError("crash")
    assert not (tmp_path / "out.nii.provenance.json").exists()
    folder = tmp_path / "dicom"
    folder.mkdir()
    (folder / "IM1.dcm").write_bytes(b"x")
    with Provenance() as prov:
        prov.add_output(folder)
    record = json.loads((folder / "provenance.json").read_text())
    assert [f["path"] for f in record["outputs"][0]["files"]] == [str(folder / "IM1.dcm")]
