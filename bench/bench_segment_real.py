"""Benchmark: MedSight segmentation trained within a time budget, scored once on the test split.

For each dataset: `train_segmenter` (selection on a `val` carved from the training split,
never on `test`), then `evaluate_segmenter` on `test` with patient- or case-level bootstrap
intervals. Prints ONE JSON line with the figures, the targets and the published anchors.

    python bench/bench_segment_real.py --datasets drive kvasir busi brain

Splits: DRIVE 20 train / 20 test (a fifth of train held out as val); Kvasir-SEG the official
MediaEval 880 / 120 (120 = test; val carved from the 880); BUSI (no patient ids published)
a seeded image-level split 70/15/15 stratified by class, fixed by `--split-seed`; brain
phantoms: synthetic heads, split by patient.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _machine import run_datasets

DATA = Path(os.environ.get("MEDSIGHT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# name: (default budget in minutes, targets, published anchor)
DATASETS = {
    "drive": (20, {"auc": 0.975, "f1_pooled": 0.80}, "best published AUC .979, F1 .816"),
    "kvasir": (30, {"dice": 0.80}, "U-Net about .82, PraNet about .90 (pretrained)"),
    "busi": (10, {}, "no target: Dice reported with its interval"),
    # 30 min: at 15 the hippocampi (~450 voxels at 2 mm) were 8-16% off in volume (docs/benchmarks.md).
    "brain": (30, {"dice_per_structure": 0.90, "volume_abs_diff_pct_per_structure": 5.0}, "synthetic"),
}


def _manifest(name: str, work: Path, split_seed: int):
    from medsight.data import load_dataset, write_manifest
    from medsight.data.splits import split_dataset

    if name == "drive":
        return load_dataset(DATA / "drive")
    if name == "kvasir":
        return load_dataset(DATA / "kvasir-seg")
    if name == "busi":
        from dataclasses import replace

        from medsight.errors import MedsightError

        manifest = load_dataset(DATA / "busi")
        usable = []
        for s in manifest:
            try:
                manifest.load_mask(s)  # `benign (4)`: its second mask is on another grid (medsight qc)
                usable.append(s)
            except MedsightError as exc:
                print(f"busi: left out {s.key}: {exc.problem}", file=sys.stderr)
        manifest, _ = split_dataset(replace(manifest, samples=usable), seed=split_seed)
        # Normal images have empty masks: kept, as a model must learn to leave them empty.
        write_manifest(manifest, work / "busi_split.json")
        return manifest
    from medsight.data.synthetic import export_cohort

    path = export_cohort("brain-mri", work / "brain", n=24, seed=split_seed, timepoints=1)
    manifest, _ = split_dataset(load_dataset(path), seed=split_seed)
    return manifest


def run_one(name: str, budget: float, seed: int, split_seed: int, work: Path) -> dict:
    from collections import Counter

    from medsight.infer.segment import evaluate_segmenter
    from medsight.train.segment import train_segmenter

    manifest = _manifest(name, work, split_seed)
    model = work / f"{name}_seed{seed}"
    start = time.perf_counter()
    card = train_segmenter(manifest, model, budget_min=budget, seed=seed, progress=False)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    result = evaluate_segmenter(model, manifest, split="test", n_boot=1000, seed=seed)
    evaluate_s = time.perf_counter() - start
    plan = json.loads((model / "plan.json").read_text())
    history = [json.loads(x) for x in (model / "history.jsonl").read_text().splitlines()]
    per_class = {
        k: {m: v[m] for m in v if m in ("dice", "hd95_mm", "nsd") or m.endswith("abs_diff_pct")}
        for k, v in result["per_class"].items()
    }
    return {
        "dataset": name,
        "seed": seed,
        "samples": dict(Counter(s.split for s in manifest)),
        "train_s": round(train_s, 1),
        "setup_s": card["training"].get("setup_s"),
        "epochs": len(history),
        "best_epoch": card["training"]["best_epoch"],
        "val_dice": card["validation"]["dice_per_class"],
        "patch_size": plan["patch_size"],
        "spacing": plan["preprocess"]["spacing"],
        "network_filters": plan["network"].get("filters"),
        "postprocess": plan.get("postprocess"),
        "test_dice": result["dice"],
        "test_dice_ci": result["ci"]["dice"],
        "test_auc": result["auc"],
        "test_auc_ci": result["ci"].get("auc"),
        "test_f1_pooled": result["f1_pooled"],
        "test_f1_pooled_ci": result["ci"]["f1_pooled"],
        "per_class": per_class,
        "evaluate_s": round(evaluate_s, 1),
        "test_cases_per_s": round(result["n_cases"] / evaluate_s, 2) if result.get("n_cases") else None,
        "notes": result.get("notes"),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--budget", type=float, help="minutes per training (default: per dataset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0, help="BUSI and brain phantom split seed")
    parser.add_argument("--work", type=Path, help="keep models here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}; set MEDSIGHT_SHARED_DATA")

    def run(name: str, work: Path) -> dict:
        budget = args.budget or DATASETS[name][0]
        row = run_one(name, budget, args.seed, args.split_seed, work)
        return {**row, "budget_min": budget, "target": DATASETS[name][1], "anchor": DATASETS[name][2]}

    return run_datasets("segment_real", args.datasets, run, args.work)


if __name__ == "__main__":
    main()
