"""Generic layouts: a folder per class, and images with a parallel masks folder."""

from __future__ import annotations

from pathlib import Path

from medsight.data.importers._common import image_files, mask_key, relative, stem
from medsight.data.manifest import SPLITS, Manifest, Sample
from medsight.errors import FormatError

MASK_FOLDERS = ("masks", "mask", "labels", "labelsTr", "segmentations", "annotations", "gt")
IMAGE_FOLDERS = ("images", "imgs", "image", "imagesTr")


def from_class_folders(root: str | Path) -> Manifest:
    """``root/<class>/*.png`` (optionally ``root/<split>/<class>/...``) -> classification samples."""
    root = Path(root)
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name in SPLITS:
            for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
                samples += [
                    Sample(relative(f, root), label=cls.name, split=folder.name) for f in image_files(cls)
                ]
        else:
            samples += [Sample(relative(f, root), label=folder.name) for f in image_files(folder)]
    if not samples:
        raise FormatError(
            "no images in class subfolders", path=root, hint="Expected root/<class>/<image files>"
        )
    classes = sorted({s.label for s in samples})
    if len(classes) < 2:
        raise FormatError(
            f"only one class folder ({classes[0]!r})",
            path=root,
            hint="A folder per class needs at least two classes",
        )
    return Manifest(samples, root=root, name=root.name, classes=classes, source="class folders")


def from_images_and_masks(
    root: str | Path,
    *,
    images: str | None = None,
    masks: str | None = None,
    label_names: dict[int, str] | None = None,
) -> Manifest:
    """``root/images/*`` with ``root/masks/*`` matched by file stem (``_mask`` etc. allowed)."""
    root = Path(root)
    image_dir = root / (images or _first_existing(root, IMAGE_FOLDERS, "images"))
    mask_dir = root / (masks or _first_existing(root, MASK_FOLDERS, "masks"))
    masks_by_key: dict[str, list[Path]] = {}
    for m in image_files(mask_dir, recursive=True):
        masks_by_key.setdefault(mask_key(m), []).append(m)
    samples, unmatched = [], []
    for f in image_files(image_dir, recursive=True):
        found = masks_by_key.get(stem(f))
        if not found:
            unmatched.append(f.name)
            continue
        mask = [relative(m, root) for m in found]
        samples.append(Sample(relative(f, root), mask=mask[0] if len(mask) == 1 else mask))
    if unmatched:
        raise FormatError(
            f"{len(unmatched)} image(s) have no mask, e.g. {', '.join(unmatched[:3])}",
            path=mask_dir,
            hint="Name masks like their images (optionally with _mask), or remove the unlabelled images",
        )
    if not samples:
        raise FormatError("no images found", path=image_dir)
    return Manifest(samples, root=root, name=root.name, label_names=label_names, source="images and masks")


def _first_existing(root: Path, names: tuple[str, ...], what: str) -> str:
    for name in names:
        if (root / name).is_dir():
            return name
    raise FormatError(f"no {what} folder (looked for {', '.join(names)})", path=root)
