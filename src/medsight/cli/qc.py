"""`medsight qc DATA [--json] [--fail-on error|warning|never] [--out report.json]`: data quality.

Exit status: 0, or 4 when a finding reaches ``--fail-on`` (by default nothing fails the
run); 1 when the dataset cannot be read at all, as for every command.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from medsight.cli import app

FAILED_EXIT = 4  # distinct from 1 (bad input) and 3 (internal error)
_ROWS_PER_CHECK = 20  # text output: more findings of one check are counted, not listed
_FILES_PER_ROW = 3
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_TITLE = {"error": "errors", "warning": "warnings", "info": "info"}


class FailOn(str, Enum):
    """Which findings make the command exit non-zero."""

    error = "error"
    warning = "warning"
    never = "never"


@app.command()
def qc(
    data: Path = typer.Argument(..., help="Manifest (.json/.csv) or dataset folder/file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    fail_on: FailOn = typer.Option(
        FailOn.never,
        "--fail-on",
        help=f"Exit {FAILED_EXIT} on errors ('error'), on errors or warnings ('warning'), or never.",
    ),
    out: Path = typer.Option(
        None, "--out", help="Also write the JSON report here (atomically, with a provenance sidecar)."
    ),
) -> None:
    """Check a dataset: unreadable files, duplicates and leakage, masks, labels, outliers, balance."""
    from medsight.audit import Provenance
    from medsight.errors import NotFoundError

    params = {"fail_on": fail_on.value}
    if out is not None and not out.parent.is_dir():  # say so now, not after reading every image
        raise NotFoundError("output folder does not exist", path=out.parent, hint="Create it first")
    if out is not None:
        with Provenance(inputs=[data], parameters=params) as prov:
            report = _run(data)
            report.write_json(out)
            prov.add_output(out)
    else:
        report = _run(data)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        _print(report)
    if report.fails(fail_on.value):
        raise typer.Exit(FAILED_EXIT)


def _run(data: Path):
    """Run the checks with a progress bar on stderr (shown on a terminal only)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medsight.audit.qc import check_quality

    console = Console(stderr=True)
    columns = (TextColumn("reading samples"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("qc", total=None)
        return check_quality(data, progress=lambda done, total: bar.update(task, completed=done, total=total))


def _print(report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = report.summary
    console.print(
        f"[bold]medsight qc[/bold] {report.data}: {summary['samples']} samples "
        f"({summary['readable']} readable): [red]{summary['error']} errors[/red], "
        f"[yellow]{summary['warning']} warnings[/yellow], {summary['info']} info"
    )
    for severity in ("error", "warning", "info"):
        findings = [f for f in report.findings if f.severity == severity]
        if not findings:
            continue
        table = Table(
            title=f"{_TITLE[severity]} ({len(findings)})",
            title_style=_STYLE[severity],
            title_justify="left",
            show_lines=True,
        )
        table.add_column("check", style=_STYLE[severity], no_wrap=True)
        table.add_column("message")
        table.add_column("files", overflow="fold")
        table.add_column("patients", overflow="fold")
        shown: dict[str, int] = {}
        for finding in findings:
            shown[finding.check] = shown.get(finding.check, 0) + 1
            if shown[finding.check] <= _ROWS_PER_CHECK:
                table.add_row(finding.check, finding.message, _names(finding.files), _names(finding.patients))
        for check, count in shown.items():
            if count > _ROWS_PER_CHECK:
                table.add_row(check, f"... and {count - _ROWS_PER_CHECK} more (see --json)", "", "")
        console.print(table)
    if not report.findings:
        console.print("no findings")


def _names(names: tuple[str, ...]) -> str:
    shown = "\n".join(names[:_FILES_PER_ROW])
    if len(names) > _FILES_PER_ROW:
        shown += f"\n... +{len(names) - _FILES_PER_ROW} more"
    return shown
