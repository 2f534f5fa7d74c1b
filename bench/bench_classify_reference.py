"""Benchmark: time to validation AUC 0.98 on PneumoniaMNIST, MedSight vs a reference MONAI loop.

Reference (the issue's): MONAI 2D ResNet-18, Adam 1e-3, batch 128, random flips, the same
28 x 28 images scaled to [0, 1]; validation AUC after every epoch. MedSight: `train_classifier`
with its own plan; the time to target is the set-up (planning, loading) plus the loop's
elapsed time at the first epoch whose validation AUC reaches the target. Same machine, same
run, one after the other. Also: prediction throughput (images/s) for torch and onnxruntime.

    python bench/bench_classify_reference.py --budget 10 --reference-cap 30
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine

DATA = Path(os.environ.get("MEDSIGHT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FILE = DATA / "medmnist" / "pneumoniamnist.npz"


def reference_loop(target: float, cap_min: float, seed: int) -> dict:
    import torch
    from monai.networks.nets import ResNet
    from monai.transforms import RandFlip
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count() or 1)
    with np.load(FILE) as npz:
        x_train = torch.from_numpy(npz["train_images"][:, None].astype(np.float32) / 255)
        y_train = torch.from_numpy(npz["train_labels"].reshape(-1).astype(np.int64))
        x_val = torch.from_numpy(npz["val_images"][:, None].astype(np.float32) / 255)
        y_val = npz["val_labels"].reshape(-1)
    start = time.perf_counter()
    model = ResNet(
        "basic", [2, 2, 2, 2], [64, 128, 256, 512], spatial_dims=2, n_input_channels=1, num_classes=2
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    flips = [RandFlip(prob=0.5, spatial_axis=0), RandFlip(prob=0.5, spatial_axis=1)]
    for f in flips:
        f.set_random_state(seed)
    history = []
    epoch = 0
    while time.perf_counter() - start < cap_min * 60:
        epoch += 1
        model.train()
        order = torch.randperm(len(x_train))
        for i in range(0, len(order), 128):
            idx = order[i : i + 128]
            batch = torch.stack([flips[1](flips[0](img)) for img in x_train[idx]])
            loss = torch.nn.functional.cross_entropy(model(batch), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            p = torch.cat(
                [model(x_val[i : i + 256]).softmax(1)[:, 1] for i in range(0, len(x_val), 256)]
            ).numpy()
        auc = float(roc_auc_score(y_val, p))
        history.append(
            {"epoch": epoch, "elapsed_s": round(time.perf_counter() - start, 1), "val_auc": round(auc, 4)}
        )
        print(json.dumps({"reference": history[-1]}), file=sys.stderr, flush=True)
        if auc >= target:
            break
    reached = next((h["elapsed_s"] for h in history if h["val_auc"] >= target), None)
    return {"time_to_target_s": reached, "history": history, "capped": reached is None}


def medsight_run(target: float, budget: float, seed: int, work: Path, reuse: Path | None) -> dict:
    """Train (or take a model trained earlier on this machine) and read its history.

    The time to target is the set-up before epoch 1 (reading, planning, caching; from the
    model card) plus the loop's elapsed time at the first epoch that reaches the target.
    Imports are left out on both sides, as the reference loop's timer starts after them.
    """
    import monai.networks.nets  # noqa: F401
    import torch  # noqa: F401

    from medsight.train.classify import train_classifier

    model = reuse or work / "medsight"
    if not reuse:
        train_classifier(FILE, model, budget_min=budget, seed=seed, progress=False)
    setup_s = json.loads((model / "model_card.json").read_text())["training"]["setup_s"]
    history = [json.loads(x) for x in (model / "history.jsonl").read_text().splitlines()]
    reached = next((h for h in history if h["val_auc"] >= target), None)
    return {
        "time_to_target_s": None if reached is None else round(setup_s + reached["elapsed_s"], 1),
        "setup_s": setup_s,
        "reached_at": reached,
        "history": [{k: h.get(k) for k in ("epoch", "elapsed_s", "input_size", "val_auc")} for h in history],
        "model": str(model),
    }


def throughput(model_dir: str) -> dict:
    from medsight.infer import Classifier, OnnxClassifier, export_onnx

    export_onnx(model_dir)
    torch_clf, onnx_clf = Classifier.load(model_dir), OnnxClassifier.load(model_dir)
    pre = torch_clf.bundle.plan["preprocess"]
    inputs = (
        np.random.default_rng(0).uniform(0, 255, (1024, pre["channels"], *pre["size"])).astype(np.float32)
    )
    out = {}
    for name, clf in (("torch", torch_clf), ("onnxruntime", onnx_clf)):
        clf.logits(inputs[:64])  # warm-up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            clf.logits(inputs)
            times.append(time.perf_counter() - t)
        out[f"{name}_images_per_s"] = round(len(inputs) / min(times), 1)
    out["ratio_onnx_over_torch"] = round(out["onnxruntime_images_per_s"] / out["torch_images_per_s"], 2)
    out["input_size"] = pre["size"]
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.98)
    parser.add_argument("--budget", type=float, default=10.0, help="MedSight training budget (minutes)")
    parser.add_argument("--reference-cap", type=float, default=30.0, help="stop the reference loop (minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-model",
        type=Path,
        default=None,
        help="a MedSight model trained on this machine by bench_classify_medmnist.py",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="medsight-ref-"))
    ours = medsight_run(args.target, args.budget, args.seed, work, args.reuse_model)
    ref = reference_loop(args.target, args.reference_cap, args.seed)
    ratio = (
        ours["time_to_target_s"] / ref["time_to_target_s"]
        if ours["time_to_target_s"] and ref["time_to_target_s"]
        else None
    )
    out = {
        "benchmark": "classify_time_to_val_auc",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "target_val_auc": args.target,
        "medsight": ours,
        "reference_monai": ref,
        "ratio_medsight_over_reference": None if ratio is None else round(ratio, 3),
        "ratio_target": 0.3,
        "prediction_throughput": throughput(ours["model"]),
        "machine": machine(("torch", "monai", "onnxruntime")),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
