"""`medsight synth KIND --n N --out DIR`: a synthetic cohort with exact ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.cli import app

_KINDS_HELP = "chest-xray, brain-mri, body-ct or ultrasound."


@app.command()
def synth(
    kind: str = typer.Argument(..., help=f"Phantom kind: {_KINDS_HELP}"),
    out: Path = typer.Option(..., "--out", help="New or empty folder for the cohort."),
    n: int = typer.Option(20, "--n", help="Number of patients."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same cohort."),
    file_format: str = typer.Option(
        None, "--format", help="nifti, png (2D kinds) or dicom. Default: png for 2D kinds, nifti for 3D."
    ),
    site_effect: float = typer.Option(
        1.0,
        "--site-effect",
        help="How strongly sites differ in gain, contrast, noise and blur (0: not at all).",
    ),
    timepoints: int = typer.Option(
        None, "--timepoints", help="Visits per patient. Default: 3 for brain-mri, 2 for body-ct, else 1."
    ),
    classes: str = typer.Option(
        None, "--classes", help="Comma-separated classes to include (chest-xray, ultrasound). Default: all."
    ),
    transfer_syntax: str = typer.Option(
        "explicit", "--transfer-syntax", help="DICOM: explicit, implicit, rle, jpegls or jpeg2000."
    ),
) -> None:
    """Write a synthetic cohort: images, label maps, manifest.json, truth.json (and phi.json for DICOM)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medsight.audit import Provenance
    from medsight.data.synthetic import export_cohort

    params = {
        "kind": kind,
        "n": n,
        "seed": seed,
        "format": file_format,
        "site_effect": site_effect,
        "timepoints": timepoints,
        "classes": classes,
        "transfer_syntax": transfer_syntax,
    }
    console = Console(stderr=True)
    columns = (TextColumn(f"synth {kind}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # Progress only where someone watches, and only when it takes a while.
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("synth", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, visible=total >= 10)

        try:
            with Provenance(inputs=[], parameters=params) as prov:
                manifest = export_cohort(
                    kind,
                    out,
                    n=n,
                    seed=seed,
                    format=file_format,
                    timepoints=timepoints,
                    classes=classes,
                    site_effect=site_effect,
                    transfer_syntax=transfer_syntax,
                    progress=advance,
                )
                prov.add_output(out)
        except ValueError as exc:  # a bad option value: one line, like every MedsightError
            typer.echo(f"medsight: error: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"wrote {manifest}")
