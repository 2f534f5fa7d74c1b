"""`medsight info PATH [--json]`: what an image file or DICOM folder holds."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medsight.cli import IRREGULAR_HELP, Irregular, app


@app.command()
def info(
    path: Path = typer.Argument(..., help="Image file or DICOM folder."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: one object, or a list for several series."
    ),
    series: str = typer.Option(None, "--series", help="DICOM: SeriesInstanceUID or series number."),
    irregular: Irregular = typer.Option(Irregular.error, "--irregular", help=IRREGULAR_HELP),
) -> None:
    """Show geometry (RAS+ mm), value range and metadata of each image or series."""
    from medsight.io._summary import summarize

    summaries = summarize(path, series=series, irregular=irregular.value)
    if as_json:
        typer.echo(json.dumps(summaries[0] if len(summaries) == 1 else summaries, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for summary in summaries:
        table = Table(title=str(summary.get("path")), show_header=False, title_justify="left")
        for key, value in summary.items():
            if key != "path" and value is not None:
                table.add_row(key, _text(value))
        console.print(table)


def _text(value) -> str:
    if isinstance(value, list) and value and isinstance(value[0], list):
        return "\n".join("  ".join(f"{v:+.4f}" for v in row) for row in value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
