"""`medsight deid` as a user meets it: key handling, one-line errors, a run, no torch import."""

import json
import subprocess
import sys

import pytest

from tests.deid import write_cohort

# `python -m medsight`, with the command module imported first (it registers itself on the app)
MEDSIGHT = [
    sys.executable,
    "-c",
    "import sys, medsight.cli.deid; from medsight.cli import main; main(sys.argv[1:])",
]


def run(*args, cwd=None):
    return subprocess.run([*MEDSIGHT, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_new_key_then_a_run(tmp_path):
    write_cohort(tmp_path / "in", n=1, timepoints=1)
    key = tmp_path / "deid.key"
    made = run("deid", "--new-key", key)
    assert made.returncode == 0 and key.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    again = run("deid", "--new-key", key)
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr
    done = run(
        "deid", tmp_path / "in", tmp_path / "out", "--key", key, "--option", "clean-descriptors", "--json"
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["files"] == 4 and summary["written"] + summary["quarantined"] == 4
    assert (tmp_path / "out.deid_audit.jsonl").is_file()
    assert (tmp_path / "out.deid_audit.jsonl.provenance.json").is_file()  # beside the log, not in OUT


@pytest.mark.parametrize(
    "args, message",
    [
        (("IN", "OUT", "--key", "missing.key"), "missing.key: key file not found. Create one with"),
        (("IN", "OUT"), "--key KEYFILE is needed"),
        (("IN", "OUT", "--key", "k", "--option", "retain-uid"), "Did you mean 'retain-uids'?"),
    ],
)
def test_bad_input_gives_one_line_and_exit_1(tmp_path, args, message):
    (tmp_path / "IN").mkdir()
    (tmp_path / "k").write_text("00" * 32)
    proc = run("deid", *args, cwd=tmp_path)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_does_not_import_torch():
    code = (
        "import sys, medsight.cli.deid; from medsight.cli import main\n"
        "try:\n    main(['deid', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'monai' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "--new-key" in proc.stdout and proc.stdout.strip().splitlines()[-1] == "False False"
