"""Build a manifest from the layouts datasets come in, and `load_dataset` for any of them.

Each importer returns a `Manifest` whose paths are relative to the dataset's own folder;
nothing is written. `load_dataset` recognises the layout itself.
"""

from __future__ import annotations

from pathlib import Path

from medsight.data.importers.busi import from_busi, is_busi
from medsight.data.importers.coco import from_coco, is_coco
from medsight.data.importers.dicom_tree import from_dicom_tree
from medsight.data.importers.drive import from_drive, is_drive
from medsight.data.importers.folders import from_class_folders, from_images_and_masks
from medsight.data.importers.kvasir import from_kvasir, is_kvasir
from medsight.data.importers.medmnist import from_medmnist
from medsight.data.manifest import Manifest, read_manifest
from medsight.errors import FormatError, NotFoundError

__all__ = [
    "IMPORTERS",
    "from_busi",
    "from_class_folders",
    "from_coco",
    "from_dicom_tree",
    "from_drive",
    "from_images_and_masks",
    "from_kvasir",
    "from_medmnist",
    "load_dataset",
]

# Layout name -> importer, for `medsight dataset import --layout NAME`.
IMPORTERS = {
    "manifest": read_manifest,
    "class-folders": from_class_folders,
    "images-masks": from_images_and_masks,
    "medmnist": from_medmnist,
    "coco": from_coco,
    "kvasir": from_kvasir,
    "busi": from_busi,
    "drive": from_drive,
    "dicom": from_dicom_tree,
}


def detect_layout(path: Path) -> str:
    """The layout of a dataset file or folder, by its names and first bytes."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return "manifest"
        if suffix == ".npz":
            return "medmnist"
        if suffix == ".json":
            return (
                "coco"
                if is_coco(path) and '"medsight-manifest"' not in path.read_text()[:300]
                else "manifest"
            )
        raise FormatError(
            "not a dataset file",
            path=path,
            hint="Give a manifest (.json/.csv), a MedMNIST .npz, a COCO .json or a folder",
        )
    if is_kvasir(path):
        return "kvasir"
    if is_busi(path):
        return "busi"
    if is_drive(path):
        return "drive"
    subfolders = {p.name for p in path.iterdir() if p.is_dir()}
    if subfolders & {"images", "imgs", "imagesTr"} and subfolders & {"masks", "mask", "labels", "labelsTr"}:
        return "images-masks"
    from medsight.io._sniff import looks_like_dicom

    for file in sorted(p for p in path.rglob("*") if p.is_file())[:50]:
        with open(file, "rb") as f:
            if looks_like_dicom(f.read(132)):
                return "dicom"
    if len(subfolders) >= 2:
        return "class-folders"
    raise FormatError(
        "cannot tell this folder's layout",
        path=path,
        hint=f"Use `medsight dataset import --layout` with one of: {', '.join(IMPORTERS)}",
    )


def load_dataset(path: str | Path, *, layout: str = "auto") -> Manifest:
    """A manifest (``.json``/``.csv``) or any layout in `IMPORTERS` (detected when ``auto``)."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError("no such dataset file or folder", path=path)
    if layout == "auto":
        if (path / "manifest.json").is_file():
            # A folder MedSight wrote (`dataset import`, `synth`): its manifest carries the
            # splits, boxes and classes that the folder's layout alone would lose.
            path = path / "manifest.json"
        layout = detect_layout(path)
    if layout not in IMPORTERS:
        raise FormatError(f"unknown layout {layout!r}", hint=f"Choose one of: {', '.join(IMPORTERS)}")
    return IMPORTERS[layout](path)
