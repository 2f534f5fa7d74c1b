"""Smooth random fields and Gaussian blur, by FFT (numpy only: scipy is not a core dependency)."""

from __future__ import annotations

import numpy as np

__all__ = ["blur", "smooth_noise"]


def _gaussian_transfer(shape: tuple[int, ...], sigma: tuple[float, ...]) -> np.ndarray:
    """The Fourier transform of a unit-sum Gaussian of `sigma` voxels, for ``rfftn`` of `shape`."""
    transfer = np.ones((), np.float32)
    last = len(shape) - 1
    for axis, (n, s) in enumerate(zip(shape, sigma)):
        freq = np.fft.rfftfreq(n) if axis == last else np.fft.fftfreq(n)
        factor = np.exp(-2 * (np.pi * s * freq) ** 2).astype(np.float32)
        transfer = transfer[..., None] * factor if transfer.ndim else factor
    return transfer


def blur(array: np.ndarray, sigma, *, pad: bool = True) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` voxels (a number or one per axis).

    With `pad`, edges are mirrored first so the FFT's wrap-around does not mix
    opposite borders. Returns float32.
    """
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (array.ndim,))
    if not np.any(sigma > 0):
        return array.astype(np.float32)
    widths = [int(min(np.ceil(3 * s), n - 1)) if pad else 0 for s, n in zip(sigma, array.shape)]
    data = np.pad(array.astype(np.float32), [(w, w) for w in widths], mode="symmetric")
    axes = tuple(range(data.ndim))
    smooth = np.fft.irfftn(
        np.fft.rfftn(data) * _gaussian_transfer(data.shape, sigma), s=data.shape, axes=axes
    )
    inner = tuple(slice(w, w + n) for w, n in zip(widths, array.shape))
    return smooth[inner].astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    """A smooth random field of correlation length `sigma` voxels, zero mean, unit std (float32).

    The white noise is drawn with a margin (up to half the size per side) that is cut
    off after smoothing, so the field does not repeat across the image as an FFT's would.
    """
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (len(shape),))
    margins = [int(min(np.ceil(3 * s), n // 2)) for s, n in zip(sigma, shape)]
    padded = tuple(n + 2 * m for n, m in zip(shape, margins))
    field = blur(rng.standard_normal(padded, dtype=np.float32), sigma, pad=False)
    field = field[tuple(slice(m, m + n) for m, n in zip(margins, shape))]
    std = field.std()
    return (field - field.mean()) / (std if std > 0 else 1.0)
