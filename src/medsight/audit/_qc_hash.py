"""Image fingerprints for duplicate search: a hash of the decoded voxels and a perceptual hash.

- `pixel_hash`: SHA-256 of the voxel values in a canonical form (logical C order, the
  smallest integer type that holds the values), so the same pixels stored as PNG, TIFF or
  NIfTI, in any memory layout or integer type, hash alike.
- `perceptual_hash`: the DCT hash of imagehash's ``phash`` (grey view resized to
  ``4 * size`` square, 2D DCT-II, the ``size x size`` lowest frequencies compared with their
  median). With ``size=16`` it has 256 bits: at 8 x 8 (64 bits) distinct fundus photographs
  of different eyes collide within 2-4 bits, which would report leakage falsely.
- `near_groups`: hashes chained by small Hamming distances, in row blocks so memory stays bounded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np

# Luma weights of Pillow's RGB -> "L" conversion (ITU-R 601), as imagehash sees colour images.
_LUMA = tuple(np.float32(w) for w in (0.299, 0.587, 0.114))
_CHUNK_ITEMS = 1 << 22  # voxels converted at a time while hashing: bounds the temporary copies


def _chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    """Logical C-order pieces of `array` (channel by channel, blocks of i), each contiguous."""
    for channel in array:
        row = int(np.prod(channel.shape[1:], dtype=np.int64)) or 1
        step = max(1, _CHUNK_ITEMS // row)
        for start in range(0, channel.shape[0], step):
            yield np.ascontiguousarray(channel[start : start + step])


def is_integral(array: np.ndarray) -> bool:
    """Whether every value is a whole number (always true for integer and bool arrays)."""
    if array.dtype.kind in "biu":
        return True
    return all(bool(np.all(np.floor(c) == c)) for c in _chunks(array))


def _canonical_dtype(lo: float, hi: float, integral: bool) -> np.dtype:
    if not integral:
        return np.dtype(np.float64)
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def pixel_hash(array: np.ndarray, *, lo: float, hi: float, integral: bool) -> str:
    """Hex digest of the voxel values and shape of a channel-first array.

    `lo`, `hi` (the value range) and `integral` choose the canonical type, so they must be
    those of `array`. A trailing unit ``k`` axis is dropped: a 2D image saved as a
    one-slice volume hashes as the 2D image.
    """
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    dtype = _canonical_dtype(lo, hi, integral)
    digest = hashlib.sha256(repr((array.shape, dtype.str)).encode())  # SHA-NI: about 2 GB/s
    for chunk in _chunks(array):
        digest.update(chunk.astype(dtype, copy=False))
    return digest.hexdigest()[:32]


def grey_view(array: np.ndarray) -> np.ndarray:
    """A float32 2D ``(rows, columns)`` view: luma or channel mean, 3D volumes averaged over k."""
    if array.ndim == 4:
        array = array.mean(axis=3, dtype=np.float32)
    if array.shape[0] in (3, 4):  # RGB(A): alpha ignored, as Pillow does
        grey = array[0] * _LUMA[0] + array[1] * _LUMA[1] + array[2] * _LUMA[2]
    elif array.shape[0] == 1:
        grey = array[0]
    else:
        grey = array.mean(axis=0, dtype=np.float32)
    # Image arrays are (i = column, j = row); imagehash reads rows first.
    grey = np.ascontiguousarray(grey.T, dtype=np.float32)
    if not np.isfinite(grey).all():
        grey = np.nan_to_num(grey, copy=False)
    return grey


def _dct_rows(size: int, length: int) -> np.ndarray:
    """The first `size` rows of the unnormalised DCT-II matrix of a `length`-point signal."""
    k = np.arange(size)[:, None]
    n = np.arange(length)[None, :]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * length))


def perceptual_hash(view: np.ndarray, *, size: int = 16) -> np.ndarray:
    """DCT perceptual hash of a 2D view as ``size * size / 64`` uint64 words.

    The view is shifted to start at 0 first, so an intensity offset (HU against stored
    values) changes no bit; a positive gain never does.
    """
    from PIL import Image as PILImage

    length = 4 * size
    view = np.ascontiguousarray(view, dtype=np.float32)
    pil = PILImage.fromarray(view - view.min())
    # reducing_gap: a fast integer box reduction first, then Lanczos (Pillow's advice, >= 3).
    small = np.asarray(pil.resize((length, length), PILImage.Resampling.LANCZOS, reducing_gap=3.0))
    dct = _dct_rows(size, length)
    low = dct @ small.astype(np.float64) @ dct.T
    bits = np.packbits(low.ravel() > np.median(low))
    return bits.view(">u8").astype(np.uint64)


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(words)
    table = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return table[as_bytes].sum(axis=-1, dtype=np.uint8)


def near_groups(
    hashes: np.ndarray, max_bits: int, *, unlinked: np.ndarray | None = None, block_bytes: int = 1 << 25
) -> list[tuple[list[int], int, int]]:
    """Groups of hashes chained by Hamming distances of at most `max_bits`.

    Parameters
    ----------
    hashes : ndarray, shape (N, W), uint64
    max_bits : int
    unlinked : ndarray, shape (N,), optional
        Ids: pairs with the same id are not linked (exact duplicates, reported elsewhere).

    Returns
    -------
    list of (members, nearest, farthest)
        Sorted indices of each group of two or more, and its smallest and largest linking
        distance. Every pair is compared (N^2 / 2 distances, about a second per 10,000
        hashes squared on one core), a block of rows at a time, and linked as it is found,
        so memory stays bounded even when thousands of images look alike.
    """
    n, words = hashes.shape
    parent = np.arange(n)
    nearest = np.full(n, np.iinfo(np.int32).max)
    farthest = np.full(n, -1)
    rows = max(1, block_bytes // max(1, n * words * 8))
    for start in range(0, n, rows):
        block = hashes[start : start + rows]
        distance = _popcount(block[:, None, :] ^ hashes[None, start:, :]).sum(axis=-1, dtype=np.int32)
        i, j = np.nonzero(distance <= max_bits)
        keep = j > i  # the block's own rows start at column 0: each pair once
        d, a, b = distance[i[keep], j[keep]], start + i[keep], start + j[keep]
        if unlinked is not None:
            linked = unlinked[a] != unlinked[b]
            d, a, b = d[linked], a[linked], b[linked]
        _link(parent, a, b)
        for ends in (a, b):
            np.minimum.at(nearest, ends, d)
            np.maximum.at(farthest, ends, d)
    roots = _flatten(parent)
    groups: dict[int, list[int]] = {}
    for index in np.flatnonzero(farthest >= 0):
        groups.setdefault(int(roots[index]), []).append(int(index))
    return [(g, int(nearest[g].min()), int(farthest[g].max())) for g in groups.values()]


def _flatten(parent: np.ndarray) -> np.ndarray:
    """Point every index straight at its root (pointer jumping)."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return grand
        parent = grand


def _link(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Union the pairs ``(a, b)`` in place, vectorised: hook each larger root on the smaller."""
    while a.size:
        parent[:] = _flatten(parent)
        root_a, root_b = parent[a], parent[b]
        apart = root_a != root_b
        a, b, root_a, root_b = a[apart], b[apart], root_a[apart], root_b[apart]
        # parent[x] <= x always holds, so hooking never makes a cycle.
        np.minimum.at(parent, np.maximum(root_a, root_b), np.minimum(root_a, root_b))
