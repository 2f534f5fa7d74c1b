"""`train_segmenter`: data -> checks -> fingerprint -> plan -> cases -> fit -> post-processing -> bundle.

Every case is read, checked (label map on the image's grid, values among the classes) and
put on the plan's grid before training starts, so bad input fails early and names its files.
The test split is never read: the best epoch and the post-processing are chosen on `val`.
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
from medsight.tasks.mirroring import kept_mirror_axes, mirror_axes
from medsight.tasks.overrides import apply_overrides
from medsight.tasks.segment.loss import segmentation_loss
from medsight.tasks.segment.plan import fingerprint, make_plan
from medsight.tasks.segment.postprocess import choose_postprocessing, dice_per_class
from medsight.tasks.segment.preprocess import check_label_map, normalize, to_plan_grid

__all__ = ["train_segmenter"]


def label_names(manifest: Manifest, masks: list) -> list[str]:
    """Names of label values 1, 2, ...: the manifest's, else ``label_1`` ... up to the largest value."""
    if manifest.label_names:
        top = max(manifest.label_names)
        return [manifest.label_names.get(v, f"label_{v}") for v in range(1, top + 1)]
    top = max(int(m.array.max()) for m in masks)
    return ["foreground"] if top == 1 else [f"label_{v}" for v in range(1, top + 1)]


def _read_cases(manifest: Manifest, samples: list) -> tuple[list, list]:
    """Images and label maps; every unreadable or unpaired case is named before training."""
    images, masks, problems = [], [], []
    for s in samples:
        try:
            image, mask = manifest.load_image(s), manifest.load_mask(s)
            if mask is None:
                raise FormatError("no label map")
            images.append(image)
            masks.append(mask)
        except MedsightError as exc:
            problems.append(f"{s.key} ({exc.problem})")
    if problems:
        raise FormatError(
            f"{len(problems)} case(s) cannot be used: {'; '.join(problems[:5])}",
            hint="Fix or remove them (medsight qc lists every problem)",
        )
    return images, masks


def _check_cases(manifest, samples, images, masks, n_classes: int) -> None:
    problems = []
    dims = Counter(im.ndim for im in images)
    if len(dims) > 1:
        raise FormatError(f"the images mix 2D and 3D ({dict(dims)})", hint="Train one model per dimension")
    for s, image, mask in zip(samples, images, masks):
        try:
            check_label_map(mask, image, n_classes, path=manifest.path(s.masks[0]))
        except MedsightError as exc:
            problems.append(f"{s.key}: {exc.problem}")
    if problems:
        raise FormatError(
            f"{len(problems)} label map(s) do not fit: {'; '.join(problems[:5])}",
            hint="Every label map must lie on its image's grid with values among the classes",
        )


def _prepare(images, masks, pre) -> tuple[list, list]:
    arrays, labels = [], []
    for image, mask in zip(images, masks):
        image, mask = to_plan_grid(image, pre, mask)
        arrays.append(normalize(image.array, pre["normalize"]))
        labels.append(mask.array[0].astype(np.uint8))
    return arrays, labels


def predict_cases(
    model, arrays: list, plan: dict, device, *, overlap: float | None = None, mirror_axes=None
) -> list:
    """Label maps of normalised cases on the plan's grid (the plan's sliding window, or another
    `overlap` or `mirror_axes`)."""
    from medsight.tasks.segment.sliding_window import predict_with_plan

    return [
        predict_with_plan(model, a, plan, device=device, overlap=overlap, mirror_axes=mirror_axes)
        for a in arrays
    ]


def _choose_mirroring(model, cases: list, references: list, plan: dict, device, n_classes: int):
    """Validation predictions with and without test-time mirroring; mirroring is kept when it
    raises the mean validation Dice. Returns (predictions kept, mirror axes, Dice without, with)."""
    axes = mirror_axes(plan)
    plain = predict_cases(model, cases, plan, device, mirror_axes=[])
    mirrored = predict_cases(model, cases, plan, device, mirror_axes=axes)

    def mean_dice(predicted):
        scores = np.array([dice_per_class(p, r, n_classes) for p, r in zip(predicted, references)])
        return round(float(np.nanmean(scores)), 4) if np.isfinite(scores).any() else 0.0

    without, with_ = mean_dice(plain), mean_dice(mirrored)
    kept = kept_mirror_axes(axes, without, with_)
    return (mirrored if kept else plain), kept, without, with_


def train_segmenter(
    data: str | Path | Manifest,
    out_dir: str | Path,
    *,
    budget_min: float = 30.0,
    device: str = "cpu",
    seed: int = 0,
    overrides: list[str] = (),
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train a segmentation model and bundle it in `out_dir`; returns the model card."""
    start = time.perf_counter()
    import torch

    from medsight.data.augment import default_augmentation
    from medsight.data.splits import ensure_validation
    from medsight.train.loop import augmenter, fit, load_best, seeded_model, use_device
    from medsight.train.patches import PatchBatches

    out_dir = Path(out_dir)
    manifest = data if isinstance(data, Manifest) else load_dataset(data)
    with_masks = [s for s in manifest if s.masks and s.split != "test"]
    if not with_masks:
        raise FormatError(
            "the dataset has no training samples with label maps",
            hint="Segmentation needs images with masks (see medsight dataset import)",
        )
    manifest, notes = ensure_validation(manifest, seed=seed)
    use_device(device)

    train = [s for s in manifest if s.split == "train" and s.masks]
    val = [s for s in manifest if s.split == "val" and s.masks]
    if not train or not val:
        raise FormatError("need label maps in both the train and val splits", hint="medsight dataset split")
    train_images, train_masks = _read_cases(manifest, train)
    val_images, val_masks = _read_cases(manifest, val)
    classes = label_names(manifest, train_masks + val_masks)
    _check_cases(manifest, train + val, train_images + val_images, train_masks + val_masks, len(classes))
    if not any(m.array.any() for m in train_masks):
        raise FormatError(
            "every training label map is empty (no foreground anywhere)",
            hint="Check the masks: a segmentation model needs labelled structures to learn",
        )

    plan_path = out_dir / "plan.json"
    if resume and plan_path.is_file():
        plan = json.loads(plan_path.read_text())
    else:
        fp = fingerprint(train_images, train_masks, classes=classes, n={"train": len(train), "val": len(val)})
        plan = apply_overrides(
            make_plan(fp, budget_min=budget_min, device=device, seed=seed), list(overrides)
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(plan, plan_path)

    pre = plan["preprocess"]
    x_train, y_train = _prepare(train_images, train_masks, pre)
    x_val, y_val = _prepare(val_images, val_masks, pre)
    picked = np.random.default_rng(seed).permutation(len(x_val))[: plan["validation"]["max_cases"]]
    dev = torch.device(plan["device"])

    def validate(model, resize) -> dict:
        overlap = plan["validation"]["overlap"]
        predicted = predict_cases(model, [x_val[i] for i in picked], plan, dev, overlap=overlap)
        scores = np.array([dice_per_class(p, y_val[i], len(classes)) for p, i in zip(predicted, picked)])
        return {"val_dice": float(np.nanmean(scores)) if np.isfinite(scores).any() else 0.0}

    aug = plan["augmentation"]
    augment = (
        augmenter(
            default_augmentation(
                pre["ndim"], strength=aug["strength"], elastic=aug["elastic"], flip_axes=aug.get("flip_axes")
            ),
            masks=True,
        )
        if aug.get("strength") not in (None, "none")
        else None
    )
    batches = PatchBatches(
        x_train,
        y_train,
        patch=plan["patch_size"],
        batch_size=plan["batch_size"],
        steps_per_epoch=plan["steps_per_epoch"],
        foreground_fraction=plan["sampling"]["foreground_fraction"],
    )
    model = seeded_model(plan)
    setup_s = time.perf_counter() - start
    result = fit(
        model,
        batches=batches,
        loss_fn=segmentation_loss(plan["network"]),
        validate=validate,
        plan=plan,
        out_dir=out_dir,
        augment=augment,
        resume=resume,
        progress=progress,
        spent_s=setup_s,
    )

    load_best(model, out_dir, dev)
    # The same validation cases as during training, at the inference overlap: test-time
    # mirroring, then the post-processing, each kept where it raises validation Dice.
    references = [y_val[i] for i in picked]
    predicted, axes, without, with_ = _choose_mirroring(
        model, [x_val[i] for i in picked], references, plan, dev, len(classes)
    )
    post = choose_postprocessing(predicted, references, len(classes))
    plan = {**plan, "inference": {**plan["inference"], "mirror_axes": axes}, "postprocess": post["plan"]}
    card = {
        "intended_use": f"Research use only: segmentation of {', '.join(classes)}; not a medical device.",
        "task": "segment",
        "data": {
            "name": manifest.name,
            "source": manifest.source,
            "samples": {k or "none": v for k, v in Counter(s.split for s in manifest).items()},
            "class_fraction_train": plan["planning"]["fingerprint"]["class_fraction"],
        },
        "training": result.record(plan, setup_s=setup_s),
        "validation": {
            "cases": len(picked),
            "dice_per_class": dict(zip(classes, post["dice_after"])),
            "dice_before_postprocessing": dict(zip(classes, post["dice_before"])),
            "postprocessing": post["plan"],
            "mirroring": {"axes": axes, "mean_dice_without": without, "mean_dice_with": with_},
            "note": "on the plan's grid; evaluate on the test split for unbiased figures",
        },
        "limitations": [
            "Metrics are on the validation split used for model selection; "
            "evaluate on a held-out test split (medsight evaluate) for unbiased figures.",
            *notes,
        ],
    }
    save_bundle(
        out_dir,
        state_dict=model.state_dict(),
        plan=plan,
        card=card,
        labels=["background", *classes],
        data_hash=manifest.digest(),
    )
    return card
