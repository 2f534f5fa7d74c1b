"""Segmentation planning, after nnU-Net: a fingerprint of the data, then rules that write ``plan.json``.

Fingerprint: spacings and sizes of the training cases, intensity statistics of the
foreground (voxels inside any label), the share of voxels of each class. Rules:

- target spacing: the median spacing; when one axis is over 3x coarser than the finest,
  its 10th percentile instead (nnU-Net's rule, so thin-slice cases are not blurred away);
- normalisation: CT clipped to the foreground 0.5-99.5 percentiles, then z-scored with the
  foreground mean and SD; other modalities z-scored per image;
- network: MONAI's DynUNet with nnU-Net's topology rule: an axis is downsampled while its
  spacing is within 2x of the finest and its feature map is at least 8 voxels; 3x3(x3)
  kernels, 1 on an axis over 2x coarser; 5 levels at most;
- patch: the median case size at the target spacing, capped, divisible by the downsampling;
  candidates are timed on the device from the smallest up, and the largest patch (then the
  widest network) that still allows `MIN_STEPS` training steps within the budget is chosen;
- low resolution (2D): when the patch the budget allows covers under a quarter of the median
  image, a window sees a fraction of a large structure and its context (a polyp, a breast
  lesion). The spacing is then coarsened until the patch covers the median image, but only as
  far as the structures survive it: the fingerprint's `resampling_dice` is the Dice of the
  training label maps taken down by a factor and back up (10th percentile over cases, worst
  class), and a factor is allowed while it stays >= `RESAMPLING_DICE_MIN`. Thin structures
  (retinal vessels) allow none and stay at full resolution. nnU-Net does this for 3D with a
  cascade; here it is 2D only, where no second stage is needed to see the whole image.
"""

from __future__ import annotations

import re

import numpy as np

from medsight.tasks.modality import modality_of
from medsight.tasks.segment.loss import deep_supervision_heads, segmentation_loss
from medsight.tasks.timing import FORWARDS_PER_TRAINING, VALIDATION_SHARE

__all__ = ["fingerprint", "flip_axes", "make_plan", "topology"]

# Fewer steps than this: a smaller patch or network is a better use of the time. Kvasir-SEG in
# 30 min: 256 x 224 patches for 1,850 steps scored test Dice 0.67, 192 x 160 for 3,650 steps 0.78.
MIN_STEPS = 2500
MAX_EPOCHS = 500
PATCH_CAP = {2: 512 * 512, 3: 128**3}  # voxels
MAX_LEVELS = 6  # the input level plus five downsamplings
MIN_PATCH = 16  # voxels per axis: DynUNet needs two downsamplings at least
FOREGROUND_SAMPLES = 10_000  # intensity samples per case
COARSEN_FACTORS = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
RESAMPLING_DICE_MIN = 0.97  # label maps taken down and back up must keep this Dice to allow a factor
RESAMPLING_CASES = 40  # label maps sampled for `resampling_dice`
MIN_COVERAGE = 0.25  # patch / median image below which a 2D plan coarsens its spacing
# Per-epoch validation: as many cases as keep it near `timing.VALIDATION_SHARE` of an epoch
# (where the best epoch, mirroring and post-processing are chosen: 16 Kvasir images scored
# 0.88 for a model that scored 0.78 on the test split).
VALIDATION_OVERLAP = 0.25  # windows overlap less than at inference (cheaper)
MIN_VALIDATION_CASES = {2: 16, 3: 4}
# A class of one side: "hippocampus_left", "Right lung", "kidney_l", "L5" is not (no separator).
# Training arithmetic: bfloat16 autocast where the CPU computes it natively (1.7-1.9x the steps;
# accuracy measured in docs/benchmarks.md), float16 on CUDA, float32 elsewhere.
PRECISION = "auto"
LATERAL = re.compile(r"(?:^|[^a-z0-9])(?:left|right|l|r|lt|rt)(?:[^a-z0-9]|$)", re.IGNORECASE)


def fingerprint(images: list, labels: list, *, classes: list[str], n: dict[str, int]) -> dict:
    """Summary of training `images` and their label maps `labels` (`Image` lists, same order).

    `classes` names label values 1, 2, ... (0 is background).
    """
    rng = np.random.default_rng(0)
    spacings = np.array([im.spacing for im in images], float)
    shapes = np.array([im.spatial_shape for im in images], float)
    foreground, counts = [], np.zeros(len(classes) + 1)
    for im, lab in zip(images, labels):
        values = lab.array[0]
        counts += np.bincount(values.ravel().astype(np.int64), minlength=len(counts))[: len(counts)]
        inside = im.array[0][values > 0]
        if inside.size:
            foreground.append(rng.choice(inside, min(inside.size, FOREGROUND_SAMPLES), replace=False))
    fg = np.concatenate(foreground).astype(np.float64) if foreground else np.zeros(1)
    modality = modality_of(images, min(float(im.array.min()) for im in images))
    return {
        "n": n,
        "classes": classes,
        "ndim": images[0].ndim,
        "channels": images[0].num_channels,
        "modality": modality,
        "spacings": spacings.round(4).tolist(),
        "sizes": shapes.astype(int).tolist(),
        "median_spacing": np.median(spacings, axis=0).round(4).tolist(),
        "median_size": np.median(shapes, axis=0).astype(int).tolist(),
        "foreground_intensity": {
            "mean": float(fg.mean()),
            "std": float(fg.std()),
            "p0_5": float(np.percentile(fg, 0.5)),
            "p99_5": float(np.percentile(fg, 99.5)),
        },
        "class_fraction": (counts / max(counts.sum(), 1)).round(6).tolist(),
        "resampling_dice": resampling_dice(labels, len(classes)) if images[0].ndim == 2 else {},
    }


def resampling_dice(labels: list, n_classes: int) -> dict[str, float]:
    """For each factor in `COARSEN_FACTORS`: the Dice kept by a label map taken down by the factor
    and back up (linear, per class), 10th percentile over cases, worst class.

    Measures how coarse a grid the structures survive: a 2-pixel vessel is lost at 2x, a polyp
    hundreds of pixels across barely notices 6x.
    """
    from scipy import ndimage

    maps = [lab.array[0] for lab in labels if lab.array[0].any()]
    step = max(1, len(maps) // RESAMPLING_CASES)
    kept: dict[str, float] = {}
    for factor in COARSEN_FACTORS:
        worst = []
        for values in maps[::step][:RESAMPLING_CASES]:
            dices = []
            for c in range(1, n_classes + 1):
                mask = values == c
                if not mask.any():
                    continue
                small = ndimage.zoom(mask.astype(np.float32), 1 / factor, order=1)
                back = ndimage.zoom(small, np.divide(mask.shape, small.shape), order=1)[
                    tuple(slice(0, n) for n in mask.shape)
                ]
                back = back > 0.5
                dices.append(
                    2 * np.count_nonzero(back & mask) / (np.count_nonzero(back) + np.count_nonzero(mask))
                )
            worst.append(min(dices))
        kept[str(factor)] = round(float(np.percentile(worst, 10)), 4) if worst else 0.0
    return kept


def coarsening(fp: dict, patch: list[int], spacing: list[float]) -> float:
    """Factor by which a 2D plan coarsens `spacing` so that `patch` covers the median image (1: none)."""
    size = np.array(fp["median_size"], float) * np.array(fp["median_spacing"]) / np.array(spacing)
    coverage = np.prod(patch) / np.prod(size)
    if fp["ndim"] != 2 or coverage >= MIN_COVERAGE:
        return 1.0
    allowed = [float(f) for f, dice in fp.get("resampling_dice", {}).items() if dice >= RESAMPLING_DICE_MIN]
    return round(min(float(coverage ** (-1 / 2)), max(allowed, default=1.0)), 3)


def target_spacing(fp: dict) -> list[float]:
    """Median spacing; an axis over 3x coarser than the finest gets its 10th percentile."""
    spacing = np.array(fp["median_spacing"], float)
    if len(spacing) == 3 and spacing.max() / spacing.min() > 3:
        axis = int(spacing.argmax())
        spacing[axis] = np.percentile(np.array(fp["spacings"])[:, axis], 10)
    return [round(float(s), 4) for s in spacing]


def topology(patch: list[int], spacing: list[float]) -> tuple[list[list[int]], list[list[int]]]:
    """nnU-Net's kernels and strides for a patch (voxels) at a spacing (mm); first stride 1."""
    sizes, spacing = list(patch), list(spacing)
    kernels, strides = [], [[1] * len(sizes)]
    while len(strides) < MAX_LEVELS:
        ratio = [s / min(spacing) for s in spacing]
        stride = [2 if r <= 2 and size >= 8 else 1 for r, size in zip(ratio, sizes)]
        if all(s == 1 for s in stride):
            break
        kernels.append([3 if r <= 2 else 1 for r in ratio])
        strides.append(stride)
        sizes = [size // s for size, s in zip(sizes, stride)]
        spacing = [sp * s for sp, s in zip(spacing, stride)]
    kernels.append([3] * len(sizes))
    return kernels, strides


def _fit_patch(size: list[int], spacing: list[float], cap: int) -> list[int]:
    """Shrink `size` to at most `cap` voxels (the axis longest in mm first, keeping the field of
    view as isotropic as it can; `MIN_PATCH` voxels at least), then make each axis divisible
    by its total downsampling."""
    size = [max(MIN_PATCH, int(s)) for s in size]
    while np.prod(size) > cap:
        shrinkable = [a for a in range(len(size)) if size[a] > MIN_PATCH]
        if not shrinkable:
            break
        axis = max(shrinkable, key=lambda a: size[a] * spacing[a])
        size[axis] = max(MIN_PATCH, int(size[axis] * 0.9))
    for _ in range(8):
        _, strides = topology(size, spacing)
        factor = np.prod(np.array(strides), axis=0)
        fitted = [max(int(f), int(round(s / f)) * int(f)) for s, f in zip(size, factor)]
        if fitted == size:
            break
        size = fitted
    return size


def _network(fp: dict, patch: list[int], spacing: list[float], base: int) -> dict:
    kernels, strides = topology(patch, spacing)
    return {
        "name": "dynunet",
        "spatial_dims": fp["ndim"],
        "in_channels": fp["channels"],
        "num_classes": len(fp["classes"]) + 1,
        "kernels": kernels,
        "strides": strides,
        "filters": [min(base * 2**i, base * 10) for i in range(len(strides))],
        "deep_supervision": deep_supervision_heads(strides),
    }


def _seconds_per_step(network: dict, patch: list[int], batch: int, device: str, limit: float) -> float:
    """Measured time of one training step (forward, Dice + CE, backward, update)."""
    import torch

    from medsight.tasks.timing import seconds_per_step

    x = torch.randn(batch, network["in_channels"], *patch, device=device)
    y = torch.randint(0, network["num_classes"], (batch, 1, *patch), device=device)
    loss_fn = segmentation_loss(network)
    return seconds_per_step(network, x, y, loss_fn, device=device, limit=limit, precision=PRECISION)


def flip_axes(classes: list[str], ndim: int) -> list[int] | None:
    """Axes augmentation may mirror: all (None), or all but the left-right one (axis 0: R in 3D
    RAS, the image's width in 2D) when a class belongs to one side. A mirrored left
    hippocampus looks like a right one, so flipping that axis teaches the two to be confused;
    TotalSegmentator turns mirroring off for the same reason."""
    if not any(LATERAL.search(name) for name in classes):
        return None
    return list(range(1, ndim))


def _choose(fp: dict, spacing: list[float], budget_s: float, batch: int, device: str, measure: bool):
    """The costliest (patch, base filters) candidate that allows `MIN_STEPS` steps in `budget_s`
    at `spacing`: (option, steps in the budget, timings)."""
    scale = np.array(fp["median_spacing"]) / np.array(spacing)
    median_size = [int(round(s * f)) for s, f in zip(fp["median_size"], scale)]
    full = _fit_patch(median_size, spacing, PATCH_CAP[fp["ndim"]])
    options = []
    for shrink in (1.0, 0.5, 0.25, 0.125):
        patch = _fit_patch(full, spacing, max(MIN_PATCH ** fp["ndim"], int(np.prod(full) * shrink)))
        for base in (32, 16):
            if not any(o["patch"] == patch and o["base"] == base for o in options):
                options.append({"patch": patch, "base": base})
    # The field of view comes first (nnU-Net's priority), the width second. Patches are timed
    # from the smallest up, each with the narrow network, then the wide one; a patch whose
    # narrow network misses the step target ends the search (larger ones would miss it too).
    options.sort(key=lambda o: (np.prod(o["patch"]), o["base"]))
    limit = budget_s / MIN_STEPS
    chosen, steps, timings = options[0], budget_s / 0.01, []
    for option in options if measure else []:
        network = _network(fp, option["patch"], spacing, option["base"])
        sec = _seconds_per_step(network, option["patch"], batch, device, limit=limit)
        timings.append({**option, "s_per_step": round(sec, 4), "steps_in_budget": int(budget_s / sec)})
        if sec <= limit or len(timings) == 1:  # the smallest is taken even when it misses
            chosen, steps = option, budget_s / sec
        elif option["base"] == min(o["base"] for o in options):
            break
    return chosen, steps, timings


def validation_cases(
    fp: dict, spacing: list[float], patch: list[int], batch: int, steps_per_epoch: int
) -> int:
    """Cases validated each epoch: their windows' forward passes cost `VALIDATION_SHARE` of the
    epoch's training."""
    size = np.array(fp["median_size"]) * np.array(fp["median_spacing"]) / np.array(spacing)
    stride = np.array(patch) * (1 - VALIDATION_OVERLAP)
    windows = np.prod(np.maximum(np.ceil((size - np.array(patch)) / stride), 0) + 1)
    cases = int(VALIDATION_SHARE * FORWARDS_PER_TRAINING * steps_per_epoch * batch / windows)
    return min(max(cases, MIN_VALIDATION_CASES[fp["ndim"]]), max(fp["n"]["val"], 1))


def make_plan(
    fp: dict, *, budget_min: float, device: str = "cpu", seed: int = 0, measure: bool = True
) -> dict:
    """Plan a training from fingerprint `fp` that fits `budget_min` minutes on `device`."""
    ndim = fp["ndim"]
    spacing = target_spacing(fp)
    batch = 8 if ndim == 2 else 2
    steps_per_epoch = 50 if ndim == 2 else 25
    budget_s = budget_min * 60 * 0.8  # validation, post-processing choice and saving
    chosen, steps, timings = _choose(fp, spacing, budget_s, batch, device, measure)
    factor = coarsening(fp, chosen["patch"], spacing)
    if factor > 1:
        spacing = [round(s * factor, 4) for s in spacing]
        chosen, steps, more = _choose(fp, spacing, budget_s, batch, device, measure)
        timings += [{**t, "coarsened": factor} for t in more]
    epochs = int(np.clip(steps / steps_per_epoch, 1, MAX_EPOCHS))
    intensity = fp["foreground_intensity"]
    if fp["modality"] == "CT":
        normalize = {
            "kind": "ct",
            "clip": [intensity["p0_5"], intensity["p99_5"]],
            "mean": intensity["mean"],
            "std": max(intensity["std"], 1e-6),
        }
    else:
        normalize = {"kind": "zscore_image"}
    return {
        "task": "segment",
        "version": 1,
        "seed": seed,
        "device": device,
        "classes": fp["classes"],
        "preprocess": {
            "ndim": ndim,
            "channels": fp["channels"],
            "spacing": spacing,
            "normalize": normalize,
        },
        "patch_size": chosen["patch"],
        "network": _network(fp, chosen["patch"], spacing, chosen["base"]),
        "batch_size": batch,
        "steps_per_epoch": steps_per_epoch,
        "epochs": epochs,
        "time_budget_min": budget_min,
        "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 3e-5},
        "schedule": {"name": "onecycle", "warmup_fraction": 0.05},
        "sampling": {"foreground_fraction": 0.33},
        "augmentation": {"strength": "medium", "elastic": False, "flip_axes": flip_axes(fp["classes"], ndim)},
        "loss": {"name": "dice_ce"},
        "precision": PRECISION,
        # precision "auto": bfloat16 where the CPU computes it natively (models.precision.auto_precision)
        # 3D: one window per call (faster per window on CPU than two, and half the activations)
        # Test-time mirroring: off unless it raises validation Dice at the end of training
        # (`train.segment`): on CPU it costs 4x (2D) to 8x (3D) the prediction time.
        "inference": {
            "overlap": 0.5,
            "mirror_axes": [],
            "batch_size": 4 if ndim == 2 else 1,
            "precision": "auto",
        },
        "validation": {
            "max_cases": validation_cases(fp, spacing, chosen["patch"], batch, steps_per_epoch),
            "overlap": VALIDATION_OVERLAP,
        },
        # Choosing the post-processing predicts those cases once more at the inference overlap.
        "final_validations": 3,
        "selection": {"metric": "val_dice"},
        "planning": {
            "candidates_timed": timings,
            "coarsened": factor,
            "epochs_estimated": epochs,
            "fingerprint": fp,
        },
    }
