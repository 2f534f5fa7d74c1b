"""`medsight predict MODEL_DIR INPUT...`: classes with calibrated probabilities, or label maps.

Classification prints or writes one row per input. Segmentation writes a label map per
input (NIfTI, on the input's grid; a DICOM SEG too for DICOM input) and prints the
volume of each structure. Detection prints or writes boxes with scores (JSON/CSV, overlay
PNGs, and a DICOM SR measurement report for DICOM input).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import typer

from medsight.cli import app


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model bundle folder."),
    inputs: list[Path] = typer.Argument(..., help="Image files, folders of images, or DICOM series folders."),
    out: Path = typer.Option(
        None,
        "--out",
        help="Classification: .csv or .json (default: print JSON lines). "
        "Segmentation: a label map file (one input) or a folder. "
        "Detection: a folder for detections.json/.csv, overlay PNGs and, for DICOM input, a DICOM SR "
        "(default: print JSON lines).",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    engine: str = typer.Option("torch", "--engine", help="torch, or onnx (after medsight export onnx)."),
    probabilities: bool = typer.Option(
        False, "--probabilities", help="Segmentation: also write class probabilities."
    ),
) -> None:
    """Apply the model's own preprocessing, then predict each input."""
    from medsight.audit import Provenance
    from medsight.errors import FormatError, UnsupportedError
    from medsight.infer import Classifier
    from medsight.io import atomic_path

    plan_file = model / "plan.json"
    task = json.loads(plan_file.read_text()).get("task") if plan_file.is_file() else None
    if task == "detect":
        _detect(model, inputs, out, device)
        return
    if task == "segment":
        if out is None:
            raise FormatError("segmentation needs --out", hint="--out seg.nii.gz, or --out FOLDER")
        _segment(model, inputs, out, device, probabilities)
        return
    with Provenance(inputs=[model, *inputs], parameters={"device": device}) as prov:
        predictor = Classifier.load(model, device=device)
        rows = predictor.predict_paths(inputs)
        if out is None:
            for row in rows:
                typer.echo(json.dumps(row))
            return
        if out.suffix.lower() == ".json":
            text = json.dumps(rows, indent=2) + "\n"
        elif out.suffix.lower() == ".csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(
                buffer, fieldnames=list(rows[0]) if rows else ["path"], lineterminator="\n"
            )
            writer.writeheader()
            writer.writerows(
                {k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows
            )
            text = buffer.getvalue()
        else:
            raise UnsupportedError(
                f"cannot write predictions as {out.suffix or 'a file without suffix'}",
                path=out,
                hint="Use .csv or .json",
            )
        with atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
        prov.add_output(out)
    typer.echo(f"wrote {out}: {len(rows)} prediction(s)")


def _segment(model: Path, inputs: list[Path], out: Path, device: str, probabilities: bool) -> None:
    from medsight.audit import Provenance
    from medsight.errors import FormatError
    from medsight.infer.classify import expand_inputs
    from medsight.infer.segment import Segmenter

    paths = expand_inputs(inputs)
    if len(paths) > 1 and out.suffix:
        raise FormatError(
            f"{len(paths)} inputs, but --out names one file",
            path=out,
            hint="Give a folder for several inputs",
        )
    params = {"device": device, "probabilities": probabilities}
    with Provenance(inputs=[model, *paths], parameters=params) as prov:
        segmenter = Segmenter.load(model, device=device)
        for path in paths:
            result = segmenter.predict_path(path, out, probabilities=probabilities)
            for written in result["outputs"].values():
                prov.add_output(written)
            typer.echo(json.dumps(result))


def _detect(model: Path, inputs: list[Path], out: Path | None, device: str) -> None:
    """Boxes (voxels and RAS+ mm), classes and scores; with --out, JSON, CSV, overlay PNGs, DICOM SR."""
    from medsight.audit import Provenance
    from medsight.errors import FormatError
    from medsight.infer.detect import Detector

    if out is not None and out.suffix:
        raise FormatError("detection writes a folder", path=out, hint="Give --out a folder name")
    with Provenance(inputs=[model, *inputs], parameters={"device": device}) as prov:
        rows = Detector.load(model, device=device).predict_paths(inputs, out)
        if out is not None:
            prov.add_output(out)
    for row in rows:
        typer.echo(json.dumps(row))
