"""`medsight dataset ...`: build manifests from dataset layouts, describe and split them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medsight.cli import app

dataset_app = typer.Typer(help="Dataset manifests: import a layout, describe, split.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")

LAYOUT_HELP = (
    "auto, manifest, class-folders, images-masks, medmnist, coco, kvasir, busi, drive or dicom "
    "(auto: recognised from the files)"
)


@dataset_app.command("describe")
def describe_command(
    data: Path = typer.Argument(
        ..., help="Manifest (.json/.csv), MedMNIST .npz, COCO .json or dataset folder."
    ),
    layout: str = typer.Option("auto", "--layout", help=LAYOUT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    max_images: int = typer.Option(500, "--max-images", help="Read at most this many images for sizes."),
) -> None:
    """Counts per split and class, image sizes, spacings, modalities and attributes."""
    from medsight.data import load_dataset
    from medsight.data.describe import describe

    summary = describe(load_dataset(data, layout=layout), max_images=max_images)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['name']} ({summary['source']})", show_header=False, title_justify="left")
    for key, value in summary.items():
        if key not in ("name", "source"):
            table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    Console().print(table)


@dataset_app.command("import")
def import_command(
    data: Path = typer.Argument(..., help="Dataset folder or file in a known layout."),
    out: Path = typer.Option(..., "--out", help="Manifest to write (.json or .csv)."),
    layout: str = typer.Option("auto", "--layout", help=LAYOUT_HELP),
) -> None:
    """Write a manifest for a dataset layout (paths relative to the manifest)."""
    from medsight.audit import Provenance
    from medsight.data import load_dataset, write_manifest

    with Provenance(inputs=[], parameters={"data": str(data), "layout": layout}) as prov:
        manifest = load_dataset(data, layout=layout)
        write_manifest(manifest, out)
        prov.add_output(out)
    typer.echo(f"wrote {out}: {len(manifest)} samples ({manifest.source})")


@dataset_app.command("split")
def split_command(
    data: Path = typer.Argument(..., help="Manifest or dataset layout."),
    out: Path = typer.Option(..., "--out", help="Manifest to write with splits (.json or .csv)."),
    fractions: tuple[float, float, float] = typer.Option(
        (0.7, 0.15, 0.15), "--fractions", help="train val test fractions."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    stratify: bool = typer.Option(True, "--stratify/--no-stratify", help="Keep class balance per split."),
    layout: str = typer.Option("auto", "--layout", help=LAYOUT_HELP),
) -> None:
    """Patient-level, stratified, seeded train/val/test split; existing splits are kept."""
    from medsight.audit import Provenance
    from medsight.data import load_dataset, write_manifest
    from medsight.data.splits import split_dataset

    params = {"fractions": list(fractions), "seed": seed, "stratify": stratify}
    with Provenance(inputs=[data] if data.is_file() else [], parameters=params) as prov:
        manifest, notes = split_dataset(
            load_dataset(data, layout=layout), fractions=fractions, seed=seed, stratify=stratify
        )
        write_manifest(manifest, out)
        prov.add_output(out)
    for note in notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {out}")
