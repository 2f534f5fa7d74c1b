"""`medsight qc` as a user meets it: a real subprocess, exit codes, JSON, the report file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from medsight.data import read_manifest, write_manifest
from tests.audit.test_qc import xray_dataset

FAILED = 4  # the exit status when findings reach --fail-on


def medsight(*args):
    env = {**os.environ, "COLUMNS": "200"}  # rich wraps at 80 columns when not on a terminal
    return subprocess.run(
        [sys.executable, "-m", "medsight", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    base = tmp_path_factory.mktemp("qc_cli")
    clean = xray_dataset(base / "clean", plant=False)
    # Warnings only: five samples lose their patient id.
    manifest = read_manifest(clean)
    for sample in manifest.samples[:5]:
        sample.patient_id = None
    warned = write_manifest(manifest, clean.with_name("warned.json"))
    return {"clean": clean, "warned": warned, "planted": xray_dataset(base / "planted", plant=True)}


def test_errors_fail_only_when_asked(manifests):
    proc = medsight("qc", manifests["planted"], "--json", "--fail-on", "error")
    assert proc.returncode == FAILED, proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["error"] == 5 and report["summary"]["warning"] == 2
    assert medsight("qc", manifests["planted"]).returncode == 0  # by default nothing fails
    clean = medsight("qc", manifests["clean"], "--fail-on", "error")
    assert clean.returncode == 0, clean.stderr
    assert "0 errors" in clean.stdout and "class counts" in clean.stdout


def test_warnings_fail_only_with_fail_on_warning_and_long_lists_are_cut(manifests):
    for fail_on, code in ((None, 0), ("error", 0), ("warning", FAILED)):
        options = ["--fail-on", fail_on] if fail_on else []
        proc = medsight("qc", manifests["warned"], *options)
        assert proc.returncode == code, (fail_on, proc.stderr)
    assert "patient_id missing on 5 of 24 samples" in proc.stdout
    assert "x00.png" in proc.stdout and "+2 more" in proc.stdout and "x04.png" not in proc.stdout


def test_out_writes_the_json_report_and_a_provenance_sidecar(manifests, tmp_path):
    out = tmp_path / "report.json"
    proc = medsight("qc", manifests["planted"], "--json", "--out", out)
    assert proc.returncode == 0, proc.stderr
    written = json.loads(out.read_text())
    printed = json.loads(proc.stdout)
    assert written["findings"] == printed["findings"] and written["format"] == "medsight-qc"
    sidecar = json.loads((tmp_path / "report.json.provenance.json").read_text())
    assert sidecar["inputs"][0]["path"] == str(manifests["planted"])
    assert sidecar["outputs"][0]["path"] == str(out) and sidecar["parameters"] == {"fail_on": "never"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_a_missing_dataset_is_one_clear_line(tmp_path):
    missing = tmp_path / "nowhere"
    proc = medsight("qc", missing)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "no such dataset" in lines[0]
    proc = medsight("qc", tmp_path, "--out", tmp_path / "absent" / "r.json")
    assert proc.returncode == 1 and "output folder does not exist" in proc.stderr


def test_the_qc_command_does_not_import_torch(manifests):
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['medsight', 'qc', {str(manifests['clean'])!r}, '--json']\n"
        "try:\n    runpy.run_module('medsight', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'monai' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout)["summary"]["error"] == 0
    assert proc.stderr.split() == ["False", "False"]


def test_text_output_lists_at_most_twenty_findings_per_check(capsys, monkeypatch):
    from medsight.audit import Finding, Report
    from medsight.cli.qc import _print

    monkeypatch.setenv("COLUMNS", "200")
    findings = [Finding("unreadable", "error", f"bad file {n}", files=(f"f{n:02d}.png",)) for n in range(25)]
    report = Report("data", "/data", 25, 0, findings, checks=["unreadable"], thresholds={})
    _print(report)
    out = capsys.readouterr().out
    assert "f19.png" in out and "f20.png" not in out and "... and 5 more (see --json)" in out
    assert "25 errors" in out
