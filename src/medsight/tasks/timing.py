"""Measured speed of a training step on the device: what planning sizes networks by."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["FORWARDS_PER_TRAINING", "VALIDATION_SHARE", "seconds_per_step"]

# Planners size per-epoch validation to about this share of an epoch's training compute ...
VALIDATION_SHARE = 0.1
# ... taking training on an input (forward and backward) as three forward passes of it.
FORWARDS_PER_TRAINING = 3


def seconds_per_step(
    network: dict,
    x,
    y,
    loss_fn: Callable,
    *,
    device: str,
    steps: int = 3,
    transform: Callable | None = None,
    limit: float | None = None,
    precision: str = "float32",
) -> float:
    """Seconds of one training step (`transform`, forward, loss, backward, AdamW update) of the
    network `network` builds, on batch `x`, `y` already on `device`.

    The first of `steps` steps warms up allocators and kernels; the fastest of the others is
    returned, since other work on the machine only ever adds time. One step after the warm-up
    is not enough: in the planner's process, DRIVE's first candidate timed 0.83 s on its second
    step alone, 0.40 s as the faster of its second and third (training ran at 0.48 s a step,
    data included). A warm-up step over 3x `limit` seconds is answer enough (returned as is).
    `precision` is the training's (`models.precision.resolve_precision`); float16 is timed
    without its loss scaling.
    """
    import torch

    from medsight.models import build_model
    from medsight.models.precision import autocast, resolve_precision

    precision = resolve_precision(precision, device, training=True)

    model = build_model(network).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with autocast(device, precision):
            loss = loss_fn(model(transform(x) if transform else x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if limit is not None and times[0] > 3 * limit:
            return times[0]
    return min(times[1:]) if len(times) > 1 else times[0]
