"""`medsight train classify|segment DATA --out MODEL_DIR`: self-configuring training into a model bundle."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medsight.cli import app

train_app = typer.Typer(
    help="Train a model from a dataset (planned from the data and the time budget).", no_args_is_help=True
)
app.add_typer(train_app, name="train")


def _train(trainer, data: Path, out: Path, time_budget, device, seed, overrides, resume) -> dict:
    """Run `trainer` with the shared options under a provenance record; returns the model card."""
    from medsight.audit import Provenance

    params = {
        "time_budget_min": time_budget,
        "device": device,
        "seed": seed,
        "set": overrides,
        "resume": resume,
    }
    with Provenance(inputs=[data] if data.is_file() else [], parameters=params) as prov:
        card = trainer(
            data, out, budget_min=time_budget, device=device, seed=seed, overrides=overrides, resume=resume
        )
        prov.add_output(out)
    return card


@train_app.command("classify")
def classify(
    data: Path = typer.Argument(..., help="Manifest, MedMNIST .npz, folder per class, ..."),
    out: Path = typer.Option(..., "--out", help="Model folder to create (the bundle)."),
    time_budget: float = typer.Option(10.0, "--time-budget", help="Minutes of training."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    seed: int = typer.Option(
        0, "--seed", help="Random seed (splits, initialisation, batches, augmentation)."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a plan field: --set network.width=0.5"),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a killed run from its last finished epoch."
    ),
) -> None:
    """Fingerprint the data, plan, train with checkpoints, calibrate, and write the bundle."""
    from medsight.train.classify import train_classifier

    card = _train(train_classifier, data, out, time_budget, device, seed, overrides, resume)
    val = card["validation"]["calibrated"]
    typer.echo(
        json.dumps(
            {
                "model": str(out),
                "best_epoch": card["training"]["best_epoch"],
                "val_auc": round(val["auc"], 4),
                "val_accuracy": round(val["accuracy"], 4),
                "val_ece": round(val["ece"], 4) if "ece" in val else None,
            }
        )
    )


@train_app.command("segment")
def segment(
    data: Path = typer.Argument(..., help="Manifest or dataset of images with label maps."),
    out: Path = typer.Option(..., "--out", help="Model folder to create (the bundle)."),
    time_budget: float = typer.Option(30.0, "--time-budget", help="Minutes of training."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Random seed (splits, initialisation, patches, augmenting)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a plan field: --set batch_size=4"),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last epoch."),
) -> None:
    """Fingerprint the data, plan (spacing, patch, DynUNet), train on patches, choose post-processing."""
    from medsight.train.segment import train_segmenter

    card = _train(train_segmenter, data, out, time_budget, device, seed, overrides, resume)
    typer.echo(
        json.dumps(
            {
                "model": str(out),
                "best_epoch": card["training"]["best_epoch"],
                "val_dice": card["validation"]["dice_per_class"],
                "postprocessing": card["validation"]["postprocessing"],
            }
        )
    )


@train_app.command("detect")
def detect(
    data: Path = typer.Argument(
        ..., help="Manifest or dataset of images with boxes (COCO, Kvasir-SEG, ...)."
    ),
    out: Path = typer.Option(..., "--out", help="Model folder to create (the bundle)."),
    time_budget: float = typer.Option(30.0, "--time-budget", help="Minutes of training."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    seed: int = typer.Option(
        0, "--seed", help="Random seed (splits, initialisation, batches, augmentation)."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a plan field: --set batch_size=8"),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last epoch."),
) -> None:
    """Fingerprint images and boxes, plan (input size, anchors, RetinaNet), train, write the bundle."""
    from medsight.train.detect import train_detector

    card = _train(train_detector, data, out, time_budget, device, seed, overrides, resume)
    val = card["validation"]
    typer.echo(
        json.dumps(
            {
                "model": str(out),
                "best_epoch": card["training"]["best_epoch"],
                "val_ap50": val["ap50"],
                "val_map": val["map"],
                "val_froc_mean": val["froc_mean"],
            }
        )
    )
