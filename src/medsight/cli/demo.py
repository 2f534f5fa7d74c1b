"""`medsight demo`: the main job on built-in data. Grows with each capability.

Now: synthesise a body CT phantom, write it as a DICOM series, inspect it, convert it
to NIfTI and check that geometry and HU survive the round trip.
"""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.cli import app


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for the demo's outputs."),
    seed: int = typer.Option(0, "--seed", help="Phantom seed."),
) -> None:
    """Run the demo on a built-in phantom (no data needed)."""
    import numpy as np
    from rich.console import Console

    from medsight.audit import Provenance
    from medsight.data.synthetic import body_ct
    from medsight.io import read, write, write_dicom_series
    from medsight.io._summary import summarize

    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    phantom = body_ct(seed=seed)
    ct, labels = phantom.image, phantom.mask
    console.print(f"[bold]1. Phantom[/]: {ct}")

    dicom_dir = out / "ct_dicom"
    with Provenance(inputs=[], parameters={"seed": seed}) as prov:
        files = write_dicom_series(
            ct, dicom_dir, modality="CT", patient={"PatientName": "Demo^Phantom", "PatientID": "DEMO-0001"}
        )
        prov.add_output(dicom_dir)
    console.print(f"[bold]2. DICOM series[/]: {len(files)} files in {dicom_dir}")

    summary = summarize(dicom_dir)[0]
    console.print(
        "[bold]3. medsight info[/]:",
        {
            k: summary[k]
            for k in (
                "modality",
                "shape",
                "spacing",
                "origin",
                "orientation",
                "dtype",
                "min",
                "max",
                "n_files",
            )
        },
    )

    nifti = out / "ct.nii.gz"
    with Provenance(inputs=[dicom_dir]) as prov:
        write(read(dicom_dir), nifti)
        write(labels, out / "labels.nii.gz")
        prov.add_output(nifti)
        prov.add_output(out / "labels.nii.gz")
    back = read(nifti)
    same = np.array_equal(back.array, ct.array) and np.allclose(back.affine, ct.affine, atol=1e-4)
    console.print(f"[bold]4. NIfTI[/]: {nifti} ({'voxels and geometry identical' if same else 'MISMATCH'})")
    if not same:
        raise typer.Exit(1)
