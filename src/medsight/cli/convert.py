"""`medsight convert IN OUT`: between formats, geometry kept, with a provenance sidecar."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.cli import IRREGULAR_HELP, Irregular, app


@app.command()
def convert(
    source: Path = typer.Argument(..., help="Image file or DICOM folder."),
    target: Path = typer.Argument(
        ..., help=".nii(.gz), .nrrd, .mha or .png; a folder (no suffix) for a DICOM series."
    ),
    series: str = typer.Option(None, "--series", help="DICOM: SeriesInstanceUID or series number."),
    irregular: Irregular = typer.Option(Irregular.error, "--irregular", help=IRREGULAR_HELP),
    label: bool = typer.Option(False, "--label", help="The image is a label map."),
    window: tuple[float, float] = typer.Option(None, "--window", help="PNG: display window CENTRE WIDTH."),
    slice_index: int = typer.Option(None, "--slice", help="PNG: which k slice of a 3D image."),
) -> None:
    """Convert an image; the output is written atomically beside a .provenance.json record."""
    from medsight.audit import Provenance
    from medsight.errors import UnsupportedError
    from medsight.io import read, write, write_dicom_series
    from medsight.io._medmnist import MedMNISTDataset

    params = {
        "series": series,
        "irregular": irregular.value,
        "label": label,
        "window": window,
        "slice": slice_index,
    }
    with Provenance(inputs=[source], parameters=params) as prov:
        image = read(source, series=series, irregular=irregular.value, kind="label" if label else "intensity")
        if isinstance(image, MedMNISTDataset):
            raise UnsupportedError(
                "a MedMNIST file is a dataset, not one image",
                path=source,
                hint="Use it as training data (medsight train) instead",
            )
        if target.is_dir() or not target.suffix:  # a folder: write a DICOM series into it
            target.mkdir(parents=True, exist_ok=True)
            write_dicom_series(image, target)
        else:
            write(image, target, window=window, slice_index=slice_index)
        prov.add_output(target)
    typer.echo(f"wrote {target}")
