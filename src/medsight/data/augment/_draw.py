"""Drawing random parameters: ranges from user options, uniform and log-uniform draws."""

from __future__ import annotations

import math

import torch


def value_range(value: float | tuple[float, float], *, name: str, symmetric: bool) -> tuple[float, float]:
    """``(lo, hi)`` from a pair, or from one number: ``(-v, v)`` if `symmetric` else ``(v, v)``."""
    if isinstance(value, (int, float)):
        lo, hi = (-float(value), float(value)) if symmetric else (float(value), float(value))
    else:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"{name} must be a finite range with low <= high, got ({lo}, {hi})")
    return lo, hi


def uniform(generator: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> torch.Tensor:
    """Float64 values uniform in ``[lo, hi)``."""
    return lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=torch.float64)


def log_uniform(generator: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> torch.Tensor:
    """Positive values whose log is uniform: a factor and its inverse are equally likely."""
    return uniform(generator, shape, math.log(lo), math.log(hi)).exp()


def positive_range(value, *, name: str) -> tuple[float, float]:
    lo, hi = value_range(value, name=name, symmetric=False)
    if lo <= 0:
        raise ValueError(f"{name} must be positive, got ({lo}, {hi})")
    return lo, hi
