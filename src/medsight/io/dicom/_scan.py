"""Find DICOM files, read their headers once, and group them into series."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from medsight.errors import FormatError, NotFoundError, SeriesError
from medsight.io._sniff import looks_like_dicom

# Modalities and SOP class prefixes of objects that carry no image to read as a volume.
NON_IMAGE_MODALITIES = {"SEG", "SR", "RTSTRUCT", "RTPLAN", "RTRECORD", "KO", "PR", "ANN", "DOC", "REG", "RWV"}
NON_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.66",  # Raw data, spatial registration, fiducials, segmentation
    "1.2.840.10008.5.1.4.1.1.88",  # Structured reports, key object selection
    "1.2.840.10008.5.1.4.1.1.11",  # Presentation states
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT structure set
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT plan
    "1.2.840.10008.5.1.4.1.1.91",  # Microscopy annotations
    "1.2.840.10008.5.1.4.1.1.104",  # Encapsulated documents (PDF, CDA, STL)
)
WHOLE_SLIDE_SOP = "1.2.840.10008.5.1.4.1.1.77.1.6"
# SOP classes newer than pydicom's UID dictionary.
_NEWER_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage"}


@dataclass
class SeriesInfo:
    """One series found in a folder: what it is and which files hold it."""

    series_uid: str
    series_number: int | None
    modality: str
    description: str
    sop_class: str
    is_image: bool
    files: list[Path] = field(repr=False)
    datasets: list = field(repr=False, compare=False)

    @property
    def n_files(self) -> int:
        return len(self.files)

    def label(self) -> str:
        number = f"#{self.series_number} " if self.series_number is not None else ""
        desc = f" '{self.description}'" if self.description else ""
        kind = "" if self.is_image else f", {self.sop_class} (not an image)"
        return f"{number}{self.series_uid} {self.modality}{desc}, {self.n_files} file(s){kind}"


def sop_class_name(ds) -> str:
    uid = ds.get("SOPClassUID")
    if uid is None or not str(uid):
        return "unknown SOP class"
    name = getattr(uid, "name", "") or str(uid)
    return _NEWER_SOP_CLASSES.get(name, name)


def has_pixels(ds) -> bool:
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def is_image_dataset(ds) -> bool:
    """Whether a data set holds an image to read (not SEG, SR, RT struct/plan, ...)."""
    if not has_pixels(ds):
        return False
    sop = str(ds.get("SOPClassUID", ""))
    if sop.startswith(NON_IMAGE_SOP_PREFIXES):
        return False
    return str(ds.get("Modality", "")).upper() not in NON_IMAGE_MODALITIES


def read_header(path: Path):
    """Read a DICOM file's data set; large values (pixel data) stay on disk until used."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with open(path, "rb") as f:
            head = f.read(132)
        if not looks_like_dicom(head):
            raise FormatError("not a DICOM file", path=path, hint="Check the path")
        # force=True only after the sniff: it admits files without the 128-byte preamble.
        return pydicom.dcmread(path, defer_size=4096, force=True)
    except FormatError:
        raise
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(
            f"unreadable DICOM file ({exc})", path=path, hint="The file may be truncated or corrupt"
        ) from exc


def _dicom_candidates(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            path = Path(root) / name
            try:
                with open(path, "rb") as f:
                    if looks_like_dicom(f.read(132)):
                        files.append(path)
            except OSError:
                continue
    return files


def scan_folder(folder: str | Path) -> list[SeriesInfo]:
    """Every DICOM series under `folder` (recursively), images first, by series number."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError("no such folder", path=folder)
    files = _dicom_candidates(folder)
    if not files:
        raise NotFoundError(
            "folder holds no DICOM files",
            path=folder,
            hint="Point to a folder of .dcm files or to a single file",
        )
    # Header parsing is mostly I/O-bound on a cold cache; threads overlap the reads.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        datasets = list(pool.map(_try_read_header, files))
    groups: dict[str, list] = {}
    unreadable = []
    for path, ds in zip(files, datasets):
        if ds is None:
            unreadable.append(path)
            continue
        groups.setdefault(_series_key(ds), []).append((path, ds))
    if not groups:
        raise FormatError(
            f"none of the {len(files)} DICOM-looking files could be read (first: {unreadable[0].name})",
            path=folder,
            hint="The files may be truncated or corrupt",
        )
    series = []
    for uid, members in groups.items():
        first = members[0][1]
        number = first.get("SeriesNumber")
        series.append(
            SeriesInfo(
                series_uid=uid,
                series_number=int(number) if number not in (None, "") else None,
                modality=str(first.get("Modality", "")),
                description=str(first.get("SeriesDescription", "")),
                sop_class=sop_class_name(first),
                is_image=any(is_image_dataset(ds) for _, ds in members),
                files=[p for p, _ in members],
                datasets=[ds for _, ds in members],
            )
        )
    series.sort(key=lambda s: (not s.is_image, s.series_number if s.series_number is not None else 1 << 30))
    return series


def _series_key(ds) -> str:
    """SeriesInstanceUID; for anonymised files without one, the fields that usually tell series apart."""
    uid = str(ds.get("SeriesInstanceUID", "") or "")
    if uid:
        return uid
    parts = [
        ds.get(k) or "" for k in ("SeriesNumber", "Modality", "SeriesDescription", "FrameOfReferenceUID")
    ]
    return "(no SeriesInstanceUID: " + "/".join(str(p) for p in parts) + ")"


def _try_read_header(path: Path):
    try:
        return read_header(path)
    except FormatError:
        return None


def choose_series(series: list[SeriesInfo], choice: str | int | None, folder: Path) -> SeriesInfo:
    """Pick one image series by SeriesInstanceUID or series number; explain when ambiguous."""
    images = [s for s in series if s.is_image]
    if choice is None:
        if len(images) == 1:
            return images[0]
        if not images:
            from medsight.errors import NotAnImageError

            names = "; ".join(s.label() for s in series)
            raise NotAnImageError(f"folder holds no image series, only: {names}", path=folder)
        raise SeriesError(
            f"folder holds {len(images)} image series: " + "; ".join(s.label() for s in images),
            path=folder,
            hint="Choose one by SeriesInstanceUID or series number (CLI: --series)",
        )
    text = str(choice).strip()
    matches = [s for s in series if s.series_uid == text]
    if not matches and text.lstrip("-").isdigit():
        matches = [s for s in series if s.series_number == int(text)]
    if len(matches) == 1:
        return matches[0]
    problem = "no series matches" if not matches else f"{len(matches)} series match"
    raise SeriesError(
        f"{problem} {text!r}; the folder holds: " + "; ".join(s.label() for s in series),
        path=folder,
        hint="Pass one of the SeriesInstanceUIDs listed",
    )
