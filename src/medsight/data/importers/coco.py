"""COCO-style box annotations (``images``, ``annotations``, ``categories``)."""

from __future__ import annotations

import json
from pathlib import Path

from medsight.data.importers._common import relative
from medsight.data.manifest import Manifest, Sample
from medsight.errors import FormatError, NotFoundError


def is_coco(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return False
    return '"annotations"' in head or '"categories"' in head or '"images"' in head


def from_coco(path: str | Path, *, images_dir: str | Path | None = None) -> Manifest:
    """Boxes ``[x, y, w, h]`` -> ``[i0, j0, i1, j1]``; images without boxes are kept (empty list).

    `images_dir` is where ``file_name`` paths start; by default the first of the JSON's folder
    and its parents (and their ``images``/``imgs`` subfolders) that holds the first image.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images, annotations = data["images"], data.get("annotations", [])
        categories = {c["id"]: c["name"] for c in data.get("categories", [])}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise FormatError(f"not a COCO annotation file ({exc})", path=path) from exc
    if not images:
        raise FormatError("COCO file lists no images", path=path)
    base = Path(images_dir) if images_dir else _find_images_dir(path, images[0]["file_name"])
    boxes: dict[int, list[dict]] = {im["id"]: [] for im in images}
    for ann in annotations:
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w <= 0 or h <= 0:
            raise FormatError(f"annotation {ann.get('id')} has an empty box {ann['bbox']}", path=path)
        label = categories.get(ann["category_id"], str(ann["category_id"]))
        boxes.setdefault(ann["image_id"], []).append({"box": [x, y, x + w, y + h], "label": label})
    root = base
    samples = [Sample(relative(base / im["file_name"], root), boxes=boxes[im["id"]]) for im in images]
    return Manifest(
        samples,
        root=root,
        name=path.stem,
        classes=sorted(set(categories.values())) or None,
        source=f"COCO {path.name}",
    )


def _find_images_dir(path: Path, first: str) -> Path:
    for folder in [path.parent, *path.parents[:3]]:
        for candidate in (folder, folder / "images", folder / "imgs"):
            if (candidate / first).is_file():
                return candidate
    raise NotFoundError(
        f"cannot find the images of the COCO file (first: {first})",
        path=path,
        hint="Pass the images folder (CLI: --images DIR)",
    )
