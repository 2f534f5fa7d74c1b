"""NIfTI (nibabel), NRRD and MetaImage (SimpleITK): reading and atomic writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsight.errors import FormatError, UnsupportedError
from medsight.image import Image, Kind
from medsight.io._atomic import atomic_path


def read_nifti(path: Path, *, kind: Kind = "intensity") -> Image:
    """Read ``.nii``/``.nii.gz``; scl_slope/scl_inter are applied as the format defines."""
    import nibabel as nib

    try:
        img = nib.load(path)
        image = Image.from_nibabel(img, kind=kind)
        image.array = np.asanyarray(image.array)  # force the read here, inside the try
    except FormatError:
        raise
    except Exception as exc:  # nibabel raises assorted errors on truncated or corrupt files
        raise FormatError(
            f"unreadable NIfTI file ({_first_line(exc)})",
            path=path,
            hint="The file may be truncated or corrupt",
        ) from exc
    header = img.header
    meta = {
        "format": "nifti",
        "sform_code": int(header["sform_code"]),
        "qform_code": int(header["qform_code"]),
    }
    description = header["descrip"].tobytes().rstrip(b"\0").decode("latin-1").strip()
    if description:
        meta["description"] = description
    image.metadata.update(meta)
    return image


def read_itk(path: Path, *, kind: Kind = "intensity") -> Image:
    """Read NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``, ``.mhd``) through SimpleITK."""
    import SimpleITK as sitk

    try:
        itk = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise FormatError(
            f"unreadable image file ({_itk_reason(exc)})",
            path=path,
            hint="The file may be truncated or corrupt",
        ) from exc
    if itk.GetDimension() not in (2, 3):
        raise UnsupportedError(f"a {itk.GetDimension()}D image; MedSight reads 2D and 3D images", path=path)
    meta = {"format": "nrrd" if path.suffix.lower() in (".nrrd", ".nhdr") else "metaimage"}
    for key in itk.GetMetaDataKeys():
        if key.lower() in ("modality",):
            meta["modality"] = itk.GetMetaData(key)
    return Image.from_sitk(itk, kind=kind, metadata=meta)


def write_nifti(image: Image, path: Path) -> None:
    array = image.array.astype(np.uint8) if image.array.dtype == bool else image.array
    with atomic_path(path) as tmp:
        image.with_array(array).to_nibabel().to_filename(str(tmp))


def write_itk(image: Image, path: Path) -> None:
    """NRRD or MHA; single-file formats only, so the write stays atomic."""
    import SimpleITK as sitk

    if path.suffix.lower() in (".mhd", ".nhdr"):
        raise UnsupportedError(
            f"{path.suffix} writes a header and a separate data file, which cannot be written atomically",
            path=path,
            hint="Write .mha or .nrrd (a single file) instead",
        )
    array = image.array.astype(np.uint8) if image.array.dtype == bool else image.array
    with atomic_path(path) as tmp:
        sitk.WriteImage(image.with_array(array).to_sitk(), str(tmp), useCompression=True)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _itk_reason(exc: Exception) -> str:
    # ITK messages span several lines; the useful part is after "Description:" or the last line.
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("Description:"):
            return ln.removeprefix("Description:").strip()
    return lines[-1] if lines else type(exc).__name__
