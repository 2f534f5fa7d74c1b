"""Benchmark: MedSight detection trained within a time budget, scored once on the test split.

For each dataset: `train_detector` (selection on a `val` carved from the training split,
never on `test`), then `evaluate_detector` on `test` (AP50, mAP, FROC with bootstrap
intervals), then inference speed: images per second through `Detector.predict_boxes` on
images already in memory (preprocessing, network, box selection; not file reading).
Prints ONE JSON line with the figures and the targets.

    python bench/bench_detect.py --datasets kvasir chest ct tbx11k
    python bench/bench_detect.py --datasets chest --work W --rescore   # the model in W, again

The phantoms' test FROC is also given per stratum of their findings (`STRATA`: a chest
nodule's conspicuity, a CT tumour's diameter). `--rescore` scores a model trained earlier in
``--work`` again, test-time mirroring chosen on val first as training now chooses it.

Data: Kvasir-SEG polyp boxes (``kavsir_bboxes.json``), the official MediaEval 2020 880 / 120
split (the 120 are the test split, never used for selection; val is carved from the 880);
phantom chest radiographs (normal and nodule films, 1-3 nodules of 8-24 mm, 256 x 256 at 1.5 mm
pixels, 12-bit NIfTI) and
phantom abdominal CT (liver tumours as 3D boxes, the phantom CT with nodules here), split by
patient 70/15/15; TBX11K's three published example radiographs: trained and scored on the
same three images, a smoke test on real films, not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _machine import run_datasets

DATA = Path(os.environ.get("MEDSIGHT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# name: (default budget in minutes, targets on the test split, note)
DATASETS = {
    "kvasir": (30, {"ap50": 0.80}, "no pretrained weights; official 880/120 split"),
    "chest": (30, {"froc_mean": 0.85}, "synthetic chest radiographs, nodules; 30 min as Kvasir and CT"),
    "ct": (30, {"froc_mean": 0.80}, "synthetic abdominal CT, liver tumours as 3D boxes"),
    "tbx11k": (2, {}, "three real radiographs, trained and scored on the same images: a smoke test"),
}
TBX11K = "TBX11K_train.json"  # COCO boxes of the three example images
# Phantom cohort sizes (--patients sets them for quick runs). Chest 720: at 240 the 28 test
# nodules gave an interval +-0.15 wide and validation (36 films) read 0.68 where test read 0.43.
# CT 180: at 60 the best epoch came at 45% of the run (42 training scans) and one of the 15 test
# tumours moved sensitivity by 0.067.
PATIENTS = {"chest": 720, "ct": 180}


def _manifest(name: str, work: Path, seed: int, patients: int | None, exported: bool = False):
    from medsight.data import load_dataset
    from medsight.data.splits import split_dataset

    if name == "kvasir":
        return load_dataset(DATA / "kvasir-seg")
    if name == "tbx11k":
        manifest = load_dataset(
            DATA / "cxr" / "tbx11k_test_data" / "annotations" / "json" / "TBX11K_train.json"
        )
        return replace(manifest, samples=[replace(s, split="train") for s in manifest])
    from medsight.data.synthetic import export_cohort

    n = patients or PATIENTS[name]
    if exported:  # the cohort a model in `work` was trained on
        path = work / name
    elif name == "chest":
        # 1.5 mm pixels, 12-bit NIfTI: at the default 3 mm and the 8-bit PNG export a nodule's
        # contrast (median 26 of 4096 grey levels) falls to 1-2 levels, under the noise.
        path = export_cohort(
            "chest-xray",
            work / "chest",
            n=n,
            seed=seed,
            classes=["normal", "nodule"],
            format="nifti",
            shape=(256, 256),
        )
    else:
        path = export_cohort("body-ct", work / "ct", n=n, seed=seed, timepoints=1)
    manifest, _ = split_dataset(load_dataset(path), seed=seed)
    return manifest


def _images_per_s(detector, manifest, split: str, limit: int = 50) -> float:
    images = [manifest.load_image(s) for s in manifest if s.split == split][:limit]
    detector.predict_boxes(images[0])  # warm-up: first-call allocations are not throughput
    start = time.perf_counter()
    for image in images:
        detector.predict_boxes(image)
    return round(len(images) / (time.perf_counter() - start), 2)


# Phantom findings by what makes them hard: a chest nodule's conspicuity (band-passed signal
# over the clutter around it; the phantom places nodules where it reaches 1), a CT tumour's size.
STRATA = {
    "chest": ("nodules", "conspicuity", (1.0, 1.25, 1.5, 2.0)),
    "ct": ("tumours", "diameter_mm", (15.0, 20.0, 25.0)),
}


def _strata(name: str, work: Path, manifest, result: dict, hit: str) -> dict | None:
    """Test FROC per stratum of the phantom's findings (`STRATA`), from the evaluation's cases."""
    from medsight.tasks.detect.metrics import DetectionSet

    if name not in STRATA:
        return None
    key, field, edges = STRATA[name]
    truth = json.loads((work / name / "truth.json").read_text())["cases"]
    samples = {s.key: s for s in manifest if s.split == "test"}
    predictions, references, values = [], [], []
    for case in result["cases"]:
        found = json.loads(case["detections"])
        predictions.append(
            {
                "boxes": [d["box"] for d in found],
                "scores": [d["score"] for d in found],
                "labels": [d["label"] for d in found],
            }
        )
        boxes = samples[case["key"]].boxes
        references.append({"boxes": [b["box"] for b in boxes], "labels": [b["label"] for b in boxes]})
        values += [finding[field] for finding in truth[case["key"]][key]]
    scored = DetectionSet(predictions, references, classes=result["classes"], hit=hit)
    values = np.asarray(values, float)
    bounds = [-np.inf, *edges, np.inf]
    return {
        f"{field} {_band(lo, hi)}": scored.stratum_froc((values >= lo) & (values < hi))
        for lo, hi in zip(bounds[:-1], bounds[1:])
    }


def _band(lo: float, hi: float) -> str:
    return f"under {hi:g}" if lo == -np.inf else f"{lo:g} and over" if hi == np.inf else f"{lo:g}-{hi:g}"


def _rechoose_mirroring(model: Path, manifest, seed: int):
    """A model trained before test-time mirroring, loaded with mirroring chosen as training now
    chooses it (`train.detect`): kept where it raises the selection metric on val."""
    from medsight.data.splits import ensure_validation
    from medsight.infer.detect import Detector, evaluate_detector
    from medsight.tasks.mirroring import kept_mirror_axes, mirror_axes

    detector = Detector.load(model)
    plan = detector.bundle.plan
    key = plan["selection"]["metric"].removeprefix("val_")
    val, _ = ensure_validation(manifest, seed=seed)  # as training carved it
    axes = mirror_axes(plan)
    scores = []
    for tried in ([], axes):
        plan.setdefault("inference", {})["mirror_axes"] = tried
        scores.append(round(evaluate_detector(detector, val, split="val", n_boot=0)[key], 6))
    kept = kept_mirror_axes(axes, *scores)
    plan["inference"]["mirror_axes"] = kept
    return detector, {"axes": kept, f"{key}_without": scores[0], f"{key}_with": scores[1]}


def run_one(
    name: str, budget: float, seed: int, work: Path, patients: int | None, overrides=(), rescore=False
) -> dict:
    from collections import Counter

    from medsight.infer.detect import Detector, evaluate_detector
    from medsight.train.detect import train_detector

    manifest = _manifest(name, work, seed, patients, exported=rescore)
    model = work / f"{name}_seed{seed}"
    start = time.perf_counter()
    if rescore:
        card = json.loads((model / "model_card.json").read_text())
        detector, mirroring = _rechoose_mirroring(model, manifest, seed)
    else:
        card = train_detector(
            manifest, model, budget_min=budget, seed=seed, overrides=list(overrides), progress=False
        )
        detector, mirroring = Detector.load(model), card["validation"]["mirroring"]
    train_s = time.perf_counter() - start
    scored = manifest
    if name == "tbx11k":  # three images: score the training images themselves (smoke test)
        scored = replace(manifest, samples=[replace(s, split="test") for s in manifest])
    start = time.perf_counter()
    result = evaluate_detector(detector, scored, split="test", n_boot=1000, seed=seed)
    evaluate_s = time.perf_counter() - start
    plan = detector.bundle.plan
    history = [json.loads(x) for x in (model / "history.jsonl").read_text().splitlines()]
    test = {k: result[k] for k in ("ap50", "map", "froc_mean")}
    return {
        "dataset": name,
        "seed": seed,
        "samples": dict(Counter(s.split for s in manifest)),
        "classes": result["classes"],
        "train_s": None if rescore else round(train_s, 1),
        "rescored": rescore,
        "setup_s": card["training"].get("setup_s"),
        "epochs": len(history),
        "best_epoch": card["training"]["best_epoch"],
        "val": {k: card["validation"][k] for k in ("ap50", "map", "froc_mean")},
        "input_size": plan["preprocess"]["size"],
        "network": plan["network"],
        "anchors": plan["anchors"]["base_shapes"],
        "training_patch": plan.get("training_patch"),
        "augmentation": plan["augmentation"],
        "overrides": list(overrides),
        **{f"test_{k}": v for k, v in test.items()},
        **{f"test_{k}_ci": result["ci"].get(k) for k in test},
        "test_froc": result["froc"],
        "test_froc_by_stratum": _strata(name, work, manifest, result, plan["validation"]["froc_hit"]),
        "n_test_images": result["n_images"],
        "met": {k: test[k] is not None and test[k] >= v for k, v in DATASETS[name][1].items()},
        "evaluate_s": round(evaluate_s, 1),
        "mirroring": mirroring,
        "predict_images_per_s": _images_per_s(detector, scored, "test"),
        "notes": result.get("notes"),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--budget", type=float, help="minutes per training (default: per dataset)")
    parser.add_argument("--seed", type=int, default=0, help="training seed and phantom cohort/split seed")
    parser.add_argument("--patients", type=int, help="phantom cohort size (default: chest 720, ct 180)")
    parser.add_argument("--work", type=Path, help="keep models here (default: a temporary folder)")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="score the models already trained in --work again (test-time mirroring chosen on val)",
    )
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE", help="plan override (repeatable)"
    )
    args = parser.parse_args(argv)
    if {"kvasir", "tbx11k"} & set(args.datasets) and not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}; set MEDSIGHT_SHARED_DATA")

    def run(name: str, work: Path) -> dict:
        budget = args.budget or DATASETS[name][0]
        row = run_one(name, budget, args.seed, work, args.patients, args.override, args.rescore)
        return {**row, "budget_min": budget, "target": DATASETS[name][1], "note": DATASETS[name][2]}

    return run_datasets("detect", args.datasets, run, args.work)


if __name__ == "__main__":
    main()
