"""Benchmark: batched augmentation (medsight.data.augment) versus MONAI's per-item transforms.

Same image + mask (single channel float32 image, uint8 labels), same transforms, every
one drawn with probability 1 on both sides so the work is equal:

- medsight: ``default_augmentation(ndim)`` (flips, rotation + scaling resampled once,
  noise, blur, intensity scale and shift, contrast about the mean, gamma; no elastic)
  on the whole batch, record included.
- MONAI: dictionary transforms per item, as a Dataset/DataLoader worker runs them,
  then stacked into a batch: RandFlipd (each axis), RandAffined (rotate + scale,
  bilinear / nearest), RandGaussianNoised, RandGaussianSmoothd, RandScaleIntensityd,
  RandShiftIntensityd, RandScaleIntensityFixedMeand (contrast about the mean),
  RandAdjustContrastd (gamma). Twice: in this process with the same torch threads
  (``monai``), and in a DataLoader with one single-threaded worker process per
  thread (``monai_loader``), MONAI's usual set-up on a CPU.

Runs of all sides alternate, so load from other processes hits them alike; the
figure is the median over runs. Prints one JSON line.

    python bench/bench_augment.py                 # 2D 16 x 256^2 and 3D 2 x 96^3
    python bench/bench_augment.py --quick         # tiny smoke check, not a timing
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

try:
    import medsight  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch
from _machine import machine

from medsight.data.augment import Batch, Pipeline, default_augmentation


def inputs(batch_size: int, shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded smooth random images in [0, 1] and a 3-label mask cut from them."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((batch_size, 1, *[max(n // 8, 2) for n in shape]), generator=generator)
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    image = torch.nn.functional.interpolate(coarse, size=shape, mode=mode, align_corners=False)
    mask = (image > 0.4).to(torch.uint8) + (image > 0.6).to(torch.uint8)
    return image.contiguous(), mask


def ours(ndim: int) -> Pipeline:
    default = default_augmentation(ndim, padding="zeros")  # MONAI has no "minimum" padding
    return Pipeline([(transform, 1.0) for transform, _ in default.steps], padding=default.padding)


def monai_pipeline(ndim: int, seed: int):
    from monai.transforms import (
        Compose,
        RandAdjustContrastd,
        RandAffined,
        RandFlipd,
        RandGaussianNoised,
        RandGaussianSmoothd,
        RandScaleIntensityd,
        RandScaleIntensityFixedMeand,
        RandShiftIntensityd,
    )

    keys, sigma = ["image", "label"], (0.5, 1.0)  # our "medium" ranges
    transforms = [RandFlipd(keys, prob=1.0, spatial_axis=axis) for axis in range(ndim)]
    transforms += [
        RandAffined(
            keys,
            prob=1.0,
            rotate_range=[math.radians(15)] * (1 if ndim == 2 else 3),
            scale_range=[(-0.15, 0.25)] * ndim,
            mode=("bilinear", "nearest"),
            padding_mode="zeros",
        ),
        RandGaussianNoised("image", prob=1.0, std=0.1),
        RandGaussianSmoothd("image", prob=1.0, sigma_x=sigma, sigma_y=sigma, sigma_z=sigma),
        RandScaleIntensityd("image", prob=1.0, factors=0.25),
        RandShiftIntensityd("image", prob=1.0, offsets=0.1),
        RandScaleIntensityFixedMeand("image", prob=1.0, factors=0.25),
        RandAdjustContrastd("image", prob=1.0, gamma=(0.7, 1.5)),
    ]
    compose = Compose(transforms)
    compose.set_random_state(seed)
    return compose


class MonaiItems(torch.utils.data.Dataset):
    """`length` items cycling over `items`, each through MONAI's transforms, as a training Dataset."""

    def __init__(self, items: list[dict], transform, length: int):
        self.items, self.transform, self.length = items, transform, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        out = self.transform(dict(self.items[index % len(self.items)]))
        return out["image"].as_tensor(), out["label"].as_tensor()


def time_case(ndim: int, batch_size: int, size: int, repeats: int, batches: int, warmup: int) -> dict:
    shape = (size,) * ndim
    image, mask = inputs(batch_size, shape, seed=0)
    pipeline = ours(ndim)
    monai = monai_pipeline(ndim, seed=0)
    generator = torch.Generator().manual_seed(0)
    items = [{"image": image[b], "label": mask[b]} for b in range(batch_size)]
    # MONAI's usual set-up: one worker process per core, one torch thread each, whole
    # batches per worker, so an epoch of a multiple of `workers` batches keeps all busy.
    workers = torch.get_num_threads()
    per_epoch = workers * math.ceil(batches / workers)
    loader = torch.utils.data.DataLoader(
        MonaiItems(items, monai, per_epoch * batch_size),
        batch_size=batch_size,
        num_workers=workers,
        persistent_workers=True,
        prefetch_factor=1,
    )

    def run_ours():
        out, _ = pipeline(Batch(image, mask=mask), generator)
        return [(out.image, out.mask)]

    def run_monai():
        results = [monai(dict(item)) for item in items]  # per item, as in a Dataset
        images = torch.stack([r["image"].as_tensor() for r in results])
        return [(images, torch.stack([r["label"].as_tensor() for r in results]))]

    def run_loader():
        return list(loader)  # one epoch: per_epoch batches

    sides = {"medsight": (run_ours, 1), "monai": (run_monai, 1), "monai_loader": (run_loader, per_epoch)}
    checks = {}
    for name, (run, _) in sides.items():
        out_image, out_mask = run()[0]
        checks[name] = {
            "image_shape": list(out_image.shape),
            "labels_kept": set(out_mask.unique().tolist()) <= {0, 1, 2},
        }
        for _ in range(warmup - 1):
            run()
    rates = {name: [] for name in sides}
    for _ in range(repeats):  # alternate, so background load hits every side alike
        for name, (run, per_call) in sides.items():
            calls = max(1, batches // per_call)
            start = time.perf_counter()
            for _ in range(calls):
                run()
            rates[name].append(calls * per_call / (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "shape": list(shape),
        "batch_size": batch_size,
        "medsight_batches_per_s": round(median["medsight"], 3),
        "monai_batches_per_s": round(median["monai"], 3),
        "ratio_medsight_over_monai": round(median["medsight"] / median["monai"], 2),
        "monai_loader_workers": workers,
        "monai_loader_batches_per_s": round(median["monai_loader"], 3),
        "ratio_medsight_over_monai_loader": round(median["medsight"] / median["monai_loader"], 2),
        "runs_batches_per_s": {k: [round(r, 3) for r in v] for k, v in rates.items()},
        "checks": checks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per side; the median is reported")
    parser.add_argument("--batches", type=int, default=4, help="batches per timed run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches per side first")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one run: a smoke check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = {"2d": (2, 16, 256), "3d": (3, 2, 96)}
    if args.quick:
        cases = {"2d": (2, 2, 32), "3d": (3, 1, 16)}
        args.repeats, args.batches, args.warmup = 1, 1, 1
    result = {
        "benchmark": "augment",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "batches_per_run": args.batches,
        "cases": {
            name: time_case(ndim, batch, size, args.repeats, args.batches, args.warmup)
            for name, (ndim, batch, size) in cases.items()
        },
        "machine": machine(("torch", "monai", "numpy")),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
