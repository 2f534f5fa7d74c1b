"""Sliding-window inference: Gaussian blending, mirroring, and memory bounded by one slab of windows.

    labels = sliding_window(volume, model, patch=(96, 96, 96))            # (I, J, K) uint8
    probabilities = sliding_window(volume, model, patch=(96, 96, 96), output="probabilities")

Windows sit where MONAI's ``sliding_window_inference`` puts them (same scan interval, last
window shifted back inside the volume, symmetric zero padding when the volume is smaller
than the patch) and are blended with its Gaussian importance map, so both give the same
numbers. The difference is memory: windows are visited in order along the first spatial
axis (the slowest in a C-ordered array), the weighted sum is kept only for the slab that
the current row of windows covers, and each part of the slab is finalised (softmax or
argmax) as soon as no later window reaches it. With ``output="labels"`` no per-class float
array of the full volume ever exists: the largest buffers are ``K x patch[0] x (rest of the
volume)`` float32 and the uint8 label map.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from medsight.errors import FormatError
from medsight.models.precision import autocast, resolve_precision
from medsight.tasks.mirroring import mirror_flips

__all__ = ["OUTPUTS", "predict_with_plan", "sliding_window"]

OUTPUTS = ("labels", "probabilities", "logits")


def sliding_window(
    volume,
    predictor: Callable,
    *,
    patch: Sequence[int],
    overlap: float = 0.5,
    batch_size: int = 4,
    gaussian_sigma_scale: float = 0.125,
    mirror_axes: Sequence[int] = (),
    output: str = "labels",
    probability_dtype: str = "float32",
    device=None,
    precision: str = "float32",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Run `predictor` on overlapping windows of `volume` and blend the window outputs.

    Parameters
    ----------
    volume : torch.Tensor or numpy.ndarray, shape (C, I, J[, K])
        Channel-first 2D or 3D input, already normalised as the network expects. Integer
        inputs are converted to float32 window by window (the whole volume is never copied).
    predictor : callable
        Maps a float32 batch ``(B, C, *patch)`` to logits ``(B, L, *patch)``, e.g. a torch
        module in eval mode. Called under ``torch.inference_mode()``.
    patch : sequence of int
        Window size in voxels, one value per spatial axis.
    overlap : float
        Fraction of a window shared with its neighbour along each axis, in [0, 1).
    batch_size : int
        Windows per predictor call.
    gaussian_sigma_scale : float
        Standard deviation of the Gaussian importance map as a fraction of the patch size.
    mirror_axes : sequence of int
        Spatial axes (0-based) to mirror for test-time augmentation: the logits are averaged
        over all ``2 ** len(mirror_axes)`` flip combinations, each flipped back.
    output : {"labels", "probabilities", "logits"}
        ``labels``: argmax of the blended logits (for one output channel: logit > 0), shape
        ``(I, J[, K])``, uint8 (uint16 beyond 256 classes). ``probabilities``: softmax (one
        channel: sigmoid) of the blended logits, shape ``(L, I, J[, K])``. ``logits``: the
        blended logits, shape ``(L, I, J[, K])``, float32.
    probability_dtype : {"float32", "float16"}
        Storage type of ``output="probabilities"``; float16 halves the full-size array.
    device : torch.device or str, optional
        Where windows are run and blended (default: the device of `volume`). The result is
        always on the CPU.
    precision : {"float32", "bfloat16", "float16", "auto"}
        Arithmetic of the predictor: a 16-bit type runs it under ``torch.autocast`` (blending
        stays float32; float16 needs CUDA); ``auto`` is `models.precision.auto_precision`.
    progress : callable, optional
        Called as ``progress(done, total)`` in windows (each mirror counts once).

    Returns
    -------
    numpy.ndarray
        See `output`; spatial shape equal to the input's.
    """
    import torch

    tensor, patch, overlap = _check(
        volume, patch, overlap, batch_size, mirror_axes, output, probability_dtype, precision
    )
    device = torch.device(device) if device is not None else tensor.device
    precision = resolve_precision(precision, device)
    spatial = tuple(tensor.shape[1:])
    tensor, low = _pad_to_patch(tensor, patch)
    padded = tuple(tensor.shape[1:])
    windows = _windows(padded, patch, overlap)
    weight = _importance_map(patch, gaussian_sigma_scale, device)
    flips = [tuple(a + 2 for a in combo) for combo in mirror_flips(mirror_axes)]

    slab: _Slab | None = None
    done, total = 0, len(windows)
    with torch.inference_mode():
        for first in range(0, total, batch_size):
            batch = windows[first : first + batch_size]
            inputs = torch.stack([tensor[(slice(None), *w)] for w in batch]).to(device, torch.float32)
            with autocast(device, precision):
                logits = _predict(predictor, inputs, flips)
            if slab is None:
                slab = _Slab(logits.shape[1], padded, patch[0], output, probability_dtype, logits.device)
            for window, window_logits in zip(batch, logits):
                slab.add(window, window_logits, weight)
            done += len(batch)
            if progress:
                progress(done, total)
        result = slab.finish()
    crop = tuple(slice(lo, lo + n) for lo, n in zip(low, spatial))
    if output != "labels":
        crop = (slice(None), *crop)
    return np.ascontiguousarray(result[crop]) if padded != spatial else result


def _check(volume, patch, overlap, batch_size, mirror_axes, output, probability_dtype, precision):
    import torch

    if isinstance(volume, np.ndarray):
        if not volume.dtype.isnative:  # e.g. big-endian NIfTI data, which torch cannot hold
            volume = volume.astype(volume.dtype.newbyteorder("="))
        with warnings.catch_warnings():  # read-only arrays are fine: windows are only read
            warnings.filterwarnings("ignore", message=".*not writable", category=UserWarning)
            tensor = torch.from_numpy(volume)  # shared, not copied
    else:
        tensor = torch.as_tensor(volume)
    if tensor.ndim not in (3, 4):
        raise FormatError(
            f"sliding-window input has shape {tuple(tensor.shape)}; expected (C, I, J) or (C, I, J, K)",
            hint="add a channel axis first, e.g. volume[None]",
        )
    ndim = tensor.ndim - 1
    patch = tuple(int(p) for p in patch)
    if len(patch) != ndim or min(patch) < 1:
        raise FormatError(f"patch {patch} does not fit a {ndim}D volume: give {ndim} positive sizes")
    if not 0 <= overlap < 1:
        raise FormatError(f"overlap {overlap} is outside [0, 1)")
    if batch_size < 1:
        raise FormatError(f"batch_size {batch_size} must be at least 1")
    if len(set(mirror_axes)) != len(mirror_axes) or any(a not in range(ndim) for a in mirror_axes):
        raise FormatError(f"mirror_axes {tuple(mirror_axes)} must be distinct spatial axes in 0..{ndim - 1}")
    if output not in OUTPUTS:
        raise FormatError(f"output {output!r} is not one of {', '.join(OUTPUTS)}")
    if probability_dtype not in ("float32", "float16"):
        raise FormatError(f"probability_dtype {probability_dtype!r} is not float32 or float16")
    return tensor, patch, float(overlap)


def _pad_to_patch(tensor, patch):
    """Zero-pad axes shorter than the patch, split evenly as MONAI does; the padding before each axis."""
    import torch.nn.functional as F

    missing = [max(p - n, 0) for p, n in zip(patch, tensor.shape[1:])]
    low = [m // 2 for m in missing]
    if any(missing):
        pad = [v for lo, m in zip(reversed(low), reversed(missing)) for v in (lo, m - lo)]  # last axis first
        tensor = F.pad(tensor, pad, mode="constant", value=0)
    return tensor, low


def _windows(shape, patch, overlap) -> list[tuple[slice, ...]]:
    """MONAI's window grid, sorted by start along axis 0 (its meshgrid order already is)."""
    from monai.data.utils import dense_patch_slices

    # monai.inferers.utils._get_scan_interval: one window when the patch spans the axis
    interval = [p if p == n else max(int(p * (1 - overlap)), 1) for p, n in zip(patch, shape)]
    return dense_patch_slices(shape, patch, interval)


def _importance_map(patch, sigma_scale, device):
    from monai.data.utils import compute_importance_map

    return compute_importance_map(patch, mode="gaussian", sigma_scale=sigma_scale, device=device)


def _predict(predictor, inputs, flips):
    """Logits of a batch as float32, averaged over mirrored copies (each flipped back)."""
    total = None
    for dims in flips:
        logits = predictor(inputs.flip(dims) if dims else inputs)
        logits = (logits.flip(dims) if dims else logits).float()
        total = logits if total is None else total.add_(logits)
    return total.div_(len(flips)) if len(flips) > 1 else total


class _Slab:
    """Weighted sums for the rows of the volume that windows still touch; finished rows leave it.

    The buffer spans ``span`` rows along axis 0 from ``start``. Windows arrive sorted by their
    start along axis 0, so when one starts at ``s > start`` no later window reaches the rows
    before ``s``: they are finalised into the result and the buffer shifts down.
    """

    def __init__(self, channels, shape, span, output, probability_dtype, device):
        import torch

        self.output, self.start, self.shape = output, 0, shape
        self.sums = torch.zeros((channels, span, *shape[1:]), dtype=torch.float32, device=device)
        # argmax and the sign of a logit do not change when divided by the positive weight sum
        self.weights = None if output == "labels" else torch.zeros_like(self.sums[0])
        if output == "labels":
            self.result = np.zeros(shape, dtype=np.uint8 if channels <= 256 else np.uint16)
        else:
            dtype = probability_dtype if output == "probabilities" else "float32"
            self.result = np.empty((channels, *shape), dtype=dtype)

    def add(self, window, logits, weight):
        if window[0].start > self.start:
            self._advance(window[0].start)
        rows = slice(window[0].start - self.start, window[0].stop - self.start)
        self.sums[(slice(None), rows, *window[1:])].addcmul_(logits, weight)
        if self.weights is not None:
            self.weights[(rows, *window[1:])].add_(weight)

    def finish(self) -> np.ndarray:
        self._finalise(self.shape[0] - self.start)
        return self.result

    def _advance(self, start):
        span = self.sums.shape[1]
        done = min(start - self.start, span)
        self._finalise(done)
        kept = span - done
        for buffer in (self.sums, self.weights[None]) if self.weights is not None else (self.sums,):
            if kept:  # rows still open move to the front; overlapping source and target need a copy
                buffer[:, :kept] = buffer[:, done:] if done >= kept else buffer[:, done:].clone()
            buffer[:, kept:] = 0
        self.start = start

    def _finalise(self, rows):
        """Write the first `rows` rows of the buffer into the result."""
        sums, target = self.sums[:, :rows], slice(self.start, self.start + rows)
        if self.output == "labels":
            labels = sums.argmax(0) if len(sums) > 1 else sums[0] > 0
            self.result[target] = labels.cpu().numpy()
            return
        blended = sums / self.weights[:rows]
        if self.output == "probabilities":
            blended = blended.softmax(0) if len(sums) > 1 else blended.sigmoid()
        self.result[:, target] = blended.cpu().numpy()


def predict_with_plan(
    model,
    array,
    plan: dict,
    *,
    device=None,
    overlap: float | None = None,
    mirror_axes: Sequence[int] | None = None,
    output: str = "labels",
) -> np.ndarray:
    """`sliding_window` with a segmentation plan's patch and inference settings; `overlap` and
    `mirror_axes` replace the plan's (validation during training uses less overlap). Precision:
    the plan's ``inference.precision``, ``auto`` when it has none."""
    inference = plan["inference"]
    return sliding_window(
        array,
        model,
        patch=plan["patch_size"],
        overlap=inference["overlap"] if overlap is None else overlap,
        batch_size=inference["batch_size"],
        mirror_axes=inference["mirror_axes"] if mirror_axes is None else mirror_axes,
        output=output,
        device=device,
        precision=inference.get("precision", "auto"),
    )
