"""DICOM Segmentation (SEG) objects: label map -> SEG and SEG -> label map, through highdicom.

Axes: our label array ``(1, I, J, K)`` has ``i`` along a DICOM row (column index),
``j`` down a column (row index) and ``k`` over the source slices in the order
`read` sorts them (``metadata["files"]``). highdicom works on ``(frame, row, column)``
arrays, so frame ``k`` is ``array[0, :, :, k].T``, and its volume affine maps
``(slice, row, column)`` to LPS+ mm.

pydicom and highdicom are imported inside the functions that need them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from medsight.errors import (
    FormatError,
    GeometryError,
    MissingDependencyError,
    NotFoundError,
    UnsupportedError,
)
from medsight.image import LPS_TO_RAS, Image

__all__ = ["SEG_SOP_CLASSES", "integer_labels", "is_seg_file", "read_seg", "write_seg"]

# Segmentation Storage (BINARY, FRACTIONAL) and Label Map Segmentation Storage (DICOM 2024).
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
_POSITION_TOL = 0.01  # mm: decimal strings in headers round positions
_DIRECTION_TOL = 1e-4  # on unit vectors


def integer_labels(label_map: Image) -> np.ndarray:
    """The spatial array of a one-channel label map as non-negative integers.

    Floats are accepted when every value is a whole number (NIfTI masks are often
    stored as float32); they are converted to the smallest unsigned type that holds them.

    Raises
    ------
    FormatError
        Several channels, values that are not whole numbers, or negative values.
    """
    where = label_map.metadata.get("path")
    if label_map.num_channels != 1:
        raise FormatError(
            f"a label map has one channel, this image has {label_map.num_channels}",
            path=where,
            hint="Pass a label map (one integer value per voxel), not an intensity or RGB image",
        )
    array = label_map.array[0]
    if array.dtype == bool:
        return array.view(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
            raise FormatError(f"a label map cannot hold {array.dtype} values", path=where)
        if not np.array_equal(array, np.round(array)):
            raise FormatError(
                "not a label map: values are not whole numbers (probabilities or intensities?)",
                path=where,
                hint="Threshold or argmax the prediction first, or pass the label map instead of the image",
            )
    lowest = array.min() if array.size else 0
    if lowest < 0:
        raise FormatError(
            f"not a label map: it holds negative values (down to {lowest:g})",
            path=where,
            hint="Labels are 0 for background and positive integers for structures",
        )
    if np.issubdtype(array.dtype, np.integer):
        return array
    return array.astype(np.min_scalar_type(int(array.max()) if array.size else 0))


def is_seg_file(path: str | os.PathLike) -> bool:
    """Whether `path` is a DICOM Segmentation object (reads the header only)."""
    from medsight.io._sniff import sniff
    from medsight.io.dicom._scan import read_header

    path = Path(path)
    if not path.is_file() or sniff(path) != "dicom":
        return False
    return str(read_header(path).get("SOPClassUID", "")) in SEG_SOP_CLASSES


def write_seg(
    label_map: Image,
    source_files: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    *,
    names: Mapping[int, str] | None = None,
    algorithm: str | None = "MedSight",
    segmentation_type: Literal["binary", "labelmap"] = "binary",
    series_description: str = "Segmentation",
    series_number: int = 300,
) -> Path:
    """Write a label map as a DICOM SEG that references the source instances.

    Parameters
    ----------
    label_map : Image
        One channel of non-negative integers, shape ``(1, I, J, K)``, on the grid
        of the source series as `medsight.io.read` gives it (``K`` slices).
    source_files : sequence of path
        The source series' files in slice order: ``read(folder).metadata["files"]``.
    path : str or PathLike
        Output ``.dcm`` file, written atomically.
    names : mapping of int to str, optional
        Segment labels by label value; default ``metadata["label_names"]`` of the
        label map, else ``"label N"``. At most 64 characters each.
    algorithm : str or None
        Name of the algorithm that made the label map (segment algorithm type
        AUTOMATIC, family Artificial Intelligence); None for a MANUAL segmentation.
    segmentation_type : {"binary", "labelmap"}
        BINARY (one bit-packed frame per segment and slice, read everywhere) or
        LABELMAP (one frame per slice, DICOM 2024 onwards).
    series_description : str
    series_number : int

    Returns
    -------
    Path

    Notes
    -----
    Only labels present in the map become segments: a SEG never describes an empty
    segment. BINARY segment numbers must run 1..n, so when the present labels have
    gaps (e.g. 1, 3, 7) they are renumbered 1..n in ascending order (names follow
    their labels); LABELMAP keeps the label values as segment numbers.
    Frames that hold no segment are omitted, as highdicom does by default.

    Raises
    ------
    FormatError
        Not a label map, or no label > 0 at all.
    GeometryError
        The label map is not on the source series' grid.
    UnsupportedError
        A 2D label map (projection radiograph: highdicom 0.28 cannot read such SEGs
        back), or a multi-frame source (enhanced CT/MR).
    """
    hd, pydicom = _import_highdicom("writing")
    from pydicom.sr.codedict import codes

    from medsight import __version__
    from medsight.io._atomic import atomic_path

    if segmentation_type not in ("binary", "labelmap"):
        raise ValueError(f"segmentation_type must be 'binary' or 'labelmap', not {segmentation_type!r}")
    labels = integer_labels(label_map)
    if label_map.ndim != 3:
        raise UnsupportedError(
            "DICOM SEG of a 2D image (radiograph) is not supported",
            path=label_map.metadata.get("path"),
            hint="Write the label map as PNG or NIfTI instead",
        )
    present = [int(v) for v in np.unique(labels) if v > 0]
    if not present:
        raise FormatError(
            "the label map is empty (no label > 0): a SEG needs at least one segment",
            path=label_map.metadata.get("path"),
        )
    names = {**label_map.metadata.get("label_names", {}), **(names or {})}
    names = {int(k): str(v) for k, v in names.items()}
    for value in present:
        if len(names.get(value, "")) > 64:
            raise ValueError(f"segment name for label {value} is longer than 64 characters (DICOM LO)")
    source_files = [Path(f) for f in source_files]
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in source_files]
    _check_grid(label_map, datasets, source_files)

    renumber = segmentation_type == "binary" and present != list(range(1, len(present) + 1))
    numbers = list(range(1, len(present) + 1)) if renumber else present
    dtype = np.uint8 if numbers[-1] < 256 else np.uint16
    frames = labels.T  # (K, rows, columns)
    if renumber:
        lut = np.zeros(int(labels.max()) + 1, dtype=dtype)
        lut[present] = numbers
        frames = lut[frames]
    frames = np.ascontiguousarray(frames, dtype=dtype)

    if algorithm is None:
        algorithm_type, identification = "MANUAL", None
    else:
        algorithm_type = "AUTOMATIC"
        identification = hd.AlgorithmIdentificationSequence(
            name=algorithm, family=codes.cid7162.ArtificialIntelligence, version=__version__
        )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=names.get(value, f"label {value}"),
            # Generic Tissue/Tissue (CID 7150/7151): we do not know what each label is.
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=algorithm_type,
            algorithm_identification=identification,
        )
        for number, value in zip(numbers, present)
    ]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=frames,
        segmentation_type=segmentation_type.upper(),
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="MedSight",
        manufacturer_model_name="MedSight",
        software_versions=__version__,
        device_serial_number="none",
        series_description=series_description,
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return path


def read_seg(path: str | os.PathLike, *, source: Image | str | os.PathLike | None = None) -> Image:
    """Read a DICOM SEG into a label map (values = segment numbers).

    Parameters
    ----------
    path : str or PathLike
        A DICOM Segmentation file (BINARY, FRACTIONAL or LABELMAP).
    source : Image, str or PathLike, optional
        The image the SEG was drawn on (an `Image` or a path `read` accepts). The
        label map is then on its grid. Without it, the SEG's own geometry is used.

    Returns
    -------
    Image
        ``kind="label"``, shape ``(1, I, J, K)``, uint8 or uint16;
        ``metadata["label_names"]`` maps segment numbers to segment labels.

    Notes
    -----
    With a DICOM source (``metadata["files"]``), frames are matched to source
    slices by referenced SOP Instance UID; otherwise (a NIfTI source, or a SEG
    that references other instances) by position: the SEG's own volume is resampled
    onto the source grid with nearest neighbour. Without a source, the volume's
    ``k`` axis runs along ``row x column``, as `read` orders DICOM slices.
    FRACTIONAL segments are thresholded at 0.5. Where segments overlap, the
    highest segment number wins, and ``metadata["warnings"]`` counts the voxels.
    """
    hd, _ = _import_highdicom("reading")
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("no such file", path=path, hint="Check the path of the DICOM SEG file")
    if not is_seg_file(path):
        raise FormatError(
            "not a DICOM Segmentation (SEG) file",
            path=path,
            hint="Read images and NIfTI/NRRD label maps with medsight.io.read",
        )
    seg = hd.seg.segread(path)
    if isinstance(source, (str, os.PathLike)):
        from medsight.io import read

        source = read(source)
    uids = _source_uids(seg, source)
    if uids is not None:
        # dcmqi and others omit SpatialLocationsPreserved; the frames are the source's size,
        # and referencing an instance is what a SEG's frames mean.
        array, warnings = _combine(
            seg,
            lambda **kw: seg.get_pixels_by_source_instance(
                [u for u in uids if u is not None], ignore_spatial_locations=True, **kw
            ),
        )
        full = np.zeros((len(uids), *array.shape[1:]), dtype=array.dtype)
        full[[i for i, u in enumerate(uids) if u is not None]] = array
        voxels = full.T[None] if source.ndim == 3 else full[0].T[None]
        image = Image(voxels, source.affine, kind="label")
    else:
        image, warnings = _own_volume(seg, path)
        if source is not None:
            image = image.resample(like=source)
    image.metadata = {
        "modality": "SEG",
        "path": str(path),
        "series_uid": str(seg.SeriesInstanceUID),
        # LABELMAP SEGs describe the background as segment 0: not a label.
        "label_names": {
            int(d.SegmentNumber): str(d.SegmentLabel) for d in seg.SegmentSequence if d.SegmentNumber
        },
        "segmentation_type": seg.segmentation_type.value,
    }
    if warnings:
        image.metadata["warnings"] = warnings
    return image


def _import_highdicom(doing: str):
    try:
        import highdicom
        import pydicom
    except ImportError as exc:  # pragma: no cover - both are in the [dicom] extra
        raise MissingDependencyError(
            f"{doing} DICOM SEG needs highdicom and pydicom", hint="pip install 'medsight[dicom]'"
        ) from exc
    return highdicom, pydicom


def _check_grid(label_map: Image, datasets: list, files: list[Path]) -> None:
    """Refuse a label map that is not on the source series' grid, naming what differs."""
    where = files[0].parent if files else None
    if not datasets:
        raise ValueError("source_files is empty: pass the source series' files in slice order")
    if any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in datasets):
        raise UnsupportedError(
            "a multi-frame source image (enhanced CT/MR)",
            path=files[0],
            hint="Write SEGs for single-frame series (one file per slice)",
        )
    shape = label_map.spatial_shape
    if shape[2] != len(datasets):
        raise GeometryError(
            f"the label map has {shape[2]} slices, the source series {len(datasets)} files",
            path=where,
            hint="Pass the files of the series the label map was made on, in slice order",
        )
    lps = LPS_TO_RAS @ label_map.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_col = np.concatenate([lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]])
    for k, (ds, file) in enumerate(zip(datasets, files)):
        problem = None
        if (int(ds.Rows), int(ds.Columns)) != (shape[1], shape[0]):
            problem = f"is {ds.Columns} x {ds.Rows} pixels, the label map {shape[0]} x {shape[1]}"
        elif "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            problem = "has no ImagePositionPatient/ImageOrientationPatient (a SEG needs them)"
        elif not np.allclose(np.array(ds.ImageOrientationPatient, float), row_col, atol=_DIRECTION_TOL):
            problem = "has another orientation than the label map"
        elif not np.allclose(np.array(ds.get("PixelSpacing", [1, 1]), float), spacing[[1, 0]], rtol=1e-4):
            problem = (
                f"has pixel spacing {list(ds.PixelSpacing)} mm, the label map {spacing[[1, 0]].tolist()}"
            )
        elif not np.allclose(
            np.array(ds.ImagePositionPatient, float), lps[:3, 3] + k * lps[:3, 2], atol=_POSITION_TOL
        ):
            problem = f"is not at the position of label map slice k={k}"
        if problem:
            raise GeometryError(
                f"the label map is not on the source grid: source file {file.name} {problem}",
                path=where,
                hint="Pass the series the label map was predicted on, its files in slice order "
                "(read(folder).metadata['files']), or resample the label map onto it first",
            )


def _source_uids(seg, source: Image | None) -> list[str | None] | None:
    """Per source slice, its SOP Instance UID if the SEG references it; None when no slice matches."""
    import pydicom

    files = source.metadata.get("files") if source is not None else None
    slices = source.spatial_shape[2] if source is not None and source.ndim == 3 else 1
    # One file per slice, frames of the source's size: otherwise match by position instead.
    if not files or len(files) != slices or (seg.Rows, seg.Columns) != source.spatial_shape[1::-1]:
        return None
    referenced = {sop for _, _, sop in seg.get_source_image_uids()}
    uids = [
        str(pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
        for f in files
    ]
    uids = [u if u in referenced else None for u in uids]
    return uids if any(uids) else None


def _combine(seg, fetch) -> tuple[np.ndarray, list[str]]:
    """One label array ``(frames, rows, columns)`` from all segments; the highest number wins overlaps.

    `fetch(segment_numbers=..., combine_segments=...)` returns highdicom's array for
    a source-instance or volume query.
    """
    if seg.segmentation_type.value == "LABELMAP":  # one value per pixel: cannot overlap
        return fetch(combine_segments=True), []
    numbers = sorted(int(n) for n in seg.segment_numbers)
    labels = None
    overlap = 0
    for number in numbers:  # one segment at a time: memory stays at one mask, not one per segment
        mask = fetch(segment_numbers=[number], combine_segments=False)[..., 0] >= 0.5
        if labels is None:
            labels = np.zeros(mask.shape, dtype=np.uint8 if numbers[-1] < 256 else np.uint16)
        overlap += int(np.count_nonzero(labels[mask]))
        labels[mask] = number
    warnings = []
    if overlap:
        warnings.append(f"segments overlap in {overlap} voxels; the highest segment number was kept there")
    return labels, warnings


def _own_volume(seg, path: Path) -> tuple[Image, list[str]]:
    """The SEG on its own geometry, ``k`` along row x column, and the overlap warnings."""
    if seg.get_volume_geometry() is None:
        raise UnsupportedError(
            "this SEG has no volume geometry of its own (a projection image, or irregular frames)",
            path=path,
            hint="Pass the image it was drawn on: read_seg(path, source=...) or --source/--image",
        )
    volume = None

    def fetch(**kw):
        nonlocal volume
        volume = seg.get_volume(**kw)
        return volume.array

    array, warnings = _combine(seg, fetch)
    lps = volume.affine[:, [2, 1, 0, 3]]  # (column, row, slice) -> (i, j, k)
    voxels = array.T
    if np.dot(np.cross(lps[:3, 0], lps[:3, 1]), lps[:3, 2]) < 0:
        voxels = voxels[..., ::-1]
        lps[:3, 3] += (voxels.shape[2] - 1) * lps[:3, 2]
        lps[:3, 2] *= -1
    return Image(np.ascontiguousarray(voxels)[None], LPS_TO_RAS @ lps, kind="label"), warnings
