"""Arithmetic precision of a network's forward pass: float32, or autocast to a 16-bit type.

Training and inference name it the same way (``"float32"``, ``"bfloat16"``, ``"float16"`` or
``"auto"``) and run it through `autocast`, so a plan's choice means one thing everywhere.
"""

from __future__ import annotations

__all__ = ["PRECISIONS", "auto_precision", "autocast", "resolve_precision"]

PRECISIONS = ("float32", "bfloat16", "float16", "auto")


def auto_precision(device) -> str:
    """``bfloat16`` on a CPU that computes it natively (AVX512-BF16 or AMX), else ``float32``.

    There a window of inference runs 2-3x faster and a training step 1.7-1.9x faster
    (docs/benchmarks.md). Without native support bfloat16 is emulated and slower. GPUs get
    float32 here; training on CUDA asks for float16 itself (`resolve_precision`).
    """
    import torch

    if torch.device(device).type != "cpu":
        return "float32"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bfloat16" if native else "float32"


def resolve_precision(precision: str | None, device, *, training: bool = False) -> str:
    """The concrete precision for `precision` on `device`.

    ``auto`` is `auto_precision`, except that training on CUDA uses float16 with loss scaling
    (tensor cores, the field's default). None, from a plan written before plans named a
    training precision, keeps what those plans did: float16 on CUDA, float32 elsewhere.
    float16 needs a GPU: CPUs do not compute it natively.
    """
    import torch

    from medsight.errors import FormatError

    cuda = torch.device(device).type == "cuda"
    if precision not in (*PRECISIONS, None):
        raise FormatError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision is None:
        return "float16" if cuda else "float32"
    if precision == "auto":
        return "float16" if cuda and training else auto_precision(device)
    if precision == "float16" and not cuda:
        raise FormatError("precision float16 needs a CUDA device", hint="Use bfloat16 or float32 on a CPU")
    return precision


def autocast(device, precision: str):
    """``torch.autocast`` for a resolved `precision` (disabled for float32)."""
    import torch

    dtype = torch.float16 if precision == "float16" else torch.bfloat16
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=precision != "float32")
