"""Helpers the importers share: which files are images, and pairing images with masks."""

from __future__ import annotations

import re
from pathlib import Path

from medsight.io._sniff import format_from_suffix

MASK_SUFFIXES = ("_mask", "_seg", "_label", "_labels", "_gt", "-mask", "_manual1")


def image_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Image files (any format `medsight.io.read` takes, except array files), sorted naturally."""
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    files = [
        p
        for p in pattern
        if p.is_file()
        and not p.name.startswith(".")
        and format_from_suffix(p) not in (None, "npz")
        and not p.name.endswith(".provenance.json")
    ]
    return sorted(files, key=natural_key)


def natural_key(path: Path | str) -> list:
    """'img2' before 'img10'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def stem(path: Path) -> str:
    from medsight.io._sniff import image_stem

    return image_stem(path)


def mask_key(path: Path) -> str:
    """The image stem a mask file belongs to: 'case1_mask.png' -> 'case1'."""
    key = stem(path)
    for suffix in MASK_SUFFIXES:
        if key.lower().endswith(suffix):
            return key[: -len(suffix)]
    return key


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
