"""MedMNIST ``.npz`` files: arrays of images and labels with their official splits."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import FormatError

SPLITS = ("train", "val", "test")


@dataclass
class MedMNISTDataset:
    """Images ``(N, H, W[, D][, C])`` and labels ``(N, L)`` per split, as stored."""

    path: Path
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    @property
    def splits(self) -> list[str]:
        return list(self.images)

    @property
    def is_3d(self) -> bool:
        first = next(iter(self.images.values()))
        return first.ndim == 4 and first.shape[-1] not in (1, 3) or first.ndim == 5

    def __len__(self) -> int:
        return sum(len(a) for a in self.images.values())

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}={len(self.images[s])}" for s in self.splits)
        shape = next(iter(self.images.values())).shape[1:]
        return f"MedMNISTDataset({self.path.name}: {parts}; image shape {shape})"

    def summary(self) -> dict:
        """Counts, shapes and label frequencies per split (JSON-friendly)."""
        out = {"path": str(self.path), "format": "medmnist", "is_3d": self.is_3d, "splits": {}}
        for split in self.splits:
            images, labels = self.images[split], self.labels[split]
            values, counts = (
                np.unique(labels, return_counts=True)
                if labels.shape[1] == 1
                else (np.arange(labels.shape[1]), labels.sum(axis=0))
            )
            out["splits"][split] = {
                "n": len(images),
                "image_shape": [int(s) for s in images.shape[1:]],
                "dtype": str(images.dtype),
                "label_counts": {str(int(v)): int(c) for v, c in zip(values, counts)},
            }
        return out


def read_medmnist(path: Path) -> MedMNISTDataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            splits = [s for s in SPLITS if f"{s}_images" in keys and f"{s}_labels" in keys]
            if not splits:
                raise FormatError(
                    f"not a MedMNIST file: found arrays {sorted(keys)[:6]}, expected train_images, "
                    "train_labels, val_..., test_...",
                    path=path,
                )
            images = {s: npz[f"{s}_images"] for s in splits}
            labels = {s: np.asarray(npz[f"{s}_labels"]).reshape(len(images[s]), -1) for s in splits}
    except FormatError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise FormatError(
            f"unreadable .npz file ({exc})", path=path, hint="The file may be truncated; download it again"
        ) from exc
    for s in splits:
        if len(labels[s]) != len(images[s]):
            raise FormatError(f"{s} split has {len(images[s])} images but {len(labels[s])} labels", path=path)
    return MedMNISTDataset(Path(path), images, labels)
