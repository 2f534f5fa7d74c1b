"""`medsight evaluate MODEL_DIR DATA --split test [--json] [--out DIR]`: metrics with patient-level CIs."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from medsight.cli import app


class Engine(str, Enum):
    """Which runtime runs the network."""

    torch = "torch"
    onnx = "onnx"


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Model bundle folder (classification, segmentation, detection)."),
    data: Path = typer.Argument(..., help="Labelled, split dataset: manifest, folder or file."),
    split: str = typer.Option("test", "--split", help="Which split of the data to evaluate."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    out: Path = typer.Option(
        None, "--out", help="Folder for metrics.json, predictions.csv and plots (with a provenance record)."
    ),
    n_boot: int = typer.Option(1000, "--n-boot", min=0, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    engine: Engine = typer.Option(Engine.torch, "--engine", help="torch, or onnx (medsight export onnx)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (torch engine)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images predicted at a time."),
    layout: str = typer.Option("auto", "--layout", help="Dataset layout (see medsight dataset import)."),
    tolerance: float = typer.Option(
        1.0, "--tolerance", help="Segmentation: surface distance tolerance (mm) of the NSD."
    ),
) -> None:
    """Evaluate a model on a labelled split with bootstrap CIs.

    Classifiers: AUC, accuracy, sensitivity, ...; segmentation models: Dice, IoU, HD95,
    ASSD, NSD, volume difference per class (and pixel AUC for binary targets); detectors:
    AP50, mAP (IoU 0.5:0.95), FROC sensitivities at 1/8 to 8 false positives per image.
    """
    from medsight.audit import Provenance
    from medsight.errors import FormatError
    from medsight.infer.evaluate import summary, write_evaluation

    if out is not None and out.exists() and not out.is_dir():  # say so now, not after predicting
        raise FormatError("--out must be a folder, and this is a file", path=out, hint="Name a new folder")
    plan_file = model / "plan.json"
    task = json.loads(plan_file.read_text()).get("task") if plan_file.is_file() else None
    if task == "detect":
        _detect(
            model, data, out, as_json, split=split, n_boot=n_boot, seed=seed, device=device, layout=layout
        )
        return
    if task == "segment":
        _segment(
            model,
            data,
            out,
            as_json,
            split=split,
            n_boot=n_boot,
            seed=seed,
            device=device,
            layout=layout,
            tolerance_mm=tolerance,
        )
        return
    params = {
        "split": split,
        "n_boot": n_boot,
        "seed": seed,
        "engine": engine.value,
        "device": device,
        "batch_size": batch_size,
        "layout": layout,
    }
    if out is not None:
        from medsight.report import evaluation_plots

        with Provenance(inputs=[model, data], parameters=params) as prov:
            result = _run(model, data, params)
            write_evaluation(result, out)
            evaluation_plots(result, out)
            prov.add_output(out)
    else:
        result = _run(model, data, params)
    if as_json:
        typer.echo(json.dumps(summary(result)))
    else:
        _print(result)
        if out is not None:
            typer.echo(f"wrote {out}")


def _run(model: Path, data: Path, params: dict) -> dict:
    """Predict with a progress bar on stderr (shown on a terminal only), then compute the metrics."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medsight.infer.evaluate import evaluate_classifier

    console = Console(stderr=True)
    columns = (TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("evaluate", total=None)
        return evaluate_classifier(
            model, data, **params, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from medsight.infer.evaluate import METRICS

    def fmt(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    who = f"{result['n_patients']} patients" if result["resampled"] == "patients" else "images"
    console = Console()
    console.print(
        f"split {result['split']}: {result['n']} images; {result['level']:.0%} CIs from "
        f"{result['n_boot']} resamples of {who}"
    )
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("CI", justify="right")
    for name, (low, high) in ((k, result["ci"].get(k, (None, None))) for k in METRICS):
        table.add_row(name, fmt(result[name]), f"{fmt(low)} - {fmt(high)}")
    console.print(table)
    if result["decision"] == "threshold":
        console.print(f"decision threshold {result['threshold']:.4g} (calibrated on validation)")
    if not result["multilabel"]:
        console.print("confusion matrix (rows truth, columns prediction)")
        matrix = Table()
        matrix.add_column("")
        for name in result["classes"]:
            matrix.add_column(name, justify="right")
        for name, row in zip(result["classes"], result["confusion_matrix"]):
            matrix.add_row(name, *map(str, row))
        console.print(matrix)
    for note in result["notes"]:
        console.print(f"[yellow]note:[/] {note}")


def _evaluate_with_progress(label: str, evaluate, write, model: Path, data: Path, out: Path | None, params):
    """`evaluate(model, data, **params)` under a progress bar and a provenance record; `write`
    puts the result in `out` when given."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medsight.audit import Provenance

    console = Console(stderr=True)
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Provenance(inputs=[model, data], parameters=params) as prov:
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("evaluate", total=None)
            result = evaluate(
                model,
                data,
                **params,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        if out is not None:
            write(result, out)
            prov.add_output(out)
    return result


def _segment(model: Path, data: Path, out: Path | None, as_json: bool, **params) -> None:
    from rich.console import Console
    from rich.table import Table

    from medsight.infer.evaluate import summary
    from medsight.infer.evaluate_segment import write_segment_evaluation
    from medsight.infer.segment import evaluate_segmenter

    result = _evaluate_with_progress(
        "segmenting", evaluate_segmenter, write_segment_evaluation, model, data, out, params
    )
    if as_json:
        typer.echo(json.dumps(summary(result)))
        return
    table = Table(
        title=f"split {params['split']}: {result['n_cases']} cases, mean foreground Dice {result['dice']:.3f}"
    )
    for column in ("class", "dice", "iou", "hd95_mm", "assd_mm", "nsd", "volume_diff_pct"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, values in result["per_class"].items():
        table.add_row(
            name,
            *(
                "-" if values.get(k) is None else f"{values[k]:.3f}"
                for k in ("dice", "iou", "hd95_mm", "assd_mm", "nsd", "volume_diff_pct")
            ),
        )
    Console().print(table)
    if result.get("auc") is not None:
        Console().print(f"pixel AUC {result['auc']:.4f}, pooled F1 {result['f1_pooled']:.4f}")
    if out is not None:
        typer.echo(f"wrote {out}")


def _detect(model: Path, data: Path, out: Path | None, as_json: bool, **params) -> None:
    from rich.console import Console
    from rich.table import Table

    from medsight.infer.detect import evaluate_detector, write_detect_evaluation
    from medsight.infer.evaluate import summary

    result = _evaluate_with_progress(
        "detecting", evaluate_detector, write_detect_evaluation, model, data, out, params
    )
    if as_json:
        typer.echo(json.dumps(summary(result)))
        return

    def fmt(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    ci = result["ci"]
    table = Table(
        title=f"split {params['split']}: {result['n_images']} images, {result['n_references']} boxes; "
        f"{result['level']:.0%} CIs over {result['resampled']}"
    )
    for column in ("metric", "value", "CI"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    rows = [("AP50", "ap50"), ("mAP 0.5:0.95", "map"), ("FROC mean", "froc_mean")]
    for name, key in rows:
        low, high = ci.get(key, (None, None))
        table.add_row(name, fmt(result[key]), f"{fmt(low)} - {fmt(high)}")
    for rate, value in result["froc"].items():
        low, high = ci.get("froc", {}).get(rate, (None, None))
        table.add_row(f"sensitivity at {rate} FP/image", fmt(value), f"{fmt(low)} - {fmt(high)}")
    Console().print(table)
    for note in result["notes"]:
        Console().print(f"[yellow]note:[/] {note}")
    if out is not None:
        typer.echo(f"wrote {out}")
