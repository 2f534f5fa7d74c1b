"""`Pipeline`: draw every parameter first, apply them, and record what was applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from medsight.data.augment._resample import PADDINGS, resample
from medsight.data.augment.batch import Batch
from medsight.data.augment.transform import Params, Transform

__all__ = ["Pipeline", "Record"]

#: Per item, the transforms applied to it in order: ``{"transform", "step", "params"}``.
Record = list[list[dict]]


class Pipeline:
    """Transforms applied in order, each to a random subset of the batch.

    Parameters
    ----------
    steps : sequence of Transform or (Transform, float)
        Each transform with the probability that it is applied to an item (1 if omitted).
    padding : {"minimum", "zeros", "border", "reflection"}
        Image value where spatial transforms sample outside the image: the item's
        minimum per channel (air in CT, background in MR), 0, the nearest edge voxel,
        or a mirror image. Masks always get label 0 there.

    Notes
    -----
    Consecutive spatial transforms are fused: their matrices are composed per item
    and image, mask and boxes are resampled once, in one batched call. A transform
    that was not drawn for an item leaves it bit-for-bit unchanged.

    Examples
    --------
    >>> pipeline = Pipeline([Flip(), (Rotate(15), 0.5), (GaussianNoise(0.05), 0.2)])
    >>> out, record = pipeline(Batch(image, mask=mask), generator=0)
    >>> again = pipeline.replay(Batch(image, mask=mask), record)  # the same tensors
    """

    def __init__(self, steps: Sequence[Transform | tuple[Transform, float]], *, padding: str = "minimum"):
        self.steps: list[tuple[Transform, float]] = []
        for step in steps:
            transform, probability = step if isinstance(step, tuple) else (step, 1.0)
            if not isinstance(transform, Transform):
                raise TypeError(f"a pipeline step must be a Transform, got {type(transform).__name__}")
            if not 0 <= probability <= 1:
                raise ValueError(f"probability of {transform.name} must be within [0, 1], got {probability}")
            self.steps.append((transform, float(probability)))
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.padding = padding

    def __repr__(self) -> str:
        steps = ", ".join(f"({t!r}, {p})" for t, p in self.steps)
        return f"Pipeline([{steps}], padding={self.padding!r})"

    def __call__(self, batch: Batch, generator: torch.Generator | int) -> tuple[Batch, Record]:
        """Augment `batch` with parameters drawn from `generator` (or a seed).

        Returns
        -------
        batch : Batch
            New tensors; the input batch is not modified.
        record : list of list of dict
            JSON-serialisable: per item, what was applied and with which parameters.
        """
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        params = self.sample(batch.batch_size, batch.spatial_shape, generator)
        return self.apply(batch, params), self.record(params)

    def sample(
        self, batch_size: int, spatial_shape: tuple[int, ...], generator: torch.Generator
    ) -> list[Params]:
        """Parameters of every step; each dict also holds ``applied``, bool ``(B,)``."""
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise ValueError(
                "augmentation parameters are drawn from a CPU torch.Generator (or an int seed), "
                f"got {generator!r}; the images themselves may be on any device"
            )
        if len(spatial_shape) not in (2, 3):
            raise ValueError(f"spatial_shape must have 2 or 3 axes, got {spatial_shape}")
        params = []
        for transform, probability in self.steps:
            applied = torch.rand(batch_size, generator=generator, dtype=torch.float64) < probability
            params.append({"applied": applied, **transform.sample(batch_size, spatial_shape, generator)})
        return params

    def apply(self, batch: Batch, params: list[Params]) -> Batch:
        """Apply parameters from `sample` (or `params_from_record`); draws nothing."""
        if len(params) != len(self.steps):
            raise ValueError(f"got parameters for {len(params)} steps, the pipeline has {len(self.steps)}")
        run: list[int] = []  # consecutive spatial steps, resampled together
        for i, (transform, _) in enumerate(self.steps):
            if transform.spatial:
                run.append(i)
                continue
            batch = self._apply_spatial(batch, run, params)
            run = []
            batch = self._apply_intensity(batch, transform, params[i])
        return self._apply_spatial(batch, run, params)

    def _apply_spatial(self, batch: Batch, run: list[int], params: list[Params]) -> Batch:
        used = [i for i in run if bool(params[i]["applied"].any())]
        if not used:
            return batch
        size, ndim = batch.batch_size, batch.ndim
        eye = torch.eye(ndim + 1, dtype=torch.float64)
        matrix, field = eye.repeat(size, 1, 1), None
        for i in used:
            transform, step = self.steps[i][0], params[i]
            applied = step["applied"]
            matrix = (
                torch.where(applied[:, None, None], transform.matrix(step, batch.spatial_shape), eye) @ matrix
            )
            displacement = transform.displacement(step)
            if displacement is not None:
                displacement = displacement * applied.view(-1, *[1] * (displacement.ndim - 1))
                if field is not None and field.shape != displacement.shape:
                    raise ValueError(
                        "two elastic transforms with different control grids follow each other; "
                        "give them the same control_points or separate them"
                    )
                field = displacement if field is None else field + displacement
        return resample(batch, matrix, field, padding=self.padding)

    @staticmethod
    def _apply_intensity(batch: Batch, transform: Transform, params: Params) -> Batch:
        applied = params["applied"]
        if not bool(applied.any()):
            return batch
        values = {k: v for k, v in params.items() if k != "applied"}
        if bool(applied.all()):
            return transform.apply(batch, values)
        index = applied.nonzero()[:, 0]
        on_device = index.to(batch.image.device)
        subset = Batch(batch.image.index_select(0, on_device))
        changed = transform.apply(subset, {k: v[index] for k, v in values.items()}).image
        return replace(batch, image=batch.image.index_copy(0, on_device, changed))

    # -- records ------------------------------------------------------------

    def record(self, params: list[Params]) -> Record:
        """Per item, the applied steps as JSON-ready dicts (lists and Python numbers)."""
        size = len(params[0]["applied"]) if params else 0
        record: Record = [[] for _ in range(size)]
        for i, ((transform, _), step) in enumerate(zip(self.steps, params)):
            for b in step["applied"].nonzero()[:, 0].tolist():
                values = {k: v[b].tolist() for k, v in step.items() if k != "applied"}
                record[b].append({"transform": transform.name, "step": i, "params": values})
        return record

    def params_from_record(self, record: Record) -> list[Params]:
        """The parameters that `record` (from `__call__` or `record`) describes, for `apply`."""
        size = len(record)
        found: list[dict[int, dict]] = [{} for _ in self.steps]
        for b, entries in enumerate(record):
            for entry in entries:
                i = entry["step"]
                if not 0 <= i < len(self.steps) or self.steps[i][0].name != entry["transform"]:
                    expected = self.steps[i][0].name if 0 <= i < len(self.steps) else "no step"
                    raise ValueError(
                        f"record of item {b} has {entry['transform']} at step {i}, "
                        f"this pipeline has {expected}"
                    )
                found[i][b] = entry["params"]
        params = []
        for items in found:
            step: Params = {"applied": torch.tensor([b in items for b in range(size)], dtype=torch.bool)}
            if items:
                template = {k: _tensor(v) for k, v in next(iter(items.values())).items()}
                for key, like in template.items():
                    # Items the step skipped get zeros, which apply leaves unused.
                    values = [
                        _tensor(items[b][key]) if b in items else torch.zeros_like(like) for b in range(size)
                    ]
                    step[key] = torch.stack(values)
            params.append(step)
        return params

    def replay(self, batch: Batch, record: Record) -> Batch:
        """Apply exactly what `record` says was applied."""
        if len(record) != batch.batch_size:
            raise ValueError(f"record has {len(record)} items, the batch {batch.batch_size}")
        return self.apply(batch, self.params_from_record(record))


def _tensor(value) -> torch.Tensor:
    """A JSON value back as the tensor it came from: floats as float64, ints as int64."""
    tensor = torch.tensor(value)
    return torch.tensor(value, dtype=torch.float64) if tensor.is_floating_point() else tensor
