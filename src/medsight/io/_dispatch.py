"""`read` and `write`: one entry point each, choosing the format by content and suffix."""

from __future__ import annotations

from pathlib import Path

from medsight.errors import FormatError, NotFoundError, UnsupportedError
from medsight.image import Image, Kind
from medsight.io._sniff import SUFFIXES, format_from_suffix, sniff

READABLE = "DICOM, NIfTI, NRRD, MHA/MHD, PNG, JPEG, TIFF, GIF, BMP, MedMNIST .npz"
WRITABLE = (".nii", ".nii.gz", ".nrrd", ".mha", ".png")


def read(
    path: str | Path,
    *,
    kind: Kind = "intensity",
    series: str | int | None = None,
    irregular: str = "error",
):
    """Read a medical image file or DICOM folder.

    Parameters
    ----------
    path : str or Path
        A file in any format MedSight reads, or a folder of DICOM files.
    kind : {"intensity", "label"}
        How the image will be resampled later (not used to convert voxels).
    series : str or int, optional
        For DICOM folders holding several series: SeriesInstanceUID or number.
    irregular : {"error", "resample"}
        DICOM series with missing slices or uneven spacing: report or interpolate.

    Returns
    -------
    Image, or MedMNISTDataset for a MedMNIST ``.npz`` file.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError("no such file or folder", path=path, hint="Check the path")
    if path.is_dir():
        from medsight.io.dicom import read_dicom

        return read_dicom(path, series=series, irregular=irregular)
    if path.stat().st_size == 0:
        raise FormatError("file is empty", path=path, hint="It may not have been copied completely")
    fmt = sniff(path)
    expected = format_from_suffix(path)
    if fmt is None and expected in ("nrrd", "metaimage") and path.suffix.lower() in (".nhdr", ".mhd"):
        fmt = expected  # detached headers are plain text that a sniff cannot always tell
    if fmt is None:
        said = f" despite its {path.suffix} suffix" if expected else ""
        raise FormatError(
            f"not a recognised image file{said}",
            path=path,
            hint=f"MedSight reads {READABLE}; the file may be corrupt or truncated",
        )
    if fmt == "dicom":
        from medsight.io.dicom import read_dicom

        image = read_dicom(path, irregular=irregular)
    elif fmt == "nifti":
        from medsight.io._volume import read_nifti

        image = read_nifti(path, kind=kind)
    elif fmt in ("nrrd", "metaimage"):
        from medsight.io._volume import read_itk

        image = read_itk(path, kind=kind)
    elif fmt == "raster":
        from medsight.io._raster import read_raster

        image = read_raster(path, kind=kind)
    else:
        from medsight.io._medmnist import read_medmnist

        return read_medmnist(path)
    image.kind = kind
    image.metadata.setdefault("path", str(path))
    return image


def write(
    image: Image,
    path: str | Path,
    *,
    window: tuple[float, float] | None = None,
    slice_index: int | None = None,
) -> Path:
    """Write `image` atomically; the format follows the suffix.

    Parameters
    ----------
    image : Image
    path : str or Path
        ``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha`` or ``.png``. The folder must exist.
    window : (centre, width), optional
        PNG only: the display window for intensities.
    slice_index : int, optional
        PNG only: which k slice of a 3D image to write.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise NotFoundError("output folder does not exist", path=path.parent, hint="Create it first")
    fmt = format_from_suffix(path)
    name = path.name.lower()
    if fmt == "nifti":
        from medsight.io._volume import write_nifti

        write_nifti(image, path)
    elif fmt in ("nrrd", "metaimage"):
        from medsight.io._volume import write_itk

        write_itk(image, path)
    elif name.endswith(".png"):
        from medsight.io._raster import write_png

        write_png(image, path, window=window, slice_index=slice_index)
    else:
        known = ", ".join(WRITABLE)
        raise UnsupportedError(
            f"cannot write {path.suffix or 'files without a suffix'}",
            path=path,
            hint=f"Use one of {known} (or a folder for a DICOM series)",
        )
    return path


__all__ = ["READABLE", "SUFFIXES", "read", "write"]
