"""What `medsight info` reports: geometry and value range of each image (series) at a path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsight.image import Image


def describe(image: Image, path: str | Path) -> dict:
    """JSON-friendly summary: shape and spacing in ``i, j[, k]`` order, RAS+ origin and direction."""
    meta = image.metadata
    finite = image.array[np.isfinite(image.array)] if image.array.dtype.kind == "f" else image.array
    out = {
        "path": str(path),
        "format": meta.get("format"),
        "modality": meta.get("modality"),
        "shape": list(image.spatial_shape),
        "channels": image.num_channels,
        "spacing": [round(s, 6) for s in image.spacing],
        "origin": [round(o, 4) for o in image.origin],
        "direction": np.round(image.direction, 6).tolist(),
        "orientation": image.orientation,
        "dtype": str(image.array.dtype),
        "min": _number(finite.min()) if finite.size else None,
        "max": _number(finite.max()) if finite.size else None,
        "series_uid": meta.get("series_uid"),
        "n_files": meta.get("n_files", 1),
    }
    for key in (
        "series_number",
        "series_description",
        "patient_id",
        "patient_sex",
        "patient_age",
        "study_uid",
        "study_date",
        "manufacturer",
        "manufacturer_model",
        "institution",
        "body_part",
        "window_center",
        "window_width",
        "transfer_syntax",
        "sop_class",
        "description",
        "notes",
        "warnings",
    ):
        if meta.get(key) not in (None, "", []):
            out[key] = meta[key]
    return out


def _number(value):
    return value.item() if hasattr(value, "item") else value


def summarize(path: str | Path, *, series: str | int | None = None, irregular: str = "error") -> list[dict]:
    """One summary per image at `path`: per image series for a DICOM folder.

    A folder holding only non-image objects (SEG, SR, RT) lists those, marked
    ``"is_image": false``.
    """
    from medsight.io._dispatch import read
    from medsight.io._medmnist import MedMNISTDataset

    path = Path(path)
    if path.is_dir():
        from medsight.io.dicom import list_series, read_series
        from medsight.io.dicom._scan import choose_series

        found = list_series(path)
        if series is not None:
            found = [choose_series(found, series, path)]
        images = [s for s in found if s.is_image]
        if not images:
            return [
                {
                    "path": str(path),
                    "is_image": False,
                    "modality": s.modality,
                    "sop_class": s.sop_class,
                    "series_uid": s.series_uid,
                    "n_files": s.n_files,
                }
                for s in found
            ]
        return [describe(read_series(s, irregular=irregular), path) for s in images]
    result = read(path, irregular=irregular)
    if isinstance(result, MedMNISTDataset):
        return [result.summary()]
    return [describe(result, path)]
