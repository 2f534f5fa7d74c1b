"""State dicts to and from safetensors files, with aliased parameters written once.

Some MONAI networks (DynUNet) reach the same parameters under two names; safetensors
refuses shared memory, so each storage is written under its first name, and loading
accepts exactly those aliases as missing (they share memory with what is loaded).
"""

from __future__ import annotations

from pathlib import Path

from medsight.errors import FormatError

__all__ = ["load_weights", "save_weights", "unique_state"]


def unique_state(state_dict: dict) -> dict:
    """CPU, contiguous tensors of `state_dict`, each storage once (first name kept)."""
    seen, out = set(), {}
    for name, tensor in state_dict.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if tensor.numel() and key in seen:
            continue
        seen.add(key)
        out[name] = tensor.detach().cpu().contiguous()
    return out


def save_weights(state_dict: dict, path: Path, *, metadata: dict | None = None) -> None:
    """Write `state_dict` to `path` (safetensors), aliases once; the caller makes it atomic."""
    from safetensors.torch import save_file

    save_file(unique_state(state_dict), str(path), metadata=metadata)


def load_weights(model, tensors: dict, *, path=None) -> None:
    """Load `tensors` into `model`: every parameter but aliases of loaded ones must be there."""
    aliases = set(model.state_dict()) - set(unique_state(model.state_dict()))
    result = model.load_state_dict(tensors, strict=False)
    missing = set(result.missing_keys) - aliases
    if missing or result.unexpected_keys:
        raise FormatError(
            f"weights do not fit the network: {len(missing)} missing, "
            f"{len(result.unexpected_keys)} unexpected (e.g. {sorted(missing or result.unexpected_keys)[0]})",
            path=path,
            hint="The weights and plan.json come from different models",
        )
