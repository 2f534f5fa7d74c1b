"""Kvasir-SEG: ``images/``, ``masks/`` (JPEG, threshold 128), ``kavsir_bboxes.json``, split files."""

from __future__ import annotations

import json
from pathlib import Path

from medsight.data.manifest import Manifest, Sample
from medsight.errors import FormatError

BOXES = "kavsir_bboxes.json"


def is_kvasir(root: Path) -> bool:
    return (root / BOXES).is_file() and (root / "images").is_dir()


def from_kvasir(root: str | Path) -> Manifest:
    """Polyp masks and boxes per image; the official 880/120 MediaEval split (train/test) when present."""
    root = Path(root)
    try:
        boxes = json.loads((root / BOXES).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FormatError(f"unreadable {BOXES} ({exc})", path=root / BOXES) from exc
    split_of = {}
    # MediaEval 2020 calls its held-out 120 images "val"; here they are the test split, so
    # that model selection (on a val carved from the 880) never sees them.
    for split, name in (("train", "split_mediaeval2020_train.txt"), ("test", "split_mediaeval2020_val.txt")):
        if (root / name).is_file():
            split_of.update(
                {line.strip(): split for line in (root / name).read_text().split() if line.strip()}
            )
    samples = []
    for image in sorted((root / "images").glob("*.jpg")):
        key = image.stem
        entry = boxes.get(key, {"bbox": []})
        sample_boxes = [
            {"box": [b["xmin"], b["ymin"], b["xmax"], b["ymax"]], "label": b.get("label", "polyp")}
            for b in entry["bbox"]
        ]
        mask = root / "masks" / image.name
        samples.append(
            Sample(
                f"images/{image.name}",
                mask=f"masks/{image.name}" if mask.is_file() else None,
                boxes=sample_boxes,
                split=split_of.get(key),
            )
        )
    if not samples:
        raise FormatError("no images/*.jpg", path=root)
    return Manifest(
        samples,
        root=root,
        name="kvasir-seg",
        classes=["polyp"],
        label_names={1: "polyp"},
        mask_threshold=128,
        source="Kvasir-SEG",
    )
