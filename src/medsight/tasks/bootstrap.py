"""Percentile bootstrap confidence intervals that resample patients, not images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["bootstrap_ci"]


def bootstrap_ci(
    statistic: Callable[[np.ndarray], dict[str, float]],
    n: int,
    *,
    groups: Sequence | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Confidence intervals of every value `statistic` returns.

    Parameters
    ----------
    statistic : callable
        Takes an index array into the ``n`` cases and returns ``{name: value}``; values
        that cannot be computed on a resample (e.g. AUC with one class) are NaN and skipped.
    n : int
        Number of cases (images).
    groups : sequence, optional
        Group of each case (patient id). Whole groups are resampled, so images of one
        patient stay together; None resamples cases.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        members = [np.array([i]) for i in range(n)]
    else:
        groups = np.asarray([str(g) for g in groups])
        _, inverse = np.unique(groups, return_inverse=True)
        members = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        chosen = rng.integers(0, len(members), len(members))
        index = np.concatenate([members[c] for c in chosen])
        for name, value in statistic(index).items():
            draws.setdefault(name, []).append(value)
    alpha = (1 - level) / 2
    out = {}
    for name, values in draws.items():
        finite = np.asarray(values, float)
        finite = finite[np.isfinite(finite)]
        out[name] = (
            (float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha)))
            if len(finite)
            else (float("nan"), float("nan"))
        )
    return out
