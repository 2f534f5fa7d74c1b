"""BUSI breast ultrasound: ``benign/``, ``malignant/``, ``normal/`` with ``X.png`` and ``X_mask[_N].png``."""

from __future__ import annotations

import re
from pathlib import Path

from medsight.data.importers._common import natural_key
from medsight.data.manifest import Manifest, Sample
from medsight.errors import FormatError

CLASSES = ("benign", "malignant", "normal")
_MASK = re.compile(r"^(?P<stem>.+)_mask(_\d+)?$")


def is_busi(root: Path) -> bool:
    return sum((root / c).is_dir() for c in CLASSES) >= 2 and any(root.glob("*/*_mask.png"))


def from_busi(root: str | Path) -> Manifest:
    """Class from the folder; every ``_mask`` file of an image is united into its lesion mask."""
    root = Path(root)
    samples = []
    for cls in CLASSES:
        folder = root / cls
        if not folder.is_dir():
            continue
        masks: dict[str, list[str]] = {}
        images = []
        for f in sorted(folder.glob("*.png"), key=natural_key):
            match = _MASK.match(f.stem)
            if match:
                masks.setdefault(match["stem"], []).append(f"{cls}/{f.name}")
            else:
                images.append(f)
        for image in images:
            found = masks.get(image.stem, [])
            samples.append(
                Sample(
                    f"{cls}/{image.name}", label=cls, mask=(found[0] if len(found) == 1 else found) or None
                )
            )
    if not samples:
        raise FormatError("no benign/malignant/normal images", path=root)
    return Manifest(
        samples,
        root=root,
        name="busi",
        classes=[c for c in CLASSES if (root / c).is_dir()],
        label_names={1: "lesion"},
        mask_threshold=128,
        source="BUSI",
    )
