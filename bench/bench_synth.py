"""Benchmark: synthetic cohorts, 20 images of each kind, generated and exported.

For each kind (default grids), times:

- generating 20 images in memory (`cohort`, one visit per patient),
- exporting them (`export_cohort`: PNG for 2D kinds, NIfTI for 3D, plus masks, manifest),
- and, as the field's reference, MONAI's ``create_test_image_2d/3d`` making 20 images of the
  same size (random spheres and a label map; no anatomy, patients or noise model), when
  MONAI is installed.

Also checks the claim the phantoms rest on: label volumes against the exact volumes (the
largest relative error over all labels of the 3D kinds). Prints one JSON line.

    python bench/bench_synth.py [--n 20] [--kinds chest-xray,brain-mri]
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine

from medsight.data.synthetic import KINDS, cohort, export_cohort


def monai_reference(shape: tuple[int, ...], n: int) -> float | None:
    """Seconds for MONAI to make `n` test images of `shape`, or None without MONAI."""
    try:
        from monai.data.synthetic import create_test_image_2d, create_test_image_3d
    except ImportError:
        return None
    make = create_test_image_2d if len(shape) == 2 else create_test_image_3d
    start = time.perf_counter()
    for seed in range(n):
        make(
            *shape,
            num_objs=8,
            rad_max=max(shape) // 6,
            noise_max=0.1,
            random_state=np.random.RandomState(seed),
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="images per kind")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()

    results = {}
    for kind in args.kinds.split(","):
        start = time.perf_counter()
        cases = list(cohort(kind, args.n, seed=0, timepoints=1))
        generate = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            export_cohort(kind, Path(tmp) / "out", n=args.n, seed=0, timepoints=1)
            export = time.perf_counter() - start
        worst = 0.0
        for case in cases:
            if case.image.ndim == 3:
                labels, ml = case.mask.array[0], case.image.voxel_volume / 1000
                for value, name in case.label_names.items():
                    exact = case.truth["volumes_ml"][name]
                    if exact * 1000 / case.image.voxel_volume >= 50:  # 1 % is one voxel below that
                        worst = max(worst, abs((labels == value).sum() * ml / exact - 1))
        reference = monai_reference(cases[0].image.spatial_shape, args.n)
        results[kind] = {
            "images": args.n,
            "shape": list(cases[0].image.spatial_shape),
            "generate_s": round(generate, 3),
            "export_s": round(export, 3),
            "monai_test_images_s": None if reference is None else round(reference, 3),
            "ratio_generate_over_monai": None if not reference else round(generate / reference, 2),
            "max_label_volume_error": round(worst, 5) if cases[0].image.ndim == 3 else None,
        }
    record = {
        "benchmark": "synth",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(("numpy", "SimpleITK", "nibabel", "pydicom", "monai")),
        "kinds": results,
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
