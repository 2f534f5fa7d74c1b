"""`medsight measure LABELMAP [--image IMG] [--source DICOM_DIR] [--json]`: volumes and more per label."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medsight.cli import app


@app.command()
def measure(
    labelmap: Path = typer.Argument(..., help="Label map: NIfTI, NRRD, MHA, or a DICOM SEG file."),
    image: Path = typer.Option(
        None, "--image", help="Image for the mean and SD inside each label (and the grid of a SEG)."
    ),
    source: Path = typer.Option(None, "--source", help="DICOM SEG: the series (folder) it was drawn on."),
    resample_image: bool = typer.Option(
        False, "--resample-image", help="Resample --image onto the label map's grid when they differ."
    ),
    as_json: bool = typer.Option(
        False, "--json", help='Print one JSON object {"labels", "path", "spacing"}.'
    ),
) -> None:
    """Per label: voxels, volume (mL) or area, surface, extent, centroid (RAS+ mm), mean and SD."""
    from medsight.tasks.segment.measure import measure_file

    result = measure_file(labelmap, image=image, source=source, resample_image=resample_image)
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    rows = result["labels"]
    spacing = " x ".join(f"{s:.3g}" for s in result["spacing"])
    table = Table(title=f"{result['path']} ({spacing} mm voxels)", title_justify="left")
    three_d = len(result["spacing"]) == 3
    columns = ["label"] + (["name"] if any(r["name"] for r in rows) else []) + ["voxels"]
    columns += ["volume_ml", "surface_mm2"] if three_d else ["area_mm2", "perimeter_mm"]
    columns += ["extent_mm", "centroid_ras_mm"] + (["mean", "sd"] if image is not None else [])
    for column in columns:
        table.add_column(_HEADERS.get(column, column), justify="left" if column == "name" else "right")
    for row in rows:
        table.add_row(*(_text(row[column]) for column in columns))
    console = Console()
    console.print(table if rows else f"{result['path']}: no label > 0")


_HEADERS = {
    "volume_ml": "volume mL",
    "surface_mm2": "surface mm²",
    "area_mm2": "area mm²",
    "perimeter_mm": "perimeter mm",
    "extent_mm": "extent mm",
    "centroid_ras_mm": "centroid RAS mm",
    "sd": "SD",
}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(f"{v:.1f}" for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
