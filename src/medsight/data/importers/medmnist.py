"""MedMNIST ``.npz``: one sample per array row, official splits kept."""

from __future__ import annotations

from pathlib import Path

from medsight.data.manifest import Manifest, Sample
from medsight.io._medmnist import read_medmnist


def from_medmnist(path: str | Path, *, classes: list[str] | None = None) -> Manifest:
    """Samples ``file.npz#split/index`` with labels as class indices (or `classes` names).

    Multi-label files (several label columns) give a list of the present label names.
    """
    path = Path(path)
    data = read_medmnist(path)
    samples = []
    for split in data.splits:
        labels = data.labels[split]
        for index, row in enumerate(labels):
            if labels.shape[1] == 1:
                value = int(row[0])
                label = classes[value] if classes else str(value)
            else:
                label = [classes[i] if classes else str(i) for i in row.nonzero()[0]]
            samples.append(Sample(f"{path.name}#{split}/{index}", label=label, split=split))
    width = next(iter(data.labels.values())).shape[1]
    n_classes = width if width > 1 else max(int(a.max()) for a in data.labels.values()) + 1
    declared = classes or [str(i) for i in range(max(n_classes, 2))]
    return Manifest(samples, root=path.parent, name=path.stem, classes=declared, source="MedMNIST")
