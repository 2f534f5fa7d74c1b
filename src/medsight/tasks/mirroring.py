"""Test-time mirroring: which axes a model may be mirrored along, and the flips that makes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

__all__ = ["keep_mirroring", "mirror_axes", "mirror_flips"]


def mirror_axes(plan: dict) -> list[int]:
    """The axes test-time mirroring may flip: those training mirrored (not left-right for a model
    of lateralised classes)."""
    trained = plan["augmentation"].get("flip_axes")
    return list(range(plan["preprocess"]["ndim"])) if trained is None else list(trained)


def mirror_flips(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every combination of spatial `axes` to flip, the unflipped view first: ``2 ** len(axes)``."""
    return [combo for n in range(len(axes) + 1) for combo in itertools.combinations(sorted(axes), n)]


def keep_mirroring(without: float, with_: float) -> bool:
    """Whether test-time mirroring earns its cost (2^ndim predictions): the validation figure it
    gives beats the one without by more than rounding."""
    return with_ > without + 1e-3
