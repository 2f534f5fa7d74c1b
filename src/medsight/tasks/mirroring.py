"""Test-time mirroring: which axes a model may be mirrored along, and the flips that makes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

__all__ = ["kept_mirror_axes", "mirror_axes", "mirror_flips"]


def mirror_axes(plan: dict) -> list[int]:
    """The axes test-time mirroring may flip: those training mirrored (not left-right for a model
    of lateralised classes)."""
    trained = plan["augmentation"].get("flip_axes")
    return list(range(plan["preprocess"]["ndim"])) if trained is None else list(trained)


def mirror_flips(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every combination of spatial `axes` to flip, the unflipped view first: ``2 ** len(axes)``."""
    return [combo for n in range(len(axes) + 1) for combo in itertools.combinations(sorted(axes), n)]


def kept_mirror_axes(axes: Sequence[int], without: float, with_: float) -> list[int]:
    """The mirror `axes` test-time mirroring keeps: all of them where it earns its cost (2^ndim
    predictions), the validation figure with it beating the one without by more than rounding;
    else none."""
    return list(axes) if axes and with_ > without + 1e-3 else []
