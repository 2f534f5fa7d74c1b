"""Tell a file's format from its first bytes, falling back on its suffix."""

from __future__ import annotations

import gzip
from pathlib import Path

# Suffix -> format, longest suffixes first so ".nii.gz" wins over ".gz".
SUFFIXES = {
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".mha": "metaimage",
    ".mhd": "metaimage",
    ".png": "raster",
    ".jpg": "raster",
    ".jpeg": "raster",
    ".tif": "raster",
    ".tiff": "raster",
    ".gif": "raster",
    ".bmp": "raster",
    ".npz": "npz",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".ima": "dicom",
}

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "raster"),
    (b"\xff\xd8\xff", "raster"),
    (b"II*\x00", "raster"),
    (b"MM\x00*", "raster"),
    (b"GIF87a", "raster"),
    (b"GIF89a", "raster"),
    (b"BM", "raster"),
    (b"NRRD000", "nrrd"),
    (b"PK\x03\x04", "npz"),
]


def format_from_suffix(path: str | Path) -> str | None:
    name = Path(path).name.lower()
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


def image_stem(path: str | Path) -> str:
    """File name without its image suffix (both parts of ``.nii.gz``), else without its last one."""
    name = Path(path).name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def looks_like_dicom(head: bytes) -> bool:
    """DICOM Part 10 ('DICM' at byte 128), or a bare data set starting at group 0002/0008."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) >= 8:
        group = int.from_bytes(head[0:2], "little")
        element = int.from_bytes(head[2:4], "little")
        return group in (0x0002, 0x0008) and element < 0x0100
    return False


def _is_nifti_header(head: bytes) -> bool:
    return len(head) >= 348 and (
        (int.from_bytes(head[:4], "little") == 348 and head[344:347] in (b"n+1", b"ni1"))
        or int.from_bytes(head[:4], "little") == 540
        or int.from_bytes(head[:4], "big") == 348
    )


def sniff(path: str | Path) -> str | None:
    """Format name ("dicom", "nifti", "nrrd", "metaimage", "raster", "npz") or None."""
    with open(path, "rb") as f:
        head = f.read(560)
    if looks_like_dicom(head):
        return "dicom"
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if _is_nifti_header(head):
        return "nifti"
    if head.startswith(b"\x1f\x8b"):  # gzip: NIfTI inside, or some other gzipped file
        try:
            with gzip.open(path, "rb") as f:
                inner = f.read(560)
        except (OSError, EOFError):
            return None
        return "nifti" if _is_nifti_header(inner) else None
    text = head[:300].decode("ascii", errors="replace")
    if text.lstrip().startswith(("ObjectType", "NDims")) or ("ObjectType" in text and "NDims" in text):
        return "metaimage"
    return None
