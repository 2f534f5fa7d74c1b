"""`medsight export onnx MODEL_DIR [--out model.onnx]`: a verified ONNX file for fast CPU inference."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medsight.cli import app

export_app = typer.Typer(help="Export a model bundle for deployment.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def onnx_command(
    model: Path = typer.Argument(..., help="Classification model bundle folder."),
    out: Path = typer.Option(None, "--out", help="ONNX file to write (default: MODEL_DIR/model.onnx)."),
    opset: int = typer.Option(None, "--opset", help="ONNX opset of the graph (default 17)."),
    as_json: bool = typer.Option(False, "--json", help="Print the export record (onnx.json) as JSON."),
) -> None:
    """Export the network, with the plan's normalisation inside, and check it against torch.

    The file takes prepared (resized, not normalised) images and returns logits; its
    SHA-256 and signature go to MODEL_DIR/onnx.json. Predict with it: --engine onnx.
    """
    from medsight.audit import Provenance
    from medsight.infer.onnx import OPSET, RECORD, export_onnx

    opset = opset or OPSET
    target = out if out is not None else model / "model.onnx"
    # The bundle's own files, not the folder: the folder will hold the export itself.
    inputs = [model / name for name in ("weights.safetensors", "plan.json", "labels.json", "hashes.json")]
    with Provenance(inputs=inputs, parameters={"opset": opset, "out": str(target)}) as prov:
        record = export_onnx(model, target, opset=opset)
        prov.add_output(target)
    if as_json:
        typer.echo(json.dumps(record))
        return
    typer.echo(
        f"wrote {target} (opset {opset}; torch vs onnxruntime max |diff| "
        f"{record['verified']['max_abs_diff']:.2g}); recorded in {model / RECORD}"
    )
