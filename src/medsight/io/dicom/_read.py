"""Read a DICOM file, multi-frame object or series into an `Image` in RAS+ geometry.

Array axes follow ITK: ``i`` runs along a row (DICOM column index, direction =
first ImageOrientationPatient triplet), ``j`` down the columns (second triplet),
``k`` along the slice normal ``row x col``, slices sorted by their position on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from medsight.errors import FormatError, NotAnImageError, SeriesError, UnsupportedError
from medsight.image import LPS_TO_RAS, Image
from medsight.io.dicom._metadata import collect_metadata
from medsight.io.dicom._pixels import decode_all
from medsight.io.dicom._scan import (
    NON_IMAGE_SOP_PREFIXES,
    WHOLE_SLIDE_SOP,
    SeriesInfo,
    choose_series,
    has_pixels,
    is_image_dataset,
    read_header,
    scan_folder,
    sop_class_name,
)

Irregular = Literal["error", "resample"]

# Positions and directions in headers are decimal strings: allow for their rounding.
_ORIENTATION_TOL = 1e-4
_TILT_TOL = 1e-3  # sine of the angle between the slice step and the slice normal (~0.06 deg)


@dataclass
class _Frame:
    """One 2D plane of a series: which data set and frame, and where it is (LPS mm)."""

    ds: object
    index: int
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float


def read_dicom(path: str | Path, *, series: str | int | None = None, irregular: Irregular = "error") -> Image:
    """Read a DICOM file or a folder holding one or more series.

    Parameters
    ----------
    path : str or Path
        A DICOM file (single- or multi-frame) or a folder (searched recursively).
    series : str or int, optional
        SeriesInstanceUID or SeriesNumber, needed when the folder holds several series.
    irregular : {"error", "resample"}
        What to do with missing slices or non-uniform slice spacing: raise a
        `SeriesError` that reports them, or interpolate linearly onto a uniform grid
        at the smallest spacing (and say so in ``metadata["warnings"]``).

    Returns
    -------
    Image
        Stored values with rescale slope and intercept applied (CT in HU).
    """
    if irregular not in ("error", "resample"):
        raise ValueError(f"irregular must be 'error' or 'resample', not {irregular!r}")
    path = Path(path)
    if path.is_dir():
        info = choose_series(scan_folder(path), series, path)
        return read_series(info, irregular=irregular)
    ds = read_header(path)
    info = SeriesInfo(
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        series_number=None,
        modality=str(ds.get("Modality", "")),
        description=str(ds.get("SeriesDescription", "")),
        sop_class=sop_class_name(ds),
        is_image=is_image_dataset(ds),
        files=[path],
        datasets=[ds],
    )
    return read_series(info, irregular=irregular)


def read_series(info: SeriesInfo, *, irregular: Irregular = "error") -> Image:
    """Build the volume of one series found by `scan_folder` (or a one-file series)."""
    where = info.files[0] if info.n_files == 1 else info.files[0].parent
    if (
        not info.is_image
        and not any(has_pixels(ds) for ds in info.datasets)
        and not any(str(ds.get("SOPClassUID", "")).startswith(NON_IMAGE_SOP_PREFIXES) for ds in info.datasets)
    ):
        raise FormatError(
            f"DICOM {info.sop_class} file has no pixel data",
            path=where,
            hint="The pixel data may have been stripped; use the original file",
        )
    if not info.is_image:
        hint = "Pass the image series it refers to"
        if info.modality.upper() == "SEG":
            hint = (
                "It is a segmentation: read it with medsight.io.read_seg(path, source=...) "
                "or measure it with `medsight measure`"
            )
        raise NotAnImageError(
            f"a DICOM {info.sop_class} object ({info.modality or 'no modality'}), not an image",
            path=where,
            hint=hint,
        )
    datasets = [ds for ds in info.datasets if is_image_dataset(ds)]
    if any(str(ds.get("SOPClassUID", "")) == WHOLE_SLIDE_SOP for ds in datasets):
        raise UnsupportedError(
            "a whole-slide microscopy image (tiled pyramid), not a radiology image",
            path=where,
            hint="Use a whole-slide reader such as wsidicom or highdicom",
        )
    _check_consistent(datasets, info, where)
    frames = [f for ds in datasets for f in _frames(ds)]
    if len(frames) == 1 or frames[0].position is None:
        affine, order, warnings = _planar_geometry(frames)
    else:
        affine, order, warnings = _stack_geometry(frames, where)
    if warnings and irregular != "resample":  # report before spending time on decoding
        raise SeriesError(
            "; ".join(warnings),
            path=where,
            hint="Pass irregular='resample' (CLI: --irregular resample) to interpolate onto a uniform grid",
        )
    voxels = _pixels(frames, order, info)
    spacing_k = None
    if warnings:
        voxels, spacing_k, warnings = _resample_slices(voxels, frames, order, warnings)
        affine[:3, 2] *= spacing_k / np.linalg.norm(affine[:3, 2])
    if _is_projection(frames):
        voxels = voxels[..., 0]
    metadata = collect_metadata(datasets[0], n_files=len(datasets))
    path_of = {id(ds): p for p, ds in zip(info.files, info.datasets)}
    metadata["files"] = list(dict.fromkeys(str(path_of[id(frames[o].ds)]) for o in order))
    if spacing_k is not None:
        metadata["warnings"] = warnings
    return Image(voxels, LPS_TO_RAS @ affine, kind="intensity", metadata=metadata)


def _check_consistent(datasets, info: SeriesInfo, where: Path) -> None:
    sizes = {(int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) for ds in datasets}
    if len(sizes) > 1:
        listed = ", ".join(f"{c}x{r}" for r, c in sorted(sizes))
        raise SeriesError(
            f"series {info.series_uid} mixes image sizes ({listed})",
            path=where,
            hint="It holds more than one stack (e.g. a localizer); separate the files into folders",
        )
    orientations = {
        tuple(np.round(np.array(ds.ImageOrientationPatient, dtype=float), 3))
        for ds in datasets
        if "ImageOrientationPatient" in ds
    }
    if len(orientations) > 1:
        raise SeriesError(
            f"series {info.series_uid} mixes {len(orientations)} slice orientations",
            path=where,
            hint="It holds more than one stack (e.g. a localizer); separate the files into folders",
        )


def _frames(ds) -> list[_Frame]:
    """The planes of a data set, with their geometry (per-frame for enhanced objects)."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) == n:
        return [_enhanced_frame(ds, i, per_frame[i], shared) for i in range(n)]
    position = _floats(ds, "ImagePositionPatient")
    orientation = _floats(ds, "ImageOrientationPatient")
    spacing = _pixel_spacing(ds)
    slope, intercept = _rescale(ds)
    if n == 1:
        return [_Frame(ds, 0, position, orientation, spacing, slope, intercept)]
    offsets = _floats(ds, "GridFrameOffsetVector")  # RT dose and some NM: offsets along the normal
    if position is not None and orientation is not None and offsets is not None and len(offsets) == n:
        normal = np.cross(orientation[:3], orientation[3:])
        return [
            _Frame(ds, i, position + o * normal, orientation, spacing, slope, intercept)
            for i, o in enumerate(offsets)
        ]
    # Frames with no positions (cine, legacy multi-frame): a stack on k, spacing from the header.
    return [_Frame(ds, i, None, orientation, spacing, slope, intercept) for i in range(n)]


def _enhanced_frame(ds, i: int, frame, shared) -> _Frame:
    def group(name):
        for source in (frame, shared):
            if source is not None and name in source:
                return source[name][0]
        return None

    plane = group("PlanePositionSequence")
    orient = group("PlaneOrientationSequence")
    measures = group("PixelMeasuresSequence")
    transform = group("PixelValueTransformationSequence")
    slope, intercept = _rescale(transform if transform is not None else ds)
    return _Frame(
        ds,
        i,
        _floats(plane, "ImagePositionPatient"),
        _floats(orient, "ImageOrientationPatient"),
        _pixel_spacing(measures if measures is not None else ds),
        slope,
        intercept,
    )


def _floats(ds, keyword: str) -> np.ndarray | None:
    """A numeric element (single or multi-valued) as a float array; None when absent or empty."""
    value = ds.get(keyword) if ds is not None else None
    if value is None or value == "":
        return None
    return np.atleast_1d(np.array(value, dtype=float))


def _pixel_spacing(ds) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _floats(ds, keyword)
        if value is not None and len(value) == 2 and np.all(value > 0):
            return float(value[0]), float(value[1])
    return None


def _rescale(ds) -> tuple[float, float]:
    """(slope, intercept); RT dose grids scale by DoseGridScaling instead."""
    slope = _floats(ds, "RescaleSlope")
    if slope is None:
        slope = _floats(ds, "DoseGridScaling")
    intercept = _floats(ds, "RescaleIntercept")
    return (1.0 if slope is None else float(slope[0]), 0.0 if intercept is None else float(intercept[0]))


_LPS_LETTERS = {
    "L": (1, 0, 0),
    "R": (-1, 0, 0),
    "P": (0, 1, 0),
    "A": (0, -1, 0),
    "H": (0, 0, 1),
    "F": (0, 0, -1),
}


def _planar_geometry(frames: list[_Frame]) -> tuple[np.ndarray, list[int], list[str]]:
    """Affine of a single plane, or of frames stacked without positions."""
    first = frames[0]
    ds = first.ds
    affine = np.eye(4)
    row_col = None
    if first.orientation is not None and len(first.orientation) == 6:
        row_col = first.orientation[:3], first.orientation[3:]
    elif "PatientOrientation" in ds and len(ds.PatientOrientation) == 2:
        # Projection radiographs: letters give the directions of the rows and columns.
        try:
            vecs = [np.sum([_LPS_LETTERS[c] for c in str(v).upper()], axis=0) for v in ds.PatientOrientation]
            if all(np.linalg.norm(v) > 0 for v in vecs) and abs(np.dot(*vecs)) < 1e-6:
                row_col = tuple(v / np.linalg.norm(v) for v in vecs)
        except KeyError:
            pass
    if row_col is not None:
        normal = np.cross(*row_col)
        affine[:3, :3] = np.column_stack([row_col[0], row_col[1], normal])
    dy, dx = first.pixel_spacing or (1.0, 1.0)
    dz = 1.0
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(keyword)
        if value not in (None, "") and float(value) > 0:
            dz = float(value)
            break
    affine[:3, :3] = affine[:3, :3] * np.array([dx, dy, dz])
    if first.position is not None:
        affine[:3, 3] = first.position
    return affine, list(range(len(frames))), []


def _is_projection(frames: list[_Frame]) -> bool:
    """A single plane with no position in the patient (radiograph, photo): a 2D image."""
    return len(frames) == 1 and frames[0].position is None and frames[0].orientation is None


def _stack_geometry(frames: list[_Frame], where: Path) -> tuple[np.ndarray, list[int], list[str]]:
    """Sort planes along the slice normal and check the stack is a regular grid.

    Returns the LPS affine, the sorted frame order, and a list of irregularities
    (missing slices, uneven spacing) that the caller reports or resamples.
    """
    orientation = frames[0].orientation
    if orientation is None or len(orientation) != 6:
        raise SeriesError("slices have positions but no ImageOrientationPatient", path=where)
    row, col = orientation[:3], orientation[3:]
    normal = np.cross(row, col)
    positions = np.array([f.position for f in frames])
    along = positions @ normal
    order = list(np.argsort(along, kind="stable"))
    along = along[order]
    steps = np.diff(along)
    if np.any(steps < 1e-3):
        dup = int(np.sum(steps < 1e-3))
        raise SeriesError(
            f"{dup} slice position(s) occur more than once (several time points, echoes or acquisitions "
            "in one series?)",
            path=where,
            hint="Separate the acquisitions into folders, or pick them by AcquisitionNumber/EchoNumbers",
        )
    sorted_pos = positions[order]
    step_vectors = np.diff(sorted_pos, axis=0)
    lateral = step_vectors - np.outer(steps, normal)
    sine = np.linalg.norm(lateral, axis=1) / np.linalg.norm(step_vectors, axis=1)
    if np.max(sine) > _TILT_TOL:
        angle = float(np.degrees(np.arcsin(np.max(sine))))
        raise UnsupportedError(
            f"slices are sheared by {angle:.2f} degrees (gantry or detector tilt): the volume is not "
            "a rectangular grid",
            path=where,
            hint="Correct the tilt first (e.g. dcm2niix does), then read the corrected series",
        )
    warnings = _spacing_problems(along)
    spacing = (along[-1] - along[0]) / (len(along) - 1)
    dy, dx = frames[0].pixel_spacing or (1.0, 1.0)
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([row * dx, col * dy, normal * spacing])
    affine[:3, 3] = sorted_pos[0]
    return affine, order, warnings


def _spacing_problems(along: np.ndarray) -> list[str]:
    steps = np.diff(along)
    smallest = float(steps.min())
    tol = max(0.01, 0.01 * smallest)
    if np.all(np.abs(steps - smallest) <= tol):
        return []
    problems = []
    multiples = np.round(steps / smallest)
    gaps = np.where((multiples >= 2) & (np.abs(steps - multiples * smallest) <= tol * multiples))[0]
    for g in gaps:
        problems.append(
            f"about {int(multiples[g]) - 1} slice(s) missing between {along[g]:.2f} and {along[g + 1]:.2f} mm"
        )
    if len(gaps) < np.sum(np.abs(steps - smallest) > tol):
        problems.append(f"slice spacing is not uniform (steps from {smallest:.3g} to {steps.max():.3g} mm)")
    return problems


def _pixels(frames: list[_Frame], order: list[int], info: SeriesInfo) -> np.ndarray:
    """Channel-first voxels ``(C, I, J, K)`` with rescale applied, in `order`."""
    path_of = {id(ds): p for p, ds in zip(info.files, info.datasets)}
    unique = list({id(f.ds): f.ds for f in frames}.values())
    decoded = dict(zip((id(ds) for ds in unique), decode_all(unique, [path_of[id(ds)] for ds in unique])))
    stack = np.stack([decoded[id(frames[o].ds)][frames[o].index] for o in order])  # (K, rows, cols[, s])
    slopes = np.array([frames[o].slope for o in order])
    intercepts = np.array([frames[o].intercept for o in order])
    stack = _apply_rescale(stack, slopes, intercepts)
    if stack.ndim == 3:
        return stack.T[None]  # (1, I=cols, J=rows, K)
    return stack.transpose(3, 2, 1, 0)


def _apply_rescale(stack: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """Apply per-slice slope and intercept; integers stay integers when exact."""
    if np.all(slopes == 1) and np.all(intercepts == 0):
        return stack
    integral = np.all(slopes == np.round(slopes)) and np.all(intercepts == np.round(intercepts))
    if integral and np.issubdtype(stack.dtype, np.integer) and stack.dtype.itemsize <= 2:
        # The smallest signed type that holds the rescaled values actually present.
        lo, hi = int(stack.min()), int(stack.max())
        ends = np.concatenate([slopes * lo + intercepts, slopes * hi + intercepts])
        dtype = np.int16 if ends.min() >= -32768 and ends.max() <= 32767 else np.int32
    elif integral and np.issubdtype(stack.dtype, np.integer):
        dtype = np.int64 if stack.dtype.itemsize >= 4 else np.int32
    else:
        dtype = np.float32
    out = stack.astype(dtype)
    shape = (-1,) + (1,) * (stack.ndim - 1)
    if np.all(slopes == slopes[0]) and np.all(intercepts == intercepts[0]):
        if slopes[0] != 1:
            out *= dtype(slopes[0])
        out += dtype(intercepts[0])
    else:
        out *= slopes.astype(dtype).reshape(shape)
        out += intercepts.astype(dtype).reshape(shape)
    return out


def _resample_slices(voxels, frames, order, warnings):
    """Interpolate an irregular stack linearly onto a uniform grid at its smallest step."""
    normal = np.cross(frames[0].orientation[:3], frames[0].orientation[3:])
    along = np.array([frames[o].position @ normal for o in order])
    step = float(np.diff(along).min())
    targets = along[0] + step * np.arange(int(round((along[-1] - along[0]) / step)) + 1)
    upper = np.clip(np.searchsorted(along, targets, side="right"), 1, len(along) - 1)
    weight = ((targets - along[upper - 1]) / (along[upper] - along[upper - 1])).astype(np.float32)
    src = voxels.astype(np.float32)
    out = src[..., upper - 1] * (1 - weight) + src[..., upper] * weight
    note = f"slices interpolated onto a uniform {step:.3g} mm grid ({len(along)} -> {len(targets)})"
    return out, step, warnings + [note]
