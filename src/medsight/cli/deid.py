"""`medsight deid IN OUT --key KEYFILE [--option NAME ...] [--jobs N]`: DICOM de-identification.

`medsight deid --new-key KEYFILE` makes a key first. Exit status 0 when the run completed,
even if some files were left out (quarantined or rejected: the summary and the audit log say
which and why); 1 on bad input, as for every command.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from medsight.cli import app

_OPTION_HELP = (
    "Profile option, repeatable: retain-longitudinal-full, retain-longitudinal-modified, "
    "retain-patient-characteristics, retain-device-identity, retain-institution-identity, "
    "retain-uids, retain-safe-private, clean-descriptors, clean-structured-content, "
    "clean-graphics, clean-pixel-data."
)


class ConfidentialityProfile(str, Enum):
    """PS3.15 Annex E profiles MedSight implements."""

    basic = "basic"


@app.command()
def deid(
    data: Path = typer.Argument(None, help="Input folder (DICOM, NIfTI, NRRD); never modified."),
    out: Path = typer.Argument(None, help="Output folder: <study>/<series>/<instance>.dcm (new UIDs)."),
    key: Path = typer.Option(
        None, "--key", help="Key file: the secret that makes UIDs, pseudonyms and date shifts repeatable."
    ),
    new_key: Path = typer.Option(None, "--new-key", help="Create a new key file here, and exit."),
    profile: ConfidentialityProfile = typer.Option(
        ConfidentialityProfile.basic, "--profile", help="Basic Application Level Confidentiality Profile."
    ),
    options: list[str] = typer.Option([], "--option", help=_OPTION_HELP),
    jobs: int = typer.Option(1, "--jobs", help="Worker processes."),
    reid_table: Path = typer.Option(
        None, "--reid-table", help="Also write the re-identification table (CSV) here, outside OUT."
    ),
    audit: Path = typer.Option(None, "--audit", help="Audit log (JSONL). Default: OUT.deid_audit.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """De-identify DICOM files (PS3.15 Annex E), with keyed UIDs, pseudonyms and date shifts."""
    from medsight.errors import MedsightError

    if new_key is not None:
        from medsight.deid.keys import new_key as make_key

        typer.echo(f"new key written to {make_key(new_key)}: keep it secret, and apart from the output")
        return
    if data is None or out is None:
        raise MedsightError("IN and OUT folders are needed", hint="medsight deid IN OUT --key KEYFILE")
    if key is None:
        raise MedsightError(
            "--key KEYFILE is needed",
            hint="Create one with `medsight deid --new-key KEYFILE` and keep it safe",
        )
    summary = _run(data, out, key, options, jobs, reid_table, audit)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    left_out = summary["quarantined"] + summary["rejected"]
    typer.echo(
        f"medsight deid: {summary['files']} files: {summary['written']} written, "
        f"{summary['quarantined']} quarantined, {summary['rejected']} rejected -> {summary['output']}"
    )
    why = f" (why {left_out} were left out)" if left_out else ""
    typer.echo(f"audit log: {summary['audit_log']}{why}")


def _run(data, out, key, options, jobs, reid_table, audit) -> dict:
    """Run with a progress bar on stderr (shown on a terminal only) and a provenance sidecar."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medsight.audit import Provenance
    from medsight.deid.keys import read_key
    from medsight.deid.tree import deidentify_tree

    secret = read_key(key)  # before any work: a missing key is the likeliest mistake
    console = Console(stderr=True)
    columns = (TextColumn("de-identifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # The sidecar goes beside the audit log, outside OUT: it names the input files.
    with Provenance(inputs=[data], parameters={"options": sorted(options), "jobs": jobs}) as prov:
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("deid", total=None)
            summary = deidentify_tree(
                data,
                out,
                key=secret,
                options=options,
                jobs=jobs,
                reid_table=reid_table,
                audit_log=audit,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        prov.add_output(Path(summary["audit_log"]))
    return summary
