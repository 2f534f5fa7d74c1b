"""Benchmark: MedSight classification on MedMNIST (real data), against the published table.

For each dataset and seed: `train_classifier` with the time budget (selection on `val`
only), then `evaluate_classifier` on `test`, once. Prints ONE JSON line with per-seed
figures, mean and standard deviation, the targets and MedMNIST v2's numbers.

    python bench/bench_classify_medmnist.py --datasets pneumonia --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine

DATA = Path(os.environ.get("MEDSIGHT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# name: (file, default budget in minutes, target AUC, target ACC, MedMNIST v2 best CNN AUC/ACC, best of table)
DATASETS = {
    "pneumonia": (
        "medmnist/pneumoniamnist.npz",
        10,
        0.97,
        0.90,
        "ResNet-50 (224) .962/.884",
        "AutoML .991/.946",
    ),
    "breast": ("medmnist/breastmnist.npz", 5, 0.92, 0.88, "ResNet-18 (28) .901/.863", "AutoML .919/.861"),
    "adrenal3d": (
        "medmnist/adrenalmnist3d.npz",
        8,
        0.87,
        0.82,
        "ResNet-18+ACS .839/.754",
        "auto-sklearn .828/.802",
    ),
}


def run_one(name: str, seed: int, budget: float, work: Path) -> dict:
    from medsight.infer import evaluate_classifier
    from medsight.train.classify import train_classifier

    file = DATA / DATASETS[name][0]
    model = work / f"{name}_seed{seed}"
    start = time.perf_counter()
    card = train_classifier(file, model, budget_min=budget, seed=seed, progress=False)
    train_s = time.perf_counter() - start
    result = evaluate_classifier(model, file, split="test", n_boot=200, seed=seed)
    history = [json.loads(x) for x in (model / "history.jsonl").read_text().splitlines()]
    plan = json.loads((model / "plan.json").read_text())
    return {
        "seed": seed,
        "train_s": round(train_s, 1),
        "epochs": len(history),
        "best_epoch": card["training"]["best_epoch"],
        "val_auc": round(card["validation"]["calibrated"]["auc"], 4),
        "test_auc": round(result["auc"], 4),
        "test_accuracy": round(result["accuracy"], 4),
        "test_auc_ci": result["ci"]["auc"],
        "test_ece": round(result["ece"], 4),
        "network": plan["network"],
        "input_size": plan["preprocess"]["size"],
        "first_epoch_val_auc_ge_0_98_s": next(
            (h["elapsed_s"] for h in history if h.get("val_auc", 0) >= 0.98), None
        ),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--budget", type=float, default=None, help="minutes per training (default per dataset)"
    )
    parser.add_argument("--work", type=Path, default=None, help="keep the models here")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="medsight-bench-"))
    out = {
        "benchmark": "classify_medmnist",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "results": {},
    }
    for name in args.datasets:
        file, budget, auc_t, acc_t, best_cnn, best_table = DATASETS[name]
        runs = [run_one(name, seed, args.budget or budget, work) for seed in args.seeds]
        aucs, accs = [r["test_auc"] for r in runs], [r["test_accuracy"] for r in runs]
        out["results"][name] = {
            "budget_min": args.budget or budget,
            "runs": runs,
            "test_auc_mean": round(statistics.mean(aucs), 4),
            "test_auc_sd": round(statistics.stdev(aucs), 4) if len(aucs) > 1 else 0.0,
            "test_accuracy_mean": round(statistics.mean(accs), 4),
            "test_accuracy_sd": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
            "target": {"auc": auc_t, "accuracy": acc_t},
            "meets_target": statistics.mean(aucs) >= auc_t and statistics.mean(accs) >= acc_t,
            "medmnist_v2_best_cnn": best_cnn,
            "medmnist_v2_best": best_table,
        }
        print(json.dumps({name: out["results"][name]}), file=sys.stderr, flush=True)
    out["machine"] = machine(("torch", "monai", "numpy"))
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
