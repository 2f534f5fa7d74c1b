"""Benchmark: `medsight qc` seconds per 1,000 images, time per check, and hashing against imagehash.

On a generated set of --n 2D images (--size square 8-bit PNG, train/val/test, with a few
byte copies and JPEG re-encodes planted across splits) and optionally --n3d CT volumes
(NIfTI int16, 128 x 128 x 48), it times (median of --repeats, after one untimed warm-up):

- `check_quality` in process, with one worker and with the default workers;
- ``python -m medsight qc MANIFEST --json`` as a fresh process (start-up included);
- the share of time per phase (reading, statistics, hashing, masks) and per check;
- perceptual hashing, ours against ``imagehash.phash(hash_size=16)`` on the same PNGs: each
  from the file (decode included) and from decoded pixels, with how many bits the two
  hashes differ (ours resizes float pixels, imagehash 8-bit ones).

Prints one JSON line.

    python bench/bench_qc.py [--n 1000] [--size 256] [--n3d 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from medsight.audit import check_quality  # noqa: E402
from medsight.audit._qc_hash import grey_view, perceptual_hash  # noqa: E402
from medsight.data import Manifest, Sample, write_manifest  # noqa: E402
from medsight.image import Image  # noqa: E402
from medsight.io import read, write  # noqa: E402

SPLITS = ("train",) * 7 + ("val",) * 1 + ("test",) * 2
PLANTED = 10  # byte copies and JPEG re-encodes each, from train into test


def picture(rng, size: int) -> np.ndarray:
    """(size, size) uint8: a dim background with a few bright ellipses and noise."""
    y, x = np.ogrid[:size, :size]
    pixels = np.full((size, size), 30, np.float32)
    for _ in range(4):
        cx, cy = rng.uniform(0.15, 0.85, 2) * size
        rx, ry = rng.uniform(0.08, 0.3, 2) * size
        pixels[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1] = rng.uniform(120, 230)
    pixels += rng.normal(0, 6, pixels.shape).astype(np.float32)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def make_2d(folder: Path, n: int, size: int) -> tuple[Path, list[Path]]:
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    samples, files = [], []
    for i in range(n - 2 * PLANTED):
        name = f"img{i:05d}.png"
        PILImage.fromarray(picture(rng, size)).save(folder / name)
        samples.append(
            Sample(image=name, label="ab"[(i // 10) % 2], patient_id=f"p{i}", split=SPLITS[i % 10])
        )
    train = [k for k in range(n - 2 * PLANTED) if SPLITS[k % 10] == "train"]
    for i, k in enumerate(train[:PLANTED]):
        source = folder / f"img{k:05d}.png"
        shutil.copy(source, folder / f"copy{i}.png")
        buffer = io.BytesIO()
        PILImage.open(source).save(buffer, format="JPEG", quality=90)
        (folder / f"jpeg{i}.jpg").write_bytes(buffer.getvalue())
        for name in (f"copy{i}.png", f"jpeg{i}.jpg"):
            samples.append(Sample(image=name, label="a", patient_id=f"dup-{name}", split="test"))
    files = [folder / s.image for s in samples]
    return write_manifest(
        Manifest(samples=samples, root=folder, classes=["a", "b"]), folder / "m.json"
    ), files


def make_3d(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(1)
    shape = (128, 128, 48)
    x, y, z = np.ogrid[: shape[0], : shape[1], : shape[2]]
    samples = []
    for i in range(n):
        hu = np.full(shape, -1000, np.int16)
        cx, cy = rng.uniform(50, 78, 2)
        body = ((x - cx) / rng.uniform(40, 60)) ** 2 + ((y - cy) / rng.uniform(30, 50)) ** 2 <= 1
        hu[np.broadcast_to(body, shape)] = 40
        organ = ((x - cx - 10) / 15) ** 2 + ((y - cy) / 12) ** 2 + ((z - 24) / rng.uniform(8, 20)) ** 2 <= 1
        hu[organ] = 60
        hu += rng.normal(0, 15, shape).astype(np.int16)
        write(Image(hu[None], np.diag([-0.8, -0.8, 3.0, 1.0])), folder / f"ct{i:04d}.nii.gz")
        write(
            Image(organ.astype(np.uint8)[None], np.diag([-0.8, -0.8, 3.0, 1.0]), kind="label"),
            folder / f"ct{i:04d}_mask.nii.gz",
        )
        samples.append(
            Sample(
                image=f"ct{i:04d}.nii.gz",
                mask=f"ct{i:04d}_mask.nii.gz",
                patient_id=f"c{i}",
                split=SPLITS[i % 10],
                attributes={"modality": "CT"},
            )
        )
    return write_manifest(Manifest(samples=samples, root=folder, label_names={1: "organ"}), folder / "m.json")


def timed(function, repeats: int) -> tuple[float, object]:
    function()  # warm-up: page cache, imports
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def qc_figures(manifest: Path, n: int, repeats: int) -> dict:
    figures = {}
    for workers in (1, None):
        seconds, report = timed(lambda w=workers: check_quality(manifest, workers=w), repeats)
        label = "workers_1" if workers == 1 else "workers_default"
        figures[label] = {"s_per_1000": round(seconds * 1000 / n, 3), "median_s": round(seconds, 3)}
    phases = {k: v for k, v in report.seconds.items() if k != "scan"}
    total = sum(phases.values())
    figures["share_of_time"] = {
        k: round(v / total, 4) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])
    }
    figures["summary"] = {k: v for k, v in report.summary.items() if k != "checks"}
    figures["found"] = {
        check: sum(f.check == check for f in report.findings if f.severity == "error")
        for check in ("duplicate", "near_duplicate")
    }
    return figures


def cli_seconds(manifest: Path, repeats: int) -> float:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    )
    command = [sys.executable, "-m", "medsight", "qc", str(manifest), "--json"]
    seconds, proc = timed(lambda: subprocess.run(command, capture_output=True, text=True, env=env), repeats)
    json.loads(proc.stdout)  # it must have produced its report
    return seconds


def hashing_figures(files: list[Path], repeats: int) -> dict:
    import imagehash
    from PIL import Image as PILImage

    def ours_from_files():
        return [perceptual_hash(grey_view(read(f).array)) for f in files]

    def theirs_from_files():
        return [imagehash.phash(PILImage.open(f), hash_size=16) for f in files]

    arrays = [read(f).array for f in files]
    pils = [PILImage.open(f).convert("L") for f in files]
    ours_files_s, ours = timed(ours_from_files, repeats)
    theirs_files_s, theirs = timed(theirs_from_files, repeats)
    ours_pixels_s, _ = timed(lambda: [perceptual_hash(grey_view(a)) for a in arrays], repeats)
    theirs_pixels_s, _ = timed(lambda: [imagehash.phash(p, hash_size=16) for p in pils], repeats)
    differ = [
        bin(int("".join(f"{int(w):016x}" for w in mine), 16) ^ int(str(other), 16)).count("1")
        for mine, other in zip(ours, theirs)
    ]
    per_1000 = 1000 / len(files)
    return {
        "hash_bits": 256,
        "ours_from_file_s_per_1000": round(ours_files_s * per_1000, 3),
        "imagehash_from_file_s_per_1000": round(theirs_files_s * per_1000, 3),
        "ratio_from_file_ours_over_imagehash": round(ours_files_s / theirs_files_s, 3),
        "ours_from_pixels_s_per_1000": round(ours_pixels_s * per_1000, 3),
        "imagehash_from_pixels_s_per_1000": round(theirs_pixels_s * per_1000, 3),
        "ratio_from_pixels_ours_over_imagehash": round(ours_pixels_s / theirs_pixels_s, 3),
        "bits_differing_from_imagehash": {"median": statistics.median(differ), "max": max(differ)},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="2D images")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--n3d", type=int, default=100, help="3D volumes (0: skip)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="medsight-bench-qc-") as tmp:
        folder = Path(tmp) / "2d"
        folder.mkdir()
        manifest, files = make_2d(folder, args.n, args.size)
        result = {
            "benchmark": "qc",
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "repeats": args.repeats,
            "images_2d": {"n": args.n, "size": args.size, **qc_figures(manifest, args.n, args.repeats)},
        }
        result["images_2d"]["cli_s_per_1000"] = round(cli_seconds(manifest, args.repeats) * 1000 / args.n, 3)
        result["hashing_2d"] = hashing_figures(files, args.repeats)
        if args.n3d:
            folder = Path(tmp) / "3d"
            folder.mkdir()
            result["volumes_3d"] = {
                "n": args.n3d,
                "shape": [128, 128, 48],
                **qc_figures(make_3d(folder, args.n3d), args.n3d, args.repeats),
            }
    result["machine"] = machine(("numpy", "pillow", "imagehash", "nibabel"))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
