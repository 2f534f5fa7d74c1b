"""Random patches of cached cases for training, a share of each batch forced onto findings.

`PatchBatches` (segmentation), as nnU-Net samples them: a share of every batch is forced to
contain foreground (a class present in the case is drawn, then one of its voxels, and the
patch is centred there), the rest are uniform random crops. Cases smaller than the patch are
padded (image 0, the normalised mean; label 0).

`BoxPatchBatches` (detection), as nnDetection samples them: half of every batch holds a whole
box drawn from the images that have one, at a random place in the patch; the rest are uniform
random crops. Boxes the crop cuts are clipped to it, and kept when at least half of their
area (volume) is inside, else dropped: a sliver of a finding at the edge is not one to find.
"""

from __future__ import annotations

import numpy as np

from medsight.tasks.detect.boxes import clip_boxes

__all__ = ["BoxPatchBatches", "PatchBatches"]

_LOCATIONS = 10_000  # voxel positions kept per class and case to centre patches on


def _forced_items(fraction: float, batch_size: int) -> int:
    """Items of a batch forced onto findings: `fraction` of it, at least one when above 0."""
    return max(1, int(round(fraction * batch_size))) if fraction > 0 else 0


def _draw_case(item: int, batch_size: int, forced: int, with_findings: list[int], n: int, generator):
    """The case for batch `item`: the last `forced` items draw from `with_findings`, the rest from all.

    Returns ``(case, forced_here)``; no case with findings means no item is forced.
    """
    import torch

    forced_here = item >= batch_size - forced and bool(with_findings)
    pool = with_findings if forced_here else range(n)
    return pool[int(torch.randint(len(pool), (1,), generator=generator))], forced_here


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
        self.n_foreground = _forced_items(foreground_fraction, self.batch_size)
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
                case, foreground = _draw_case(
                    item,
                    self.batch_size,
                    self.n_foreground,
                    self.with_foreground,
                    len(self.images),
                    generator,
                )
                corner = self._corner(case, generator, foreground)
                window = tuple(slice(c, c + p) for c, p in zip(corner, self.patch))
                xs.append(self.images[case][(slice(None), *window)])
                ys.append(self.labels[case][window])
            x = torch.from_numpy(np.stack(xs))
            y = torch.from_numpy(np.stack(ys)[:, None].astype(np.int64))
            yield x, y


class BoxPatchBatches:
    """`fit`'s batch source: ``(B, C, *patch)`` inputs and their boxes, `encode_targets`' padded tensor.

    Parameters
    ----------
    inputs : ndarray ``(N, C, *size)``
        Prepared images, all of one size at least `patch`.
    boxes : list of ndarray ``(N_i, 2 * ndim)``
        Their boxes in input voxels; labels : list of sequences of int, their classes.
    foreground_fraction : float
        Share of each batch that holds a whole box (at least one item when > 0).
    """

    def __init__(
        self, inputs, boxes, labels, *, patch, batch_size: int, steps_per_epoch: int, foreground_fraction
    ):
        self.inputs = inputs
        self.patch = tuple(int(p) for p in patch)
        self.ndim = len(self.patch)
        self.boxes = [np.asarray(b, np.float64).reshape(-1, 2 * self.ndim) for b in boxes]
        self.labels = [np.asarray(lab, np.int64).reshape(-1) for lab in labels]
        self.batch_size, self.steps_per_epoch = int(batch_size), int(steps_per_epoch)
        self.input_size = self.patch
        self.n_foreground = _forced_items(foreground_fraction, self.batch_size)
        self.with_boxes = [i for i, b in enumerate(self.boxes) if len(b)]
        self.rows = max([len(b) for b in self.boxes] + [1])
        if any(p > s for p, s in zip(self.patch, inputs.shape[2:])):
            raise ValueError(f"patch {self.patch} is larger than the inputs {inputs.shape[2:]}")

    def _corner(self, case: int, generator, foreground: bool) -> np.ndarray:
        import torch

        highest = np.asarray(self.inputs.shape[2:]) - self.patch
        if foreground:
            box = self.boxes[case][int(torch.randint(len(self.boxes[case]), (1,), generator=generator))]
            # Corners that hold the whole box (all of them when it is larger than the patch).
            lo = np.clip(np.ceil(box[self.ndim :]) - self.patch, 0, highest)
            hi = np.clip(np.floor(box[: self.ndim]), 0, highest)
            lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        else:
            lo, hi = np.zeros(self.ndim), highest
        u = torch.rand(self.ndim, generator=generator).numpy()
        return np.floor(lo + u * (hi - lo + 1)).clip(lo, hi).astype(int)

    def _cropped(self, case: int, corner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, labels = self.boxes[case], self.labels[case]
        if not len(boxes):
            return boxes, labels
        shifted = boxes - np.tile(corner, 2)
        clipped, _ = clip_boxes(shifted, self.patch)
        sides = clipped[:, self.ndim :] - clipped[:, : self.ndim]
        whole = shifted[:, self.ndim :] - shifted[:, : self.ndim]
        keep = sides.prod(axis=1) >= 0.5 * whole.prod(axis=1)
        return clipped[keep], labels[keep]

    def epoch(self, generator):
        import torch

        from medsight.tasks.detect.detector import encode_targets

        for _ in range(self.steps_per_epoch):
            xs, boxes, labels = [], [], []
            for item in range(self.batch_size):
                case, foreground = _draw_case(
                    item, self.batch_size, self.n_foreground, self.with_boxes, len(self.inputs), generator
                )
                corner = self._corner(case, generator, foreground)
                window = tuple(slice(int(c), int(c) + p) for c, p in zip(corner, self.patch))
                xs.append(self.inputs[(case, slice(None), *window)])
                b, lab = self._cropped(case, corner)
                boxes.append(b)
                labels.append(lab)
            x = torch.from_numpy(np.ascontiguousarray(np.stack(xs), dtype=np.float32))
            yield x, encode_targets(boxes, labels, ndim=self.ndim, rows=self.rows)
