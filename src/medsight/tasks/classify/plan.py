"""Classification planning: a fingerprint of the data, then rules that write ``plan.json``.

The fingerprint summarises the training data (classes and balance, 2D or 3D, channels,
sizes, spacings, modality, intensities). The rules turn it, the time budget and a measured
speed of the device into a plan: input size, normalisation, network, batch size, optimiser,
schedule, augmentation, loss with class weights, and epochs that fit the budget. Training
reads only the plan; every field can be overridden (``--set network.width=0.5``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from medsight.tasks.modality import modality_of

__all__ = ["fingerprint", "make_plan"]

# Smallest number of epochs worth training; below it the plan shrinks the network or input.
MIN_EPOCHS = 20
MAX_EPOCHS = 200
# Progressive resizing: this share of the epochs trains at a smaller input size (2D inputs
# planned at 48 pixels or more). Such an epoch costs at least SMALL_EPOCH_COST of a full one.
SMALL_FRACTION = 0.25
SMALL_EPOCH_COST = 0.25


def fingerprint(
    images: list, *, classes: list[str], class_counts: list[int], n: dict[str, int], multilabel: bool
) -> dict:
    """Summary of the training data from a sample of its `images` and the label counts.

    Channels, dimension and modality are the most common ones; sizes and spacings are
    medians per axis; intensities are pooled over the sampled images.
    """
    channels = Counter(im.num_channels for im in images).most_common(1)[0][0]
    values = np.concatenate(
        [im.array.astype(np.float32).ravel()[:: max(1, im.array.size // 20000)] for im in images]
    )
    modality = modality_of(images, float(values.min()))  # air fills a CT's corners: the sample has it
    return {
        "n": n,
        "classes": classes,
        "class_counts": class_counts,
        "multilabel": multilabel,
        "ndim": images[0].ndim,
        "channels": channels,
        "size": [int(v) for v in np.median([im.spatial_shape for im in images], axis=0)],
        "spacing": [round(float(v), 4) for v in np.median([im.spacing for im in images], axis=0)],
        "modality": modality,
        "intensity": {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "p0_5": float(np.percentile(values, 0.5)),
            "p99_5": float(np.percentile(values, 99.5)),
        },
    }


def _candidates(fp: dict) -> list[dict]:
    """Network and input-size options from the most to the least capable."""
    size = fp["size"]
    if fp["ndim"] == 2:
        small = max(size) <= 64
        sizes = (
            [64, 48, 32]
            if small
            else sorted(
                {min(224, max(size)), *(s for s in (160, 128, 96, 64) if s < max(size))}, reverse=True
            )
        )
        out = [{"size": s, "width": w, "depth": 18} for s in sizes for w in (0.5, 0.25)]
        out += [{"size": sizes[-1], "width": 0.125, "depth": 10}]
    else:
        sizes = [max(size)] if max(size) <= 64 else [96, 64, 48]
        out = [
            {"size": s, "width": w, "depth": d}
            for s in sizes
            for (w, d) in ((0.5, 18), (0.25, 18), (0.25, 10))
        ]
    return out


def _network(fp: dict, option: dict) -> dict:
    return {
        "name": "resnet",
        "spatial_dims": fp["ndim"],
        "in_channels": fp["channels"],
        "num_classes": len(fp["classes"]),
        "depth": option["depth"],
        "width": option["width"],
        "small_input": option["size"] <= 64,
    }


def _seconds_per_sample(network: dict, size: int, ndim: int, batch: int, device: str) -> float:
    """Measured time of one training step per sample: augmentation, forward, backward, update."""
    import torch

    from medsight.data.augment import Batch, default_augmentation
    from medsight.tasks.timing import seconds_per_step

    augment = default_augmentation(ndim, strength="light")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, network["in_channels"], *([size] * ndim), device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    step = seconds_per_step(
        network,
        x,
        y,
        torch.nn.CrossEntropyLoss(),
        device=device,
        transform=lambda b: augment(Batch(b), generator=generator)[0].image,
    )
    return step / batch


def _small_size(fp: dict, size: int) -> int | None:
    """The input size of the progressive phase: the native size up to half the planned one."""
    if fp["ndim"] != 2 or size < 48:
        return None
    return max(24, min(int(max(fp["size"])), size // 2))


def make_plan(
    fp: dict, *, budget_min: float, device: str = "cpu", seed: int = 0, measure: bool = True
) -> dict:
    """Plan a training from fingerprint `fp` so that it fits `budget_min` minutes on `device`.

    With `measure`, each candidate network is timed on the device and the most capable one
    that still allows `MIN_EPOCHS` epochs is chosen; otherwise the smallest candidate.
    """
    n_train = fp["n"]["train"]
    ndim = fp["ndim"]
    # Batches of 64 take as long per image as larger ones on a CPU and give twice the steps.
    batch = 64 if ndim == 2 else 16
    batch = max(8, min(batch, n_train // 4 or 1))
    budget_s = budget_min * 60 * 0.85  # leave room for validation, calibration and saving

    def epochs_in_budget(option: dict, sec: float) -> float:
        small = _small_size(fp, option["size"])
        share = 1.0
        if small:
            share += SMALL_FRACTION * (max((small / option["size"]) ** ndim, SMALL_EPOCH_COST) - 1)
        return budget_s / (sec * n_train * 1.15 * share)  # +15% for validation passes

    chosen, epochs, timings = None, None, []
    options = _candidates(fp)
    for option in options if measure else options[-1:]:
        network = _network(fp, option)
        # Timed on small batches: cheap, and if anything slower per image than the real ones.
        sec = _seconds_per_sample(network, option["size"], ndim, min(batch, 16), device) if measure else 1e-3
        fit_epochs = epochs_in_budget(option, sec)
        timings.append({**option, "s_per_sample": round(sec, 6), "epochs_in_budget": round(fit_epochs, 1)})
        chosen, epochs = option, fit_epochs
        if fit_epochs >= MIN_EPOCHS:
            break
    epochs = int(np.clip(epochs, 1, MAX_EPOCHS))
    small = _small_size(fp, chosen["size"])
    progressive = {"size": [small] * ndim, "fraction": SMALL_FRACTION} if small and epochs >= 4 else None

    counts = np.asarray(fp["class_counts"], float)
    weights = np.sqrt(counts.sum() / np.maximum(counts, 1) / len(counts))  # softened inverse frequency
    intensity = fp["intensity"]
    if fp["modality"] == "CT":
        normalize = {"kind": "ct", "clip": [intensity["p0_5"], intensity["p99_5"]]}
    else:
        normalize = {"kind": "zscore", "mean": intensity["mean"], "std": max(intensity["std"], 1e-6)}
    return {
        "task": "classify",
        "version": 1,
        "seed": seed,
        "device": device,
        "classes": fp["classes"],
        "multilabel": fp["multilabel"],
        "preprocess": {
            "ndim": ndim,
            "channels": fp["channels"],
            "size": [chosen["size"]] * ndim,
            "normalize": normalize,
        },
        "network": _network(fp, chosen),
        "batch_size": batch,
        "epochs": epochs,
        "progressive": progressive,
        "time_budget_min": budget_min,
        "optimizer": {"name": "adamw", "lr": 2e-3, "weight_decay": 5e-4},
        "schedule": {"name": "onecycle", "warmup_fraction": 0.05},
        "augmentation": {"strength": "light", "elastic": False},
        "loss": {
            "name": "bce" if fp["multilabel"] else "cross_entropy",
            "class_weights": [round(float(w), 4) for w in weights],
            "label_smoothing": 0.0,
        },
        "selection": {"metric": "val_auc"},
        "final_validations": 1,  # temperature and threshold fitted on one more validation pass
        "planning": {"candidates_timed": timings, "epochs_estimated": epochs, "fingerprint": fp},
    }
