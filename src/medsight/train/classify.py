"""`train_classifier`: data -> checks -> fingerprint -> plan -> inputs -> fit -> calibrate -> bundle.

The test split is never read here: selection (best epoch, temperature, threshold) uses
the validation split only. Datasets without splits get a seeded patient-level split.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from medsight.data import Manifest, load_dataset
from medsight.errors import FormatError, MedsightError
from medsight.models.bundle import save_bundle, write_json
from medsight.tasks.classify.metrics import classification_metrics
from medsight.tasks.classify.plan import fingerprint, make_plan
from medsight.tasks.classify.preprocess import normalize, prepare
from medsight.tasks.classify.targets import encode_targets, probabilities
from medsight.tasks.overrides import apply_overrides

__all__ = ["train_classifier"]

_FINGERPRINT_IMAGES = 64


def _check_labels(manifest: Manifest) -> tuple[list[str], bool]:
    """Classes and whether the task is multi-label; clear errors for unusable labels."""
    used = [s for s in manifest if s.split in ("train", "val")]
    if not used:
        raise FormatError("the dataset has no training samples", hint="Check the manifest and its splits")
    unlabelled = [s.key for s in used if not s.labels]
    if unlabelled:
        raise FormatError(
            f"{len(unlabelled)} training/validation sample(s) have no label, e.g. "
            f"{', '.join(unlabelled[:3])}",
            hint="Label them or remove them from the manifest",
        )
    classes = manifest.class_names
    unknown = sorted({label for s in used for label in s.labels} - set(classes))
    if unknown:
        files = [s.key for s in used if set(s.labels) & set(unknown)][:3]
        raise FormatError(
            f"label(s) {unknown} are not among the declared classes {classes}, e.g. in {', '.join(files)}",
            hint="Fix the labels or the manifest's 'classes'",
        )
    present = {label for s in manifest if s.split == "train" for label in s.labels}
    if len(present) < 2:
        raise FormatError(
            f"the training split holds a single class ({', '.join(present) or 'none'})",
            hint="A classifier needs at least two classes in its training data",
        )
    if not any(s.split == "val" for s in manifest):
        raise FormatError("the dataset has no validation split", hint="Split it: medsight dataset split")
    multilabel = any(isinstance(s.label, list) and len(s.labels) != 1 for s in used)
    return classes, multilabel


def _load_inputs(manifest: Manifest, samples, pre: dict) -> np.ndarray:
    """All inputs at the plan's size; every unreadable or unfit file is named before training."""
    arrays, problems = [], []
    for s in samples:
        try:
            arrays.append(prepare(manifest.load_image(s), pre))
        except MedsightError as exc:
            problems.append(f"{s.key} ({exc.problem})")
    if problems:
        raise FormatError(
            f"{len(problems)} image(s) cannot be used: {'; '.join(problems[:5])}",
            hint="Fix or remove them (medsight qc lists every problem)",
        )
    return np.stack(arrays)


def _fingerprint(manifest: Manifest, classes, multilabel) -> dict:
    train = [s for s in manifest if s.split == "train"]
    rng = np.random.default_rng(0)
    picked = [
        train[i] for i in sorted(rng.choice(len(train), min(len(train), _FINGERPRINT_IMAGES), replace=False))
    ]
    images = []
    for s in picked:
        try:
            images.append(manifest.load_image(s))
        except MedsightError:
            continue  # reported with the file names when the inputs are loaded
    if not images:
        raise FormatError(
            "none of the sampled training images can be read", hint="Run medsight qc on the data"
        )
    dims = Counter(im.ndim for im in images)
    if len(dims) > 1:
        raise FormatError(
            f"the training images mix 2D and 3D ({dict(dims)})", hint="Train one model per dimension"
        )
    y = encode_targets(train, classes, multilabel)
    counts = (y.sum(0) if multilabel else np.bincount(y, minlength=len(classes))).astype(int).tolist()
    n = {split: sum(s.split == split for s in manifest) for split in ("train", "val")}
    return fingerprint(images, classes=classes, class_counts=counts, n=n, multilabel=multilabel)


def train_classifier(
    data: str | Path | Manifest,
    out_dir: str | Path,
    *,
    budget_min: float = 10.0,
    device: str = "cpu",
    seed: int = 0,
    overrides: list[str] = (),
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train, calibrate and bundle a classifier; returns the validation summary.

    `out_dir` becomes a model bundle (see `medsight.models.bundle`) plus ``history.jsonl``
    and the checkpoint a ``resume=True`` run continues from.
    """
    start = time.perf_counter()
    import torch

    from medsight.data.splits import ensure_validation
    from medsight.train.calibrate import fit_temperature
    from medsight.train.loop import TensorBatches, augmenter, fit, load_best, seeded_model, use_device

    out_dir = Path(out_dir)
    manifest = data if isinstance(data, Manifest) else load_dataset(data)
    manifest, notes = ensure_validation(manifest, seed=seed)
    classes, multilabel = _check_labels(manifest)
    use_device(device)

    plan_path = out_dir / "plan.json"
    if resume and plan_path.is_file():
        plan = json.loads(plan_path.read_text())
    else:
        fp = _fingerprint(manifest, classes, multilabel)
        plan = apply_overrides(
            make_plan(fp, budget_min=budget_min, device=device, seed=seed), list(overrides)
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(plan, plan_path)

    train = [s for s in manifest if s.split == "train"]
    val = [s for s in manifest if s.split == "val"]
    pre = plan["preprocess"]
    x_train = torch.from_numpy(_load_inputs(manifest, train, pre))
    x_val = torch.from_numpy(_load_inputs(manifest, val, pre))
    y_train = torch.from_numpy(encode_targets(train, classes, multilabel))
    y_val = encode_targets(val, classes, multilabel)

    dev = torch.device(plan["device"])
    weights = torch.tensor(plan["loss"]["class_weights"], dtype=torch.float32, device=dev)
    if multilabel:
        criterion = torch.nn.BCEWithLogitsLoss(pos_weight=weights)
    else:
        criterion = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=plan["loss"]["label_smoothing"])

    def val_logits(model, resize=None) -> np.ndarray:
        out = []
        for i in range(0, len(x_val), 256):
            x = normalize(x_val[i : i + 256].to(dev), pre["normalize"])
            out.append(model(resize(x) if resize else x).float().cpu())
        return torch.cat(out).numpy()

    def validate(model, resize) -> dict:
        logits = val_logits(model, resize)
        probs = probabilities(logits, multilabel)
        loss = float(criterion(torch.from_numpy(logits).to(dev), torch.from_numpy(y_val).to(dev)))
        metrics = classification_metrics(y_val, probs, multilabel=multilabel)
        return {"val_loss": loss, "val_auc": metrics["auc"], "val_accuracy": metrics["accuracy"]}

    from medsight.data.augment import default_augmentation

    aug = plan["augmentation"]
    augment = (
        augmenter(
            default_augmentation(pre["ndim"], strength=aug["strength"], elastic=aug["elastic"]), masks=False
        )
        if aug.get("strength") not in (None, "none")
        else None
    )
    model = seeded_model(plan)
    setup_s = time.perf_counter() - start
    result = fit(
        model,
        batches=TensorBatches(x_train, y_train, plan["batch_size"]),
        loss_fn=criterion,
        validate=validate,
        plan=plan,
        out_dir=out_dir,
        prepare_batch=lambda x: normalize(x, pre["normalize"]),
        augment=augment,
        resume=resume,
        progress=progress,
        spent_s=setup_s,
    )

    load_best(model, out_dir, dev)
    with torch.no_grad():
        logits = val_logits(model)
    temperature = fit_temperature(logits, y_val, multilabel=multilabel)
    probs = probabilities(logits / temperature, multilabel)
    threshold = _youden_threshold(y_val, probs[:, 1]) if probs.shape[1] == 2 and not multilabel else 0.5
    val_metrics = classification_metrics(y_val, probs, multilabel=multilabel, threshold=threshold)
    uncalibrated = classification_metrics(
        y_val, probabilities(logits, multilabel), multilabel=multilabel, threshold=threshold
    )
    plan = {**plan, "calibration": {"temperature": temperature, "threshold": threshold}}
    card = _model_card(manifest, plan, result.record(plan, setup_s=setup_s), val_metrics, uncalibrated, notes)
    save_bundle(
        out_dir,
        state_dict=model.state_dict(),
        plan=plan,
        card=card,
        labels=classes,
        data_hash=manifest.digest(),
    )
    return card


def _youden_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The validation threshold maximising sensitivity + specificity (robust to prevalence shift)."""
    from sklearn.metrics import roc_curve

    if len(np.unique(y)) < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(y, p)
    best = int(np.argmax(tpr - fpr))
    # Midway to the next lower score: the threshold itself sits on a validation case's score,
    # the very edge of the class, which on separable data misclassifies unseen cases.
    below = thresholds[best + 1] if best + 1 < len(thresholds) else thresholds[best]
    return float(np.clip((thresholds[best] + below) / 2, 1e-6, 1 - 1e-6))


def _model_card(manifest, plan, training: dict, val_metrics, uncalibrated, notes) -> dict:
    counts = Counter(s.split for s in manifest)
    return {
        "intended_use": "Research use only: image classification of "
        f"{', '.join(plan['classes'])}; not a medical device.",
        "task": "classify",
        "data": {
            "name": manifest.name,
            "source": manifest.source,
            "samples": {k or "none": v for k, v in counts.items()},
            "class_counts_train": plan["planning"]["fingerprint"]["class_counts"],
        },
        "training": training,
        "validation": {
            "calibrated": val_metrics,
            "before_calibration": {"ece": uncalibrated.get("ece")},
            "temperature": plan["calibration"]["temperature"],
            "threshold": plan["calibration"]["threshold"],
        },
        "limitations": [
            "Metrics are on the validation split used for model selection; "
            "evaluate on a held-out test split (medsight evaluate) for unbiased figures.",
            *notes,
        ],
    }
