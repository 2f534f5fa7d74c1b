"""`medsight demo`: the main job on built-in data. Grows with each capability.

Now: a phantom chest radiograph cohort (normal vs consolidation) is synthesised, checked
(`qc`), split by patient, used to train a classifier within a time budget, evaluated on
its test split with confidence intervals, and used for prediction; then a phantom body CT
goes through DICOM and back to NIfTI with its geometry and HU intact; last, a segmentation
model is trained on brain MRI phantoms and measures the structures of an unseen head in mL.
"""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.cli import app


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for the demo's outputs (replaced)."),
    seed: int = typer.Option(0, "--seed", help="Phantom, split and training seed."),
    patients: int = typer.Option(240, "--patients", help="Chest radiograph phantoms to make."),
    time_budget: float = typer.Option(1.5, "--time-budget", help="Minutes of classifier training."),
    segment_budget: float = typer.Option(3.0, "--segment-budget", help="Minutes of segmentation training."),
) -> None:
    """Run the demo on built-in phantoms (no data needed, a few minutes on a laptop CPU)."""
    import shutil

    from rich.console import Console

    console = Console()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _classification(console, out, seed=seed, patients=patients, time_budget=time_budget)
    _dicom_round_trip(console, out, seed=seed)
    _segmentation(console, out, seed=seed, time_budget=segment_budget)
    console.print(f"[bold green]Demo done.[/] Everything it wrote is in {out}/ (with provenance records).")


def _classification(console, out: Path, *, seed: int, patients: int, time_budget: float) -> None:
    from medsight.audit import Provenance, check_quality
    from medsight.data import load_dataset, write_manifest
    from medsight.data.describe import describe
    from medsight.data.splits import split_dataset
    from medsight.data.synthetic import export_cohort
    from medsight.infer import Classifier, evaluate_classifier
    from medsight.infer.evaluate import write_evaluation
    from medsight.report import evaluation_plots
    from medsight.train.classify import train_classifier

    cohort = out / "chest"
    manifest_path = export_cohort(
        "chest-xray", cohort, n=patients, seed=seed, classes=["normal", "consolidation"]
    )
    summary = describe(load_dataset(manifest_path), max_images=50)
    console.print(
        f"[bold]1. Phantom chest radiographs[/]: {summary['samples']} images, classes "
        f"{summary['classes']}, sizes {summary['images']['shapes']}"
    )

    report = check_quality(manifest_path)
    console.print(f"[bold]2. medsight qc[/]: {report.summary}")

    manifest, notes = split_dataset(load_dataset(manifest_path), seed=seed)
    split_path = write_manifest(manifest, cohort / "split.json")
    console.print(f"[bold]3. Patient-level split[/]: {notes[-1]}")

    model = out / "chest_model"
    console.print(
        f"[bold]4. Training[/] a classifier for {time_budget} min (plan from the data and this CPU)"
    )
    with Provenance(inputs=[split_path], parameters={"time_budget_min": time_budget, "seed": seed}) as prov:
        card = train_classifier(split_path, model, budget_min=time_budget, seed=seed)
        prov.add_output(model)
    val = card["validation"]["calibrated"]
    console.print(
        f"   best epoch {card['training']['best_epoch']}: validation AUC {val['auc']:.3f}, "
        f"ECE {card['validation']['before_calibration']['ece']:.3f} -> {val['ece']:.3f} after calibration"
    )

    result = evaluate_classifier(model, split_path, split="test", n_boot=500, seed=seed)
    evaluation = out / "chest_evaluation"
    with Provenance(inputs=[model, split_path], parameters={"split": "test"}) as prov:
        write_evaluation(result, evaluation)
        evaluation_plots(result, evaluation)
        prov.add_output(evaluation)
    lo, hi = result["ci"]["auc"]
    console.print(
        f"[bold]5. Test split[/] ({result['n']} images, intervals over {result['resampled']}): "
        f"AUC {result['auc']:.3f} [{lo:.3f}, {hi:.3f}], accuracy {result['accuracy']:.3f}; "
        f"plots in {evaluation}/"
    )

    test = [s for s in manifest if s.split == "test"][:2]
    rows = Classifier.load(model).predict_paths([manifest.path(s.image) for s in test])
    for sample, row in zip(test, rows):
        console.print(
            f"[bold]6. Predict[/] {Path(row['path']).name}: {row['prediction']} "
            f"(truth {sample.label}, p={max(v for k, v in row.items() if k.startswith('p_')):.2f})"
        )


def _dicom_round_trip(console, out: Path, *, seed: int) -> None:
    import numpy as np

    from medsight.audit import Provenance
    from medsight.data.synthetic import body_ct
    from medsight.io import read, write, write_dicom_series
    from medsight.io._summary import summarize

    phantom = body_ct(seed=seed)
    dicom_dir = out / "ct_dicom"
    with Provenance(parameters={"seed": seed}) as prov:
        write_dicom_series(
            phantom.image,
            dicom_dir,
            modality="CT",
            patient={"PatientName": "Demo^Phantom", "PatientID": "DEMO-0001"},
        )
        prov.add_output(dicom_dir)
    info = summarize(dicom_dir)[0]
    console.print(
        f"[bold]7. CT phantom as DICOM[/]: {info['n_files']} files, shape {info['shape']}, "
        f"spacing {info['spacing']} mm, {info['orientation']}, HU {info['min']}..{info['max']}"
    )
    nifti = out / "ct.nii.gz"
    with Provenance(inputs=[dicom_dir]) as prov:
        write(read(dicom_dir), nifti)
        write(phantom.mask, out / "ct_labels.nii.gz")
        prov.add_output(nifti)
        prov.add_output(out / "ct_labels.nii.gz")
    back = read(nifti)
    same = np.array_equal(back.array, phantom.image.array) and np.allclose(
        back.affine, phantom.image.affine, atol=1e-4
    )
    console.print(f"[bold]8. NIfTI[/]: {nifti} ({'voxels and geometry identical' if same else 'MISMATCH'})")
    if not same:
        raise typer.Exit(1)


def _segmentation(console, out: Path, *, seed: int, time_budget: float) -> None:
    from rich.table import Table

    from medsight.audit import Provenance
    from medsight.data import load_dataset, write_manifest
    from medsight.data.splits import split_dataset
    from medsight.data.synthetic import export_cohort
    from medsight.infer.segment import Segmenter
    from medsight.tasks.segment.measure import measure_labels
    from medsight.train.segment import train_segmenter

    manifest_path = export_cohort("brain-mri", out / "brain", n=12, seed=seed, timepoints=1)
    manifest, _ = split_dataset(load_dataset(manifest_path), seed=seed)
    split_path = write_manifest(manifest, out / "brain" / "split.json")
    model = out / "brain_model"
    console.print(
        f"[bold]9. Segmentation[/]: {len(manifest)} brain MRI phantoms; training for {time_budget} min "
        "(spacing, patch and U-Net planned from the data and this CPU)"
    )
    with Provenance(inputs=[split_path], parameters={"time_budget_min": time_budget, "seed": seed}) as prov:
        card = train_segmenter(split_path, model, budget_min=time_budget, seed=seed)
        prov.add_output(model)
    dice = card["validation"]["dice_per_class"]
    console.print(
        f"   best epoch {card['training']['best_epoch']}: validation Dice "
        + ", ".join(f"{k} {v:.2f}" for k, v in dice.items() if v is not None)
    )
    test = next(s for s in manifest if s.split == "test")
    predicted_dir = out / "brain_prediction"
    with Provenance(inputs=[model, manifest.path(test.image)]) as prov:
        result = Segmenter.load(model).predict_path(manifest.path(test.image), predicted_dir)
        prov.add_output(predicted_dir)
    truth = {
        row["name"]: row["volume_ml"]
        for row in measure_labels(manifest.load_mask(test), names=manifest.label_names)
    }
    table = Table(title=f"10. Structure volumes of an unseen head ({Path(test.image).name})")
    for column in ("structure", "predicted mL", "true mL", "difference"):
        table.add_column(column, justify="left" if column == "structure" else "right")
    predicted = {row["name"]: row["volume_ml"] for row in result["labels"]}
    for name, true in truth.items():
        volume = predicted.get(name, 0.0)  # a structure the model missed has no row
        table.add_row(name, f"{volume:.1f}", f"{true:.1f}", f"{100 * (volume - true) / true:+.1f}%")
    console.print(table)
    console.print(f"   label map: {result['outputs']['labels']}")
