"""`medsight predict MODEL_DIR INPUT...`: calibrated probabilities and classes for raw inputs."""

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
    out: Path = typer.Option(None, "--out", help="Write .csv or .json (default: print JSON lines)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    engine: str = typer.Option("torch", "--engine", help="torch, or onnx (after medsight export onnx)."),
) -> None:
    """Apply the model's own preprocessing, then predict; one row per input."""
    from medsight.audit import Provenance
    from medsight.errors import UnsupportedError
    from medsight.infer import Classifier
    from medsight.io import atomic_path

    with Provenance(inputs=[model, *inputs], parameters={"device": device}) as prov:
        predictor = Classifier.load(model, device=device)
        if predictor.bundle.plan.get("task") != "classify":
            raise UnsupportedError(
                f"a {predictor.bundle.plan.get('task')} model",
                path=model,
                hint="Only classification bundles predict yet",
            )
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
