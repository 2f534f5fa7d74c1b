"""Free text out of NIfTI and NRRD headers, geometry and voxels kept byte for byte.

NIfTI (``.nii``, ``.nii.gz``; versions 1 and 2): the text fields (``descrip``,
``aux_file``, ``intent_name`` and the unused Analyze strings ``db_name``, ``data_type``,
``unused_str``) are emptied and every header extension (DICOM, AFNI, JSON sidecars, ...)
is dropped. NRRD (``.nrrd``, ``.nhdr``): only the fields that describe the data and its
geometry are kept; ``content``, labels, comments and every ``key:=value`` pair go.

Only the header is rewritten; the voxel bytes are copied as they are, so no rescaling or
re-encoding can change them.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from medsight.errors import FormatError, UnsupportedError
from medsight.io import atomic_path

__all__ = ["NRRD_KEPT_FIELDS", "deidentify_header_file"]

_NIFTI_TEXT = ("descrip", "aux_file", "intent_name", "db_name", "data_type", "unused_str")
# NRRD fields that describe the data and its geometry (NRRD0005 spelling, and the older
# spellings without spaces). Everything else is free text or unknown, and is dropped.
NRRD_KEPT_FIELDS = frozenset(
    {
        *("type", "dimension", "sizes", "endian", "encoding", "number", "kinds", "units"),
        *("space", "space dimension", "space directions", "space origin", "space units"),
        *("spacings", "thicknesses", "centers", "centerings", "measurement frame"),
        *("axis mins", "axismins", "axis maxs", "axismaxs"),
        *("min", "max", "old min", "oldmin", "old max", "oldmax"),
        *("data file", "datafile", "line skip", "lineskip", "byte skip", "byteskip"),
        *("block size", "blocksize"),
    }
)
_CHUNK = 1 << 20


def deidentify_header_file(src: Path, dst: Path) -> list[str]:
    """Copy the NIfTI or NRRD file `src` to `dst` without free text in its header.

    Parameters
    ----------
    src : Path
        ``.nii``, ``.nii.gz``, ``.nrrd`` or ``.nhdr``; never modified.
    dst : Path
        Written atomically; its folder must exist. For a ``.nhdr`` with a detached data
        file, the data is copied beside `dst`, named after it.

    Returns
    -------
    list of str
        The actions taken, such as ``"descrip emptied"`` (never the values removed).
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise UnsupportedError("is both input and output", path=src, hint="Write to another path")
    name = src.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return _nifti(src, dst, compressed=name.endswith(".gz"))
    if name.endswith((".nrrd", ".nhdr")):
        return _nrrd(src, dst)
    raise UnsupportedError(
        "is not a NIfTI or NRRD file", path=src, hint="Pass a .nii, .nii.gz, .nrrd or .nhdr file"
    )


def _nifti(src: Path, dst: Path, *, compressed: bool) -> list[str]:
    import nibabel as nib

    opener = gzip.open if compressed else open
    with opener(src, "rb") as f:
        block = f.read(540)
        for kind in (nib.Nifti1Header, nib.Nifti2Header):
            if kind.may_contain_header(block):
                break
        else:
            raise FormatError("is not a NIfTI-1 or NIfTI-2 file", path=src)
        f.seek(0)
        try:
            header = kind.from_fileobj(f)
        except Exception as error:  # nibabel raises several kinds on a damaged header
            raise FormatError(f"has an unreadable NIfTI header ({error})", path=src) from error
        if header["magic"].item() not in (b"n+1", b"n+2"):
            raise UnsupportedError(
                "is a two-file NIfTI (.hdr/.img) pair", path=src, hint="Convert it to a single .nii"
            )
        actions = []
        for field in _NIFTI_TEXT:
            if field in header and header[field].item():
                header[field] = b""
                actions.append(f"{field} emptied")
        if header.extensions:
            codes = sorted({str(ext.get_code()) for ext in header.extensions})
            actions.append(f"{len(header.extensions)} header extension(s) removed (codes {', '.join(codes)})")
        data_offset = int(header["vox_offset"])
        header.extensions.clear()
        header["vox_offset"] = header.single_vox_offset  # header and the 4-byte extension flag
        f.seek(data_offset)
        with atomic_path(dst) as tmp, open(tmp, "wb") as raw:
            # mtime 0 and no file name in the gzip header: the same input gives the same bytes
            out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if compressed else raw
            with out:
                header.write_to(out)
                shutil.copyfileobj(f, out, _CHUNK)
    return actions


def _nrrd(src: Path, dst: Path) -> list[str]:
    with open(src, "rb") as f:
        magic = f.readline()
        if not magic.startswith(b"NRRD000"):
            raise FormatError("does not start with an NRRD magic line", path=src)
        kept, actions, counts = [magic.rstrip(b"\r\n")], [], {"comment": 0, "key:=value": 0}
        detached = None
        while True:
            line = f.readline()
            text = line.rstrip(b"\r\n")
            if not text:  # a blank line (or the end of a detached header) ends the header
                break
            if text.startswith(b"#"):
                counts["comment"] += 1
                continue
            key, sep, value = text.decode("latin-1").partition(":")
            if value.startswith("="):
                counts["key:=value"] += 1
                continue
            field = key.strip().lower()
            if not sep or field not in NRRD_KEPT_FIELDS:
                actions.append(f"field {field!r} removed" if sep else "malformed header line removed")
                continue
            if field in ("data file", "datafile"):
                detached = value.strip()
                text = _detached(src, dst, detached, actions)
            kept.append(text)
        for what, count in counts.items():
            if count:
                actions.append(f"{count} {what} line(s) removed")
        with atomic_path(dst) as tmp, open(tmp, "wb") as out:
            out.write(b"\n".join(kept) + b"\n\n")
            if detached is None:  # attached data follows the blank line: copy it as it is
                shutil.copyfileobj(f, out, _CHUNK)
    return actions


def _detached(src: Path, dst: Path, data_file: str, actions: list[str]) -> bytes:
    """Copy a detached data file beside `dst`, named after it; the new "data file" line."""
    if data_file.upper().startswith("LIST") or len(data_file.split()) > 1:
        raise UnsupportedError(
            "has its data in several detached files", path=src, hint="Convert it to a single .nrrd"
        )
    data = (src.parent / data_file).resolve()
    if not data.is_file():
        raise FormatError(f"names a data file that does not exist ({data.name})", path=src)
    suffixes = Path(data_file).suffixes
    suffix = "".join(suffixes[-2:] if data_file.endswith(".gz") else suffixes[-1:]) or ".raw"
    target = dst.with_name(dst.name.rsplit(".", 1)[0] + suffix)
    with atomic_path(target) as tmp:
        shutil.copyfile(data, tmp)
    actions.append("detached data file copied and renamed")
    return f"data file: {target.name}".encode("latin-1")
