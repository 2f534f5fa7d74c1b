"""2D raster files (PNG, JPEG, TIFF, GIF, BMP) through Pillow, and windowed PNG writing.

These formats store no physical geometry. Pixels are read as 1 mm squares with ITK's
default direction (``i`` towards patient left, ``j`` posterior in LPS terms, i.e. the
RAS affine ``diag(-1, -1, 1)``), and ``metadata["notes"]`` says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsight.errors import FormatError, GeometryError
from medsight.image import LPS_TO_RAS, Image, Kind
from medsight.io._atomic import atomic_path

ASSUMED_GEOMETRY = "the file stores no physical spacing or orientation: 1 mm pixels assumed"


def read_raster(path: Path, *, kind: Kind = "intensity") -> Image:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as pil:
            fmt = pil.format
            frames = [_pil_array(frame) for frame in _frames(pil)]
        grey = frames[0].ndim == 2
        arr = frames[0] if len(frames) == 1 else np.stack(frames, axis=2)  # (rows, cols[, K][, C])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FormatError(
            f"unreadable image file ({exc})", path=path, hint="The file may be truncated or not an image"
        ) from exc
    arr = np.swapaxes(arr, 0, 1)  # rows are j, columns are i
    array = arr[None] if grey else np.moveaxis(arr, -1, 0)
    meta = {"format": (fmt or path.suffix.lstrip(".")).lower(), "notes": [ASSUMED_GEOMETRY]}
    if len(frames) > 1:
        meta["notes"].append(f"{len(frames)} frames stacked on the k axis")
    return Image(array, LPS_TO_RAS.copy(), kind=kind, metadata=meta)


def _frames(pil):
    for index in range(getattr(pil, "n_frames", 1)):
        pil.seek(index)
        yield pil


def _pil_array(pil) -> np.ndarray:
    if pil.mode == "P":
        pil = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
    elif pil.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        pil = pil.convert("L" if pil.mode == "1" else "RGB")
    arr = np.asarray(pil)
    if pil.mode.startswith("I;16"):
        arr = arr.astype(np.uint16)
    return arr


def display_window(image: Image, window: tuple[float, float] | None) -> tuple[float, float]:
    """(centre, width) to display: the one asked for, the file's own, or the data's range."""
    if window is not None:
        return float(window[0]), float(window[1])
    meta = image.metadata
    if meta.get("window_center") is not None and meta.get("window_width"):
        return float(meta["window_center"]), float(meta["window_width"])
    lo, hi = np.percentile(image.array, [0.5, 99.5]) if image.array.size > 1 else (0, 1)
    if image.array.dtype == np.uint8:
        lo, hi = 0, 255
    return (float(lo) + float(hi)) / 2, max(float(hi) - float(lo), 1e-6)


def write_png(
    image: Image, path: Path, *, window: tuple[float, float] | None = None, slice_index: int | None = None
) -> None:
    """Write a 2D image (or one slice of a 3D one) as an 8-bit PNG.

    Intensities go through a display window (``window=(centre, width)``; by default the
    file's own window, else the 0.5-99.5 percentile range); labels are written as their
    values (uint8, or uint16 above 255). MONOCHROME1 images are inverted for display.
    """
    from PIL import Image as PILImage

    array = image.array
    if image.ndim == 3:
        if slice_index is None:
            if image.spatial_shape[2] != 1:
                raise GeometryError(
                    f"PNG holds a 2D image but this one is 3D {image.spatial_shape}",
                    path=path,
                    hint="Choose a slice (CLI: --slice K) or write NIfTI instead",
                )
            slice_index = 0
        array = array[..., slice_index]
    if array.shape[0] not in (1, 3, 4):
        raise GeometryError(f"PNG holds 1, 3 or 4 channels, not {array.shape[0]}", path=path)
    if image.kind == "label":
        if array.min() < 0 or array.max() > 65535:
            raise GeometryError("label values must lie in 0..65535 to be written as PNG", path=path)
        pixels = array.astype(np.uint8 if array.max() <= 255 else np.uint16)
    else:
        centre, width = display_window(image, window)
        scaled = (array.astype(np.float32) - (centre - width / 2)) / width
        pixels = np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)
        if image.metadata.get("photometric") == "MONOCHROME1":
            pixels = 255 - pixels
    pixels = np.swapaxes(np.moveaxis(pixels, 0, -1), 0, 1)  # (rows=J, cols=I, C)
    pil = PILImage.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
