"""Per-label measurements of a label map: size, surface, extent, position, intensity inside.

One pass of `scipy.ndimage.find_objects` finds every label's bounding box; everything
else is computed on that box only, so a dozen organs in a 512 x 512 x 300 CT cost
about as much as reading it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from medsight.errors import GeometryError
from medsight.image import Image
from medsight.io.dicom._seg import integer_labels

__all__ = ["measure_file", "measure_labels"]


def measure_labels(
    label_map: Image,
    *,
    image: Image | None = None,
    names: Mapping[int, str] | None = None,
    resample_image: bool = False,
) -> list[dict]:
    """Measure every label > 0 present in a label map.

    Parameters
    ----------
    label_map : Image
        One channel of non-negative integers (whole-number floats are accepted),
        2D ``(1, I, J)`` or 3D ``(1, I, J, K)``.
    image : Image, optional
        One-channel image whose mean and SD inside each label are reported. It must
        be on the label map's grid unless `resample_image` is True.
    names : mapping of int to str, optional
        Label names; default ``label_map.metadata["label_names"]``.
    resample_image : bool
        Resample `image` onto the label map's grid (linear) when the grids differ.

    Returns
    -------
    list of dict
        One dict per label, in ascending label order, with keys:

        - ``label`` (int), ``name`` (str or None), ``voxels`` (int);
        - 3D: ``volume_ml`` (voxels x voxel volume / 1000) and ``surface_mm2`` (marching
          cubes on the mask padded by one voxel, with the voxel spacing);
          2D: ``area_mm2`` and ``perimeter_mm`` (marching squares, same idea);
        - ``extent_mm``: bounding box size along each voxel axis ``i, j[, k]`` in mm;
        - ``centroid_ras_mm``: the mean voxel position mapped through the affine;
        - with `image`: ``mean`` and ``sd`` (population SD) of its values inside.

    Raises
    ------
    FormatError
        Not a label map (several channels, fractional or negative values).
    GeometryError
        `image` is on another grid (and `resample_image` is False), or has several channels.

    Notes
    -----
    The surface is IBSI's mesh surface (pyradiomics' ``SurfaceArea`` within 1%). On a
    binary mask its staircase makes curved shapes read larger than the smooth truth
    (a sphere by about 5-10%, more with thick slices); flat faces read slightly smaller.
    """
    from scipy import ndimage

    labels = integer_labels(label_map)
    names = {int(k): v for k, v in {**label_map.metadata.get("label_names", {}), **(names or {})}.items()}
    values = _matched_values(label_map, image, resample_image) if image is not None else None
    spacing = np.array(label_map.spacing)
    voxel_volume = float(np.prod(spacing))
    results = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        label = index + 1
        mask = labels[box] == label
        count = int(np.count_nonzero(mask))
        centroid = [
            float(np.average(np.arange(s.start, s.stop), weights=_profile(mask, axis)))
            for axis, s in enumerate(box)
        ]
        row = {"label": label, "name": names.get(label), "voxels": count}
        if label_map.ndim == 3:
            row["volume_ml"] = count * voxel_volume / 1000.0
            row["surface_mm2"] = _surface(mask, spacing)
        else:
            row["area_mm2"] = count * voxel_volume
            row["perimeter_mm"] = _perimeter(mask, spacing)
            centroid.append(0.0)
        row["extent_mm"] = [float((s.stop - s.start) * d) for s, d in zip(box, spacing)]
        row["centroid_ras_mm"] = [float(v) for v in (label_map.affine @ [*centroid, 1.0])[:3]]
        if values is not None:
            inside = values[box][mask].astype(np.float64)
            row["mean"] = float(inside.mean())
            row["sd"] = float(inside.std())
        results.append(row)
    return results


def measure_file(
    path: str | os.PathLike,
    *,
    image: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    resample_image: bool = False,
) -> dict:
    """Measure a label map file: NIfTI, NRRD, MHA, or a DICOM SEG.

    Parameters
    ----------
    path : str or PathLike
        The label map. A DICOM SEG is put on the grid of `source` (else `image`,
        else its own geometry).
    image : str or PathLike, optional
        Image for the mean and SD inside each label.
    source : str or PathLike, optional
        DICOM SEG only: the series (folder) it was drawn on.
    resample_image : bool
        Resample `image` onto the label map's grid when they differ.

    Returns
    -------
    dict
        ``{"path": str, "spacing": [mm, ...], "labels": [...]}`` with `measure_labels`'s rows.
    """
    from medsight.io import read
    from medsight.io.dicom._seg import is_seg_file, read_seg

    path = Path(path)
    intensity = read(image) if image is not None else None
    if is_seg_file(path):
        grid = read(source) if source is not None else intensity
        label_map = read_seg(path, source=grid)
    else:
        label_map = read(path, kind="label")
    rows = measure_labels(label_map, image=intensity, resample_image=resample_image)
    return {"path": str(path), "spacing": list(label_map.spacing), "labels": rows}


def _profile(mask: np.ndarray, axis: int) -> np.ndarray:
    """Voxel counts of `mask` along one axis (the weights of the centroid on that axis)."""
    others = tuple(a for a in range(mask.ndim) if a != axis)
    return mask.sum(axis=others)


def _surface(mask: np.ndarray, spacing: np.ndarray) -> float:
    from skimage import measure

    # Padding closes the surface where the label touches its bounding box.
    padded = np.pad(mask, 1).astype(np.uint8)
    verts, faces, _, _ = measure.marching_cubes(padded, level=0.5, spacing=tuple(spacing))
    return float(measure.mesh_surface_area(verts, faces))


def _perimeter(mask: np.ndarray, spacing: np.ndarray) -> float:
    from skimage import measure

    padded = np.pad(mask, 1).astype(np.uint8)
    length = 0.0
    for contour in measure.find_contours(padded, 0.5):
        length += float(np.sum(np.linalg.norm(np.diff(contour * spacing, axis=0), axis=1)))
    return length


def _matched_values(label_map: Image, image: Image, resample_image: bool) -> np.ndarray:
    """The image's voxels on the label map's grid (or a GeometryError naming both)."""
    if image.num_channels != 1:
        raise GeometryError(
            f"the image has {image.num_channels} channels; mean and SD need one",
            path=image.metadata.get("path"),
            hint="Pass a single-channel image (e.g. one channel of it)",
        )
    if not label_map.same_grid(image):
        if not resample_image:
            raise GeometryError(
                f"the label map {label_map.metadata.get('path', '')} {label_map!r} and the image "
                f"{image.metadata.get('path', '')} {image!r} are on different grids",
                hint="Pass the image the labels were drawn on, or resample it onto the label map "
                "(resample_image=True, CLI --resample-image)",
            )
        image = image.resample(like=label_map)
    return image.array[0]
