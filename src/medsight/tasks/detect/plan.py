"""Detection planning: a fingerprint of images and boxes, then rules that write ``plan.json``.

Fingerprint: the classification fingerprint of a sample of training images (size, spacing,
modality, intensities), plus the training boxes: their sizes relative to their image's
longest side, boxes per image, and images without any (true negatives).

Rules (sizes in voxels of the planned input, whose longest side is ``S``):

- input: every image scaled by one factor (aspect kept) to fit a box whose longest side is
  ``S`` (2D: at most 512, 3D: 128) and whose other sides follow the median image's aspect,
  padded to it (letterboxing); ``S`` from the median longest side down to half of it, never
  up-sampled, and never so small that the 10th-percentile box (geometric mean side) falls
  under `MIN_BOX` voxels;
- first feature level: stride 2, 4 or 8, the largest not above half that small box, so small
  findings still get several anchor positions; levels double until their anchors reach the
  95th-percentile box, and the backbone runs to stage `MIN_STAGES` at least so the fine
  levels get deep context (3 to 5 levels, the last one MONAI's max-pooled extra level);
- anchors (MONAI's ``AnchorGeneratorWithAnchorShape``): three shapes on the first level, of
  geometric sides ``a, a 2^(1/3), a 2^(2/3)`` with ``a`` the 10th-percentile box, each with the
  median box's aspect; every level doubles them. With ATSS matching one shape per position
  would do; three octave steps keep the IoU of small boxes with their anchors high;
- network and input size: candidates timed for one training step on the device, the most
  capable network first, each from the largest input size down; the first that allows
  `MIN_STEPS` training steps within the budget is chosen (Kvasir's polyps in 30 min: ResNet-10
  at 512 px test AP50 0.65, ResNet-18 at 256 px 0.74; docs/benchmarks.md). Steps, not epochs:
  a larger cohort has longer epochs, not a need for a weaker network;
- epoch length: at least one pass over the training images, and long enough that validating
  every val image (a forward pass of the whole input) stays near `timing.VALIDATION_SHARE`
  of the epoch, but short enough for `MIN_VALIDATIONS` validations within the budget (model
  selection needs a curve, not three points);
- training patch: when the 95th-percentile box's longest side is at most `PATCH_BOX_SHARE`
  of the input's shortest side, training runs on patches of half the input's side (a quarter
  of its pixels, an eighth of its voxels), half of each batch holding a whole box
  (nnDetection's sampling; `train.patches.BoxPatchBatches`), and prediction on the whole input
  as before: small findings on large films get several times the steps per minute;
- matching: ATSS (4 candidates per level, centres not forced inside the box: small findings);
  hard-negative sampling of 64 anchors per image, 30% positives (MONAI's LUNA16 settings);
- selection: ``val_ap50`` in 2D; in 3D ``val_froc_mean`` (nodule detection's figure);
- test-time mirroring (every flip training used, views fused by weighted box fusion): chosen
  after training, kept where it raises the selection metric on validation.
"""

from __future__ import annotations

import math

import numpy as np

from medsight.models.retinanet import size_divisible
from medsight.tasks.timing import FORWARDS_PER_TRAINING, VALIDATION_SHARE

__all__ = ["box_values", "fingerprint", "make_plan"]

MIN_BOX = 6.0  # voxels: the 10th-percentile box must keep at least this size at the planned input
MAX_SIZE = {2: 512, 3: 128}
# What 30 epochs of the chest phantom's 504 films asked; its validation FROC still rose there.
MIN_STEPS = 900
MAX_EPOCHS = 300
MIN_STEPS_PER_EPOCH = 20  # small datasets: epochs of fresh shuffles, so validation stays a small share
# Validation scores every val film each epoch: it was two thirds of a 31-step chest epoch (108
# films), hence epochs stretched to keep it near `timing.VALIDATION_SHARE`.
MIN_VALIDATIONS = 20
MAX_LEVELS = 5
MIN_STAGES = 3  # the backbone's last stage is at least this deep, whatever the box sizes need
PATCH_BOX_SHARE = 1 / 8  # findings this small (p95 longest side / input side) train on half-side patches
PATCH_FOREGROUND = 0.5  # share of a patch batch that holds a whole box (nnDetection's)
_QUANTILES = (5, 10, 25, 50, 75, 90, 95)


def fingerprint(
    images: list, boxes: list[np.ndarray], *, classes: list[str], box_counts, n: dict, inside=None
) -> dict:
    """Summary of training `images` (a sample is enough) and the boxes of every training image.

    Parameters
    ----------
    inside : ndarray, optional
        Intensities inside the boxes of the sampled images (`box_values`): a CT plan clips to
        their 0.5-99.5 percentiles, as nnU-Net clips to the foreground's.
    boxes : list of ndarray
        Per training image, its boxes' side lengths ``(N_i, ndim)`` relative to the image's
        longest side (`relative_boxes`); an image without boxes gives ``(0, ndim)``.
    box_counts : sequence of int
        Training boxes per class, in `classes` order.
    """
    from medsight.tasks.classify.plan import fingerprint as image_fingerprint

    fp = image_fingerprint(images, classes=classes, class_counts=list(box_counts), n=n, multilabel=False)
    fp.pop("multilabel")
    fp["box_counts"] = fp.pop("class_counts")
    ndim = fp["ndim"]
    found = [b for b in boxes if len(b)]
    sizes = np.concatenate(found) if found else np.zeros((0, ndim))
    per_image = np.array([len(b) for b in boxes])
    summary = {
        "n": int(len(sizes)),
        "per_image_mean": round(float(per_image.mean()), 3) if len(per_image) else 0.0,
        "per_image_max": int(per_image.max()) if len(per_image) else 0,
        "images_without_boxes": int((per_image == 0).sum()),
        # Box sides as fractions of their image's longest side (what letterboxing scales by).
        "relative_size_quantiles": {str(q): None for q in _QUANTILES},
        "relative_max_side_p95": None,
        "median_shape": [1.0] * ndim,
    }
    if len(sizes):
        geometric = np.exp(np.log(np.maximum(sizes, 1e-6)).mean(axis=1))
        summary["relative_size_quantiles"] = {
            str(q): round(float(np.percentile(geometric, q)), 6) for q in _QUANTILES
        }
        summary["relative_max_side_p95"] = round(float(np.percentile(sizes.max(axis=1), 95)), 6)
        shape = np.median(sizes / geometric[:, None], axis=0)
        summary["median_shape"] = [round(float(v), 4) for v in shape]
    fp["boxes"] = summary
    fp["box_intensity"] = None
    if inside is not None and len(inside):
        fp["box_intensity"] = {
            "p0_5": float(np.percentile(inside, 0.5)),
            "p99_5": float(np.percentile(inside, 99.5)),
        }
    return fp


def box_values(images: list, boxes: list[np.ndarray], limit: int = 20_000) -> np.ndarray:
    """Intensities (first channel) inside the voxel `boxes` of each image, at most `limit` in all."""
    rng = np.random.default_rng(0)
    values = []
    for image, image_boxes in zip(images, boxes):
        d = image.ndim
        for box in np.asarray(image_boxes, float).reshape(-1, 2 * d):
            window = tuple(slice(int(np.floor(box[a])), int(np.ceil(box[a + d]))) for a in range(d))
            values.append(image.array[0][window].ravel())
    values = np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32)
    return rng.choice(values, limit, replace=False) if len(values) > limit else values


def relative_boxes(boxes: np.ndarray, spatial_shape) -> np.ndarray:
    """Box side lengths ``(N, ndim)`` as fractions of the image's longest side."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 2 * len(spatial_shape))
    d = len(spatial_shape)
    return (boxes[:, d:] - boxes[:, :d]) / max(spatial_shape)


def _sizes(fp: dict) -> list[int]:
    """Input sizes to try, largest first: native (capped) down to half, not below the box limit."""
    ndim = fp["ndim"]
    native = min(int(max(fp["size"])), MAX_SIZE[ndim])
    small = fp["boxes"]["relative_size_quantiles"]["10"] or 0.05
    floor = min(native, MIN_BOX / small)
    step = 32 if ndim == 2 else 16
    out = []
    for f in (1.0, 0.75, 0.5):
        s = max(step, int(round(native * f / step)) * step)
        if (s >= floor or not out) and s not in out:
            out.append(s)
    return out


def _levels(fp: dict, size: int) -> tuple[list[int], list[list[float]], dict]:
    """Feature-map scales, base anchor shapes and the backbone's stride settings at input `size`."""
    q = fp["boxes"]["relative_size_quantiles"]
    small = (q["10"] or 0.05) * size
    large = (fp["boxes"]["relative_max_side_p95"] or 0.3) * size
    first = int(np.clip(2 ** math.floor(math.log2(max(small / 2, 1))), 2, 8))
    top_of_first = small * 2 ** (2 / 3)
    levels = int(np.clip(math.ceil(math.log2(max(large / top_of_first, 1))) + 1, 2, MAX_LEVELS))
    start = {2: 1, 4: 1, 8: 2}[first]
    # The backbone runs to stage MIN_STAGES at least, though small findings need anchors on the
    # finest level only: the FPN's top-down path brings that depth's context there (a rib is a
    # long stripe, a nodule a round spot); with stage 1 alone the detector was one residual
    # block deep and learnt nothing on the chest phantom.
    last = min(4, max(start + levels - 2, MIN_STAGES))
    # ... but the coarsest level (the pooled one after `last`) keeps four voxels across the
    # input's shortest side: on fewer, the values of a head's GroupNorm group agree to bfloat16
    # precision, their variance rounds to zero and the first backward pass overflowed (a 32^3
    # test volume with a 2-voxel level: head gradients of 1e33, then NaN).
    shortest = size * min(fp["size"]) / max(fp["size"])
    while last > start and first * 2 ** (last - start + 1) > shortest / 4:
        last -= 1
    returned = list(range(start, last + 1))
    levels = len(returned) + 1
    shape = np.asarray(fp["boxes"]["median_shape"], float)
    shape = shape / np.exp(np.log(shape).mean())
    base = [[round(float(small * 2 ** (k / 3) * s), 2) for s in shape] for k in range(3)]
    backbone = {"stem_stride": 2, "max_pool": first >= 4, "returned_layers": returned}
    return [2**level for level in range(levels)], base, backbone


def _network(fp: dict, option: dict, backbone: dict, n_anchors: int) -> dict:
    return {
        "name": "retinanet",
        "spatial_dims": fp["ndim"],
        "in_channels": fp["channels"],
        "num_classes": len(fp["classes"]),
        "num_anchors": n_anchors,
        "depth": option["depth"],
        "width": option["width"],
        "fpn_channels": option["fpn"],
        **backbone,
    }


def _seconds_per_step(plan: dict, batch: int, device: str, limit: float) -> float:
    """One measured training step (forward, detection loss, backward, update) on random boxes."""
    import torch

    from medsight.models import build_model
    from medsight.tasks.detect.detector import detection_loss, encode_targets, make_detector
    from medsight.tasks.timing import seconds_per_step

    size = (plan["training_patch"] or {}).get("size") or plan["preprocess"]["size"]
    ndim = len(size)
    rng = np.random.default_rng(0)
    boxes, labels = [], []
    for _ in range(batch):
        lo = rng.uniform(0, 0.7, (2, ndim)) * size
        boxes.append(np.concatenate([lo, lo + 0.2 * np.asarray(size)], axis=1))
        labels.append([0, 0])
    x = torch.randn(batch, plan["network"]["in_channels"], *size, device=device)
    y = encode_targets(boxes, labels, ndim=ndim).to(device)
    # seconds_per_step builds its own network; the loss needs a detector around that one.
    state = {}

    def loss_fn(head, targets):
        if "fn" not in state:
            state["fn"] = detection_loss(make_detector(build_model(plan["network"]), plan), size)
        return state["fn"](head, targets)

    return seconds_per_step(
        plan["network"], x, y, loss_fn, device=device, limit=limit, precision=plan["precision"]
    )


def make_plan(
    fp: dict, *, budget_min: float, device: str = "cpu", seed: int = 0, measure: bool = True
) -> dict:
    """Plan a detector training from fingerprint `fp` that fits `budget_min` minutes on `device`."""
    ndim = fp["ndim"]
    n_train = max(1, fp["n"]["train"])
    batch = int(max(2, min(16 if ndim == 2 else 2, n_train // 4 or 2)))
    budget_s = budget_min * 60 * 0.85  # the final validation and saving
    networks = [
        {"depth": 18, "width": 0.5, "fpn": 128},
        {"depth": 10, "width": 0.25, "fpn": 64},
        {"depth": 10, "width": 0.125, "fpn": 32},
    ]
    # Capacity before resolution: each network from the largest input down, so large findings
    # (whose boxes stay well above MIN_BOX at half size) get a stronger network at a smaller
    # input rather than the weakest network at full size. Small findings have one size only.
    options = [{"size": s, **net} for net in networks for s in _sizes(fp)]
    chosen, steps, timings = None, 1, []
    # A step slower than MIN_STEPS allows is not timed further: that candidate is out.
    limit = budget_s / (MIN_STEPS * (1 + VALIDATION_SHARE))
    for option in options if measure else options[-1:]:
        plan = _assemble(fp, option, batch, seed, device, budget_min)
        sec = _seconds_per_step(plan, batch, device, limit) if measure else 1e-3
        fit_steps = budget_s / (sec * (1 + VALIDATION_SHARE))
        timings.append({**option, "s_per_step": round(sec, 4), "steps_in_budget": int(fit_steps)})
        chosen, steps = plan, fit_steps
        if fit_steps >= MIN_STEPS:
            break
    steps_per_epoch = epoch_steps(fp, chosen, steps)
    epochs = int(np.clip(steps / steps_per_epoch, 1, MAX_EPOCHS))
    chosen["epochs"] = epochs
    chosen["steps_per_epoch"] = steps_per_epoch
    chosen["planning"] = {"candidates_timed": timings, "epochs_estimated": epochs, "fingerprint": fp}
    return chosen


def epoch_steps(fp: dict, plan: dict, steps: float) -> int:
    """Steps per epoch for `plan`, when `steps` fit the budget: a pass over the training images
    at least; longer, while validation would exceed `VALIDATION_SHARE` of an epoch, up to
    `MIN_VALIDATIONS` epochs in the budget."""
    batch = plan["batch_size"]
    size = plan["preprocess"]["size"]
    trained = (plan["training_patch"] or {}).get("size") or size
    # Validating an image: one forward pass of the whole input; in training steps:
    validation = (
        fp["n"].get("val", 0) * math.prod(size) / (FORWARDS_PER_TRAINING * batch * math.prod(trained))
    )
    one_pass = max(fp["n"]["train"] // batch, MIN_STEPS_PER_EPOCH)
    wanted = math.ceil(validation / VALIDATION_SHARE)
    return int(max(one_pass, min(wanted, steps // MIN_VALIDATIONS)))


def _assemble(fp: dict, option: dict, batch: int, seed: int, device: str, budget_min: float) -> dict:
    ndim = fp["ndim"]
    size = option["size"]
    scales, base, backbone = _levels(fp, size)
    # The longest side is `size`; the others follow the median image's aspect (a 3D scan is
    # rarely a cube), each rounded up to what the network divides by.
    divisible = size_divisible(**backbone)
    aspect = np.asarray(fp["size"], float) / max(fp["size"])
    sizes = [max(divisible, int(math.ceil(size * a / divisible - 1e-9)) * divisible) for a in aspect]
    patch = None
    p95 = fp["boxes"]["relative_max_side_p95"]
    if p95 is not None and p95 * size <= PATCH_BOX_SHARE * min(sizes):
        half = [max(divisible, int(math.ceil(s / 2 / divisible)) * divisible) for s in sizes]
        patch = {"size": half, "foreground_fraction": PATCH_FOREGROUND}
    intensity = fp["intensity"]
    if fp["modality"] == "CT":
        # The findings' range (a 30 HU tumour in the liver), not the scan's (air to bone), else
        # their contrast shrinks to a few hundredths of the input's scale.
        clip = fp.get("box_intensity") or intensity
        normalize = {"kind": "ct", "clip": [clip["p0_5"], clip["p99_5"]]}
    else:
        normalize = {"kind": "zscore", "mean": intensity["mean"], "std": max(intensity["std"], 1e-6)}
    return {
        "task": "detect",
        "version": 1,
        "seed": seed,
        "device": device,
        "classes": fp["classes"],
        "preprocess": {
            "ndim": ndim,
            "channels": fp["channels"],
            "size": sizes,
            "normalize": normalize,
        },
        "anchors": {"feature_map_scales": scales, "base_shapes": base},
        "network": _network(fp, option, backbone, len(base)),
        # Training arithmetic (`models.precision`): bfloat16 autocast on CPUs that compute it
        # natively, 2.3x a step of the chest plan; the loss itself runs in float32.
        "precision": "auto",
        "matcher": {"name": "atss", "num_candidates": 4, "center_in_gt": False},
        "sampler": {
            "name": "hard_negative",
            "batch_size_per_image": 64,
            "positive_fraction": 0.3,
            "min_neg": 16,
            "pool_size": 20,
        },
        # Findings rarely overlap: a stricter NMS than COCO's 0.5 removes duplicates (MONAI's
        # LUNA16 model uses 0.22 in 3D).
        "box_selector": {
            "score_thresh": 0.05,
            "topk_candidates_per_level": 1000,
            "nms_thresh": 0.3 if ndim == 2 else 0.22,
            "detections_per_img": 100,
        },
        # Prediction (validation too) under the same autocast: 1.4x the films per second on this
        # CPU; boxes are decoded and selected in float32 (`detector.detect`). Test-time
        # mirroring: off unless it raises the selection metric on validation at the end of
        # training (`train.detect`).
        "inference": {"precision": "auto", "mirror_axes": []},
        "training_patch": patch,
        "batch_size": batch,
        "steps_per_epoch": 1,
        "epochs": 1,
        "time_budget_min": budget_min,
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
        "schedule": {"name": "onecycle", "warmup_fraction": 0.1},
        "augmentation": {"strength": "light", "elastic": False},
        # GIoU on decoded boxes: measured against smooth L1 at 30 min, Kvasir AP50 0.774 vs 0.743
        # (mAP 0.451 vs 0.420), CT phantom AP50 0.352 vs 0.249 with FROC 0.711 vs 0.734 (noise).
        "loss": {"cls_weight": 1.0, "box": "giou"},
        "validation": {"froc_hit": "centre"},
        "selection": {"metric": "val_ap50" if ndim == 2 else "val_froc_mean"},
        # The kept model predicts validation in each of the 2^ndim mirrored views (the first
        # unflipped, which scores it plain) to choose test-time mirroring.
        "final_validations": 2**ndim,
    }
