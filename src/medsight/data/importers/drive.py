"""DRIVE retinal vessels: ``{training,test}/images``, ``1st_manual`` (vessels), ``mask`` (field of view)."""

from __future__ import annotations

from pathlib import Path

from medsight.data.manifest import Manifest, Sample
from medsight.errors import FormatError


def is_drive(root: Path) -> bool:
    return (root / "training" / "1st_manual").is_dir() or (root / "test" / "1st_manual").is_dir()


def from_drive(root: str | Path) -> Manifest:
    """One sample per eye image (each from a different subject), with vessel mask and FOV."""
    root = Path(root)
    samples = []
    for folder, split in (("training", "train"), ("test", "test")):
        for image in sorted((root / folder / "images").glob("*.tif")):
            number = image.name.split("_")[0]
            manual = root / folder / "1st_manual" / f"{number}_manual1.gif"
            fov = next((root / folder / "mask").glob(f"{number}_*mask.gif"), None)
            samples.append(
                Sample(
                    f"{folder}/images/{image.name}",
                    mask=manual.relative_to(root).as_posix() if manual.is_file() else None,
                    fov=fov.relative_to(root).as_posix() if fov else None,
                    patient_id=f"drive-{number}",
                    split=split,
                )
            )
    if not samples:
        raise FormatError("no training/images/*.tif or test/images/*.tif", path=root)
    return Manifest(
        samples, root=root, name="drive", label_names={1: "vessel"}, mask_threshold=128, source="DRIVE"
    )
