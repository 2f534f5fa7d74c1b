"""Random patches of cached cases for segmentation training, a third centred on foreground.

As nnU-Net samples them: a share of every batch is forced to contain foreground (a class
present in the case is drawn, then one of its voxels, and the patch is centred there), the
rest are uniform random crops. Cases smaller than the patch are padded (image 0, the
normalised mean; label 0).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PatchBatches"]

_LOCATIONS = 10_000  # voxel positions kept per class and case to centre patches on


class PatchBatches:
    """`fit`'s batch source: ``(B, C, *patch)`` float32 inputs, ``(B, 1, *patch)`` int64 labels.

    Parameters
    ----------
    images : list of ndarray ``(C, *spatial)``
        Normalised cases on the plan's grid.
    labels : list of ndarray ``(*spatial)``
        Their label maps (0 background).
    patch : sequence of int
    batch_size, steps_per_epoch : int
    foreground_fraction : float
        Share of each batch centred on a foreground voxel (at least one item when > 0).
    """

    def __init__(self, images, labels, *, patch, batch_size: int, steps_per_epoch: int, foreground_fraction):
        self.patch = tuple(int(p) for p in patch)
        self.batch_size, self.steps_per_epoch = int(batch_size), int(steps_per_epoch)
        self.input_size = self.patch
        self.n_foreground = (
            max(1, int(round(foreground_fraction * self.batch_size))) if foreground_fraction > 0 else 0
        )
        rng = np.random.default_rng(0)
        self.images, self.labels, self.locations = [], [], []
        for image, label in zip(images, labels):
            pad = [(0, 0)] + [(0, max(0, p - s)) for p, s in zip(self.patch, label.shape)]
            image = np.pad(image, pad) if any(w for _, w in pad) else image
            label = np.pad(label, pad[1:]) if any(w for _, w in pad) else label
            self.images.append(np.ascontiguousarray(image, dtype=np.float32))
            self.labels.append(np.ascontiguousarray(label, dtype=np.uint8))
            where = {}
            for value in np.unique(label):
                if value == 0:
                    continue
                coords = np.argwhere(label == value)
                if len(coords) > _LOCATIONS:
                    coords = coords[rng.choice(len(coords), _LOCATIONS, replace=False)]
                where[int(value)] = coords
            self.locations.append(where)
        self.with_foreground = [i for i, w in enumerate(self.locations) if w]

    def _corner(self, case: int, generator, foreground: bool) -> list[int]:
        import torch

        shape = self.labels[case].shape
        highest = [s - p for s, p in zip(shape, self.patch)]
        where = self.locations[case]
        if foreground and where:
            classes = sorted(where)
            value = classes[int(torch.randint(len(classes), (1,), generator=generator))]
            coords = where[value]
            centre = coords[int(torch.randint(len(coords), (1,), generator=generator))]
            return [int(np.clip(c - p // 2, 0, h)) for c, p, h in zip(centre, self.patch, highest)]
        return [int(torch.randint(h + 1, (1,), generator=generator)) for h in highest]

    def epoch(self, generator):
        import torch

        for _ in range(self.steps_per_epoch):
            xs, ys = [], []
            for item in range(self.batch_size):
                foreground = item >= self.batch_size - self.n_foreground and bool(self.with_foreground)
                pool = self.with_foreground if foreground else range(len(self.images))
                case = pool[int(torch.randint(len(pool), (1,), generator=generator))]
                corner = self._corner(case, generator, foreground)
                window = tuple(slice(c, c + p) for c, p in zip(corner, self.patch))
                xs.append(self.images[case][(slice(None), *window)])
                ys.append(self.labels[case][window])
            x = torch.from_numpy(np.stack(xs))
            y = torch.from_numpy(np.stack(ys)[:, None].astype(np.int64))
            yield x, y
