"""`train_detector`: data -> box checks -> fingerprint -> plan -> inputs -> fit -> bundle.

Every training and validation image is read and its boxes checked (inside the image, not
inverted or empty, known class) before training starts, so bad input fails early and names
its file. Images with an empty box list are true negatives and train as such; a sample with
no ``boxes`` field at all is unannotated and refused. The test split is never read.
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
from medsight.tasks.detect.boxes import check_boxes
from medsight.tasks.detect.plan import box_values, fingerprint, make_plan, relative_boxes
from medsight.tasks.detect.preprocess import as_planar, boxes_to_input, normalize, prepare
from medsight.tasks.mirroring import kept_mirror_axes, mirror_axes
from medsight.tasks.overrides import apply_overrides

__all__ = ["box_classes", "train_detector"]

_FINGERPRINT_IMAGES = 64


def box_classes(manifest: Manifest, samples) -> list[str]:
    """Class names of the boxes of `samples`: in the manifest's declared order where it lists them."""
    found = {b["label"] for s in samples for b in s.boxes or []}
    declared = [c for c in manifest.classes or [] if c in found]
    return declared + sorted(found - set(declared))


def _check_samples(manifest: Manifest) -> tuple[list, list, list[str]]:
    train = [s for s in manifest if s.split == "train"]
    val = [s for s in manifest if s.split == "val"]
    unannotated = [s.key for s in train + val if s.boxes is None]
    if unannotated:
        raise FormatError(
            f"{len(unannotated)} training/validation image(s) have no boxes field, e.g. "
            f"{', '.join(unannotated[:3])}",
            hint="Give images without findings an empty list (boxes: []) so they train as true negatives",
        )
    if not train or not val:
        raise FormatError("need images in both the train and val splits", hint="medsight dataset split")
    classes = box_classes(manifest, train + val)
    undeclared = [c for c in classes if manifest.classes and c not in manifest.classes]
    if undeclared:  # most likely a typo; training it as a class of its own would hide it
        where = next(s.key for s in train + val for b in s.boxes or [] if b["label"] == undeclared[0])
        raise FormatError(
            f"box class {undeclared[0]!r} is not among the declared classes {list(manifest.classes)}",
            path=manifest.path(where),
            hint="Relabel the box, or add the class to the manifest's classes",
        )
    if not any(s.boxes for s in train):
        raise FormatError(
            "no training image has a box", hint="A detector needs annotated findings to learn from"
        )
    return train, val, classes


def _read(manifest: Manifest, samples, classes) -> tuple[list, list, list]:
    """Images, checked boxes and class indices; every unreadable image or bad box is named."""
    images, boxes, labels, problems = [], [], [], []
    index = {c: i for i, c in enumerate(classes)}
    for s in samples:
        try:
            image = as_planar(manifest.load_image(s))
            b, names = check_boxes(s.boxes, image.spatial_shape, classes=classes, path=manifest.path(s.key))
        except MedsightError as exc:
            problems.append(str(exc))
            continue
        images.append(image)
        boxes.append(b)
        labels.append([index[n] for n in names])
    if problems:
        raise FormatError(
            f"{len(problems)} image(s) cannot be used: {'; '.join(problems[:5])}",
            hint="Fix or remove them (medsight qc lists every problem)",
        )
    dims = Counter(im.ndim for im in images)
    if len(dims) > 1:
        raise FormatError(f"the images mix 2D and 3D ({dict(dims)})", hint="Train one model per dimension")
    return images, boxes, labels


def _inputs(images, boxes, pre) -> tuple[np.ndarray, list]:
    arrays, moved = [], []
    for image, b in zip(images, boxes):
        array, scale = prepare(image, pre)
        arrays.append(array)
        moved.append(boxes_to_input(b, scale))
    return np.stack(arrays), moved


def _augmenter(pipeline, ndim: int):
    """`fit`'s ``augment``: images and their boxes moved together; boxes that leave are dropped."""
    from medsight.data.augment import Batch
    from medsight.tasks.detect.detector import decode_targets, encode_targets

    def augment(x, y, generator):
        targets = decode_targets(y)
        batch = Batch(x, boxes=[t["boxes"] for t in targets], labels=[t["labels"] for t in targets])
        out = pipeline(batch, generator=generator)[0]
        packed = encode_targets(
            [b.cpu().numpy() for b in out.boxes],
            [lab.cpu().numpy() for lab in out.labels],
            ndim=ndim,
            rows=y.shape[1],  # boxes only ever leave: the batch keeps its width
        )
        return out.image, packed.to(y.device)

    return augment


def train_detector(
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
    """Train a box detector (MONAI RetinaNet) and bundle it in `out_dir`; returns the model card."""
    start = time.perf_counter()
    import torch

    from medsight.data.augment import default_augmentation
    from medsight.data.splits import ensure_validation
    from medsight.tasks.detect.detector import (
        detect_views,
        detection_loss,
        encode_targets,
        fuse_views,
        inference_precision,
        make_detector,
    )
    from medsight.tasks.detect.metrics import DetectionSet
    from medsight.train.loop import TensorBatches, fit, load_best, seeded_model, use_device
    from medsight.train.patches import BoxPatchBatches

    out_dir = Path(out_dir)
    manifest = data if isinstance(data, Manifest) else load_dataset(data)
    if not any(s.boxes is not None for s in manifest if s.split != "test"):
        raise FormatError(
            "the dataset has no images with boxes",
            hint="Detection needs box annotations (boxes in the manifest)",
        )
    manifest, notes = ensure_validation(manifest, seed=seed)
    train, val, classes = _check_samples(manifest)
    use_device(device)
    train_images, train_boxes, train_labels = _read(manifest, train, classes)
    val_images, val_boxes, val_labels = _read(manifest, val, classes)

    plan_path = out_dir / "plan.json"
    if resume and plan_path.is_file():
        plan = json.loads(plan_path.read_text())
        if plan["classes"] != classes:  # the network's class heads are the plan's
            raise FormatError(
                f"the data's box classes {classes} differ from the classes {plan['classes']} of the "
                "training being resumed",
                path=plan_path,
                hint="Resume with the same data, or train a new model into another folder",
            )
    else:
        picked = np.random.default_rng(0).permutation(len(train_images))[:_FINGERPRINT_IMAGES]
        counts = np.bincount(
            np.concatenate([np.asarray(lab, int) for lab in train_labels]), minlength=len(classes)
        )
        sample = sorted(picked)
        fp = fingerprint(
            [train_images[i] for i in sample],
            [relative_boxes(b, im.spatial_shape) for b, im in zip(train_boxes, train_images)],
            classes=classes,
            box_counts=counts.tolist(),
            n={"train": len(train), "val": len(val)},
            inside=box_values([train_images[i] for i in sample], [train_boxes[i] for i in sample]),
        )
        plan = apply_overrides(
            make_plan(fp, budget_min=budget_min, device=device, seed=seed), list(overrides)
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(plan, plan_path)

    pre = plan["preprocess"]
    ndim = pre["ndim"]
    x_train, b_train = _inputs(train_images, train_boxes, pre)
    x_val, b_val = _inputs(val_images, val_boxes, pre)
    del train_images, val_images
    val_refs = [{"boxes": b, "labels": [classes[k] for k in lab]} for b, lab in zip(b_val, val_labels)]
    dev = torch.device(plan["device"])
    x_val_t = torch.from_numpy(x_val)

    model = seeded_model(plan)
    detector = make_detector(model, plan)
    patch = plan.get("training_patch")  # absent from plans written before patches
    if patch:
        batches = BoxPatchBatches(
            x_train,
            b_train,
            train_labels,
            patch=patch["size"],
            batch_size=plan["batch_size"],
            steps_per_epoch=plan["steps_per_epoch"],
            foreground_fraction=patch["foreground_fraction"],
        )
    else:
        y_train = encode_targets(b_train, train_labels, ndim=ndim)
        batches = TensorBatches(
            torch.from_numpy(x_train), y_train, plan["batch_size"], steps_per_epoch=plan["steps_per_epoch"]
        )
    loss_fn = detection_loss(detector, batches.input_size, cls_weight=plan["loss"]["cls_weight"])

    precision = inference_precision(plan, dev)

    def predict_val(mirror: list[int] = (), batch: int = 16) -> list[list[dict]]:
        """The val images' detections per mirrored view (`detect_views`), unflipped first."""
        views = [[] for _ in range(2 ** len(mirror))]
        for i in range(0, len(x_val_t), batch):
            x = normalize(x_val_t[i : i + batch].to(dev), pre["normalize"])
            for view, found in zip(views, detect_views(detector, x, precision, mirror)):
                view += found
        return views

    hit = plan.get("validation", {}).get("froc_hit", "centre")

    def scored(found: list[dict]) -> dict:
        named = [{**f, "labels": [classes[k] for k in f["labels"]]} for f in found]
        return DetectionSet(named, val_refs, classes=classes, hit=hit).metrics()

    def validate(_model, _resize) -> dict:
        scored_val = scored(predict_val()[0])
        # An undefined figure (no reference box in val) counts as 0 for selection.
        return {f"val_{k}": float(np.nan_to_num(scored_val[k])) for k in ("ap50", "map", "froc_mean")}

    aug = plan["augmentation"]
    augment = (
        _augmenter(default_augmentation(ndim, strength=aug["strength"], elastic=aug["elastic"]), ndim)
        if aug.get("strength") not in (None, "none")
        else None
    )
    setup_s = time.perf_counter() - start
    result = fit(
        model,
        batches=batches,
        loss_fn=loss_fn,
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
    # Test-time mirroring (every flip training used) is kept where it raises the selection
    # metric on validation: on CPU it costs 4x (2D) or 8x (3D) the prediction time.
    key = plan["selection"]["metric"].removeprefix("val_")
    # The unflipped view is the plain prediction: one pass of the mirrored views gives both.
    views = predict_val(mirror_axes(plan))
    plain, mirrored = scored(views[0]), scored(fuse_views(detector, views))
    without, with_ = (round(float(np.nan_to_num(m[key])), 6) for m in (plain, mirrored))
    axes = kept_mirror_axes(mirror_axes(plan), without, with_)
    metrics = mirrored if axes else plain
    plan = {**plan, "inference": {**plan.get("inference", {}), "mirror_axes": axes}}
    card = {
        "intended_use": f"Research use only: detection of {', '.join(classes)} as boxes with scores; "
        "not a medical device.",
        "task": "detect",
        "data": {
            "name": manifest.name,
            "source": manifest.source,
            "samples": {k or "none": v for k, v in Counter(s.split for s in manifest).items()},
            "boxes_train": dict(zip(classes, plan["planning"]["fingerprint"]["box_counts"])),
            "images_without_boxes_train": plan["planning"]["fingerprint"]["boxes"]["images_without_boxes"],
        },
        "training": result.record(plan, setup_s=setup_s),
        "validation": {
            "images": len(val_refs),
            "ap50": _number(metrics["ap50"]),
            "map": _number(metrics["map"]),
            "froc_mean": _number(metrics["froc_mean"]),
            "ap50_per_class": {c: _number(metrics[("ap50", c)]) for c in classes},
            "mirroring": {"axes": axes, f"{key}_without": without, f"{key}_with": with_},
            "note": "on the validation split used for model selection",
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
        labels=classes,
        data_hash=manifest.digest(),
    )
    return card


def _number(value) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None
