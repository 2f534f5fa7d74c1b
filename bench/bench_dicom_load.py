"""Benchmark: load a CT DICOM series with medsight.io.read versus SimpleITK.

Builds a seeded synthetic CT-like volume (512 x 512 x N, int16, HU), writes it with
``medsight.io.dicom._write.write_series`` uncompressed (Explicit VR Little Endian) and as
JPEG 2000 lossless, then times, in the same run, on a warm page cache:

(a) ``medsight.io.read(folder)``
(b) ``sitk.ImageSeriesReader`` on ``GetGDCMSeriesFileNames(folder)`` + ``Image.from_sitk``

and checks that both give the same voxels and affine. Prints one JSON line.

    python bench/bench_dicom_load.py                      # 300 slices, 3 repeats
    python bench/bench_dicom_load.py --slices 40 --repeats 1   # smoke check
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import medsight  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _machine import machine as common_machine

from medsight.image import Image

STORAGES = {"uncompressed": "explicit", "jpeg2000": "jpeg2000"}


def ct_phantom(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A CT-like int16 volume in HU, array axes (i, j, k) = (left-right, front-back, foot-head).

    Air outside an elliptic body; fat rim, soft tissue, two lungs with vessels, spine,
    aorta, a liver and a few nodules; Gaussian noise of 12 HU. Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    ni, nj, nk = shape
    x = (np.arange(ni) - ni / 2 + 0.5) / (ni / 2)  # -1..1 left-right
    y = (np.arange(nj) - nj / 2 + 0.5) / (nj / 2)  # -1..1 front-back
    xx, yy = np.meshgrid(x, y, indexing="ij")
    nodules = [
        (
            rng.uniform(-0.6, 0.6),
            rng.uniform(-0.3, 0.3),
            rng.uniform(0.1, 0.9),
            rng.uniform(0.02, 0.05),
        )
        for _ in range(6)
    ]
    out = np.empty(shape, dtype=np.int16)
    for k in range(nk):
        z = k / max(nk - 1, 1)  # 0 at the feet, 1 at the head
        body_a, body_b = 0.85 - 0.1 * z, 0.62 - 0.05 * z
        body = (xx / body_a) ** 2 + (yy / body_b) ** 2
        sl = np.full((ni, nj), -1000.0, dtype=np.float32)
        sl[body <= 1.0] = -90.0  # fat
        sl[body <= 0.85] = 40.0  # soft tissue
        if z > 0.35:  # lungs in the upper part
            for side in (-1, 1):
                lung = ((xx - side * 0.38) / 0.28) ** 2 + ((yy + 0.05) / 0.4) ** 2 <= 1.0
                sl[lung] = -850.0
                vessel = ((xx - side * 0.33) / 0.03) ** 2 + ((yy + 0.1 * np.sin(8 * z)) / 0.03) ** 2
                sl[lung & (vessel <= 1.0)] = 30.0
        else:  # a liver below
            liver = ((xx + 0.3) / 0.35) ** 2 + ((yy + 0.05) / 0.3) ** 2 <= 1.0
            sl[liver] = 60.0
        sl[((xx / 0.07) ** 2 + ((yy - 0.42) / 0.08) ** 2) <= 1.0] = 700.0  # vertebra
        sl[((xx / 0.035) ** 2 + ((yy - 0.42) / 0.04) ** 2) <= 1.0] = 250.0  # marrow
        sl[(((xx - 0.08) / 0.05) ** 2 + ((yy - 0.22) / 0.05) ** 2) <= 1.0] = 180.0  # aorta
        for cx, cy, cz, r in nodules:
            if abs(z - cz) < r:
                rr = np.sqrt(r * r - (z - cz) ** 2)
                sl[((xx - cx) ** 2 + (yy - cy) ** 2) <= rr * rr] = 45.0
        sl += rng.standard_normal((ni, nj), dtype=np.float32) * 12.0
        out[:, :, k] = np.clip(np.round(sl), -1024, 3071)
    return out


def ct_affine(slice_thickness: float = 1.0, pixel: float = 0.7) -> np.ndarray:
    """Axial CT in the usual LPS layout (i to the left, j to the back), in RAS+."""
    affine = np.diag([-pixel, -pixel, slice_thickness, 1.0])
    affine[:3, 3] = [179.2, 179.2, -150.0]  # RAS+ centre of voxel (0, 0, 0)
    return affine


def warm(folder: Path) -> int:
    """Read every file once so both readers start from the page cache; returns bytes."""
    total = 0
    for path in sorted(folder.iterdir()):
        total += len(path.read_bytes())
    return total


def read_medsight(folder: Path) -> Image:
    import medsight.io

    return medsight.io.read(folder)


def read_sitk(folder: Path) -> Image:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return Image.from_sitk(reader.Execute())


def timed(fn, folder: Path) -> tuple[float, Image]:
    start = time.perf_counter()
    image = fn(folder)
    return time.perf_counter() - start, image


def machine() -> dict:
    import SimpleITK as sitk

    info = common_machine(("numpy", "pydicom", "SimpleITK", "imagecodecs", "pylibjpeg-openjpeg"))
    return {**info, "sitk_threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512, help="rows and columns")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storages", default=",".join(STORAGES), help="comma-separated subset")
    args = parser.parse_args(argv)
    from medsight.io.dicom._write import write_series

    shape = (args.size, args.size, args.slices)
    volume = Image(ct_phantom(shape, args.seed)[None], ct_affine(), metadata={"modality": "CT"})
    result: dict = {
        "benchmark": "dicom_series_load",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "shape": list(shape),
        "dtype": str(volume.array.dtype),
        "repeats": args.repeats,
        "storages": {},
    }
    with tempfile.TemporaryDirectory(prefix="medsight-bench-") as tmp:
        # Untimed warm-up on a tiny series: imports, codec set-up, lazy tables.
        for name in args.storages.split(","):
            tiny = Image(volume.array[:, :64, :64, :2], volume.affine)
            write_series(tiny, Path(tmp) / f"warmup-{name}", transfer_syntax=STORAGES[name])
            read_medsight(Path(tmp) / f"warmup-{name}")
            read_sitk(Path(tmp) / f"warmup-{name}")
        for name in args.storages.split(","):
            folder = Path(tmp) / name
            start = time.perf_counter()
            write_series(volume, folder, transfer_syntax=STORAGES[name], series_description=name)
            write_s = time.perf_counter() - start
            size = warm(folder)
            ms_times, sitk_times = [], []
            for r in range(args.repeats):
                # alternate the order so neither reader always runs second
                order = [("ms", read_medsight), ("sitk", read_sitk)]
                for label, fn in order if r % 2 == 0 else order[::-1]:
                    seconds, image = timed(fn, folder)
                    (ms_times if label == "ms" else sitk_times).append(seconds)
                    if label == "ms":
                        ms_image = image
                    else:
                        sitk_image = image
            ms_s, sitk_s = statistics.median(ms_times), statistics.median(sitk_times)
            same_shape = ms_image.array.shape == sitk_image.array.shape
            result["storages"][name] = {
                "transfer_syntax": STORAGES[name],
                "files": args.slices,
                "bytes": size,
                "write_s": round(write_s, 4),
                "medsight_s": round(ms_s, 4),
                "sitk_s": round(sitk_s, 4),
                "ratio_medsight_over_sitk": round(ms_s / sitk_s, 3),
                "medsight_all_s": [round(t, 4) for t in ms_times],
                "sitk_all_s": [round(t, 4) for t in sitk_times],
                "voxels_identical": bool(same_shape and np.array_equal(ms_image.array, sitk_image.array)),
                "voxels_identical_to_written": bool(
                    ms_image.array.shape == volume.array.shape
                    and np.array_equal(ms_image.array, volume.array)
                ),
                "dtype_medsight": str(ms_image.array.dtype),
                "dtype_sitk": str(sitk_image.array.dtype),
                "affine_max_abs_diff": float(np.abs(ms_image.affine - sitk_image.affine).max()),
                "affine_max_abs_diff_to_written": float(np.abs(ms_image.affine - volume.affine).max()),
            }
    result["machine"] = machine()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
