"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is written after every epoch (atomically, the JSON last), so a killed run
resumes from its last finished epoch with the same weights, optimiser moments, learning
rate schedule and random state.
"""

from __future__ import annotations

import json
from pathlib import Path

from medsight.errors import FormatError
from medsight.io._atomic import atomic_path

__all__ = ["load_checkpoint", "save_checkpoint"]

TENSORS = "checkpoint.safetensors"
STATE = "checkpoint.json"


def save_checkpoint(folder: Path, *, model, optimizer, scheduler, generator, state: dict) -> None:
    """Model and optimiser tensors, scheduler and optimiser settings, RNG state, `state` (epoch, ...)."""
    import torch
    from safetensors.torch import save_file

    from medsight.models.weights import unique_state

    tensors = {f"model.{k}": v for k, v in unique_state(model.state_dict()).items()}
    opt = optimizer.state_dict()
    for index, values in opt["state"].items():
        for name, value in values.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = generator.get_state()
    with atomic_path(folder / TENSORS) as tmp:
        save_file(tensors, str(tmp))
    record = {"state": state, "param_groups": opt["param_groups"], "scheduler": scheduler.state_dict()}
    with atomic_path(folder / STATE) as tmp:  # written last: it marks the checkpoint complete
        tmp.write_text(json.dumps(record, default=list), encoding="utf-8")


def load_checkpoint(folder: Path, *, model, optimizer, scheduler, generator) -> dict:
    """Restore everything `save_checkpoint` wrote; returns its `state`."""
    import torch
    from safetensors.torch import load_file

    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        raise FormatError("no checkpoint to resume from", path=folder, hint="Train without --resume")
    try:
        record = json.loads((folder / STATE).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / TENSORS))
    except Exception as exc:  # json and safetensors raise their own types on damage
        raise FormatError(
            f"damaged checkpoint ({exc})", path=folder, hint="Train again without --resume"
        ) from exc
    from medsight.models.weights import load_weights

    load_weights(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path=folder)
    opt_state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            opt_state.setdefault(int(index), {})[name] = value
    groups = record["param_groups"]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    scheduler.load_state_dict(record["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.generator"])
    return record["state"]
