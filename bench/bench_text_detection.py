"""Benchmark: burned-in text detection (`medsight.deid.pixels.text_boxes`), recall, false alarms, speed.

Recall: strings (names, IDs, date-times, random letters and digits) rendered by Pillow at
10-49 px (DejaVu Sans, Sans Mono, Sans Bold, or Pillow's own font), bright (85 %) or dark,
six per image, over 33 backgrounds: chest X-ray, ultrasound and CT phantoms
(`medsight.data.synthetic`, `bench_dicom_load.ct_phantom`), and real BUSI ultrasound, chest
X-rays and DICOM images from the shared data folder. A string is found when the returned
boxes cover 90 % of its ink box. Recall is given for strings at least 8 px high by contrast
band (the text value against the median of the pixels under its box, as a fraction of the
image range).

False alarms: the detector on text-free images, per group: ultrasound phantoms (12 seeds),
BUSI images without text or calliper marks (checked by eye; the scanner's "LOGIQ E9" label
cropped in their top-left corner is a known annotation and is not counted), radiograph
phantoms (8 seeds), real radiographs (the CR laterality marker "L"/"HSA" not counted), and
CT slices (not searched for text by `medsight deid`, given for information). For each
group: the fraction of images with any box, and the mean fraction of the image area boxed.

Speed: detector CPU time per 512x512 frame (total time over total pixels, scaled), one thread;
wall time beside it.

Real groups are read from ``$MEDSIGHT_SHARED_DATA`` or ``../shared/data`` and left out when
absent. Prints one JSON line.

    python bench/bench_text_detection.py                       # seeds 0, 1, 2
    python bench/bench_text_detection.py --detector old.py     # a file defining text_boxes(gray)
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import string
import sys
import time
from pathlib import Path

import numpy as np

try:
    import medsight  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _machine import machine as common_machine

# BUSI images (file stems) that carry words or calliper marks besides the corner label.
BUSI_WITH_TEXT = {
    "benign": {1, 2, 3, 4, 5, 6, 9, 11, 14, 19, 22, 34, 36, 46},
    "malignant": {2, 10, 11, 12, 13, 14, 15, 26},
    "normal": {25, 31},
}
BUSI_CORNER = (0, 0, 48, 100)  # the scanner's label, cut by the crop: known text
CR_MARKER = (30, 840, 100, 950)  # the CR's laterality marker, in its 1024x1024 pixels
BANDS = ((0.0, 0.15), (0.15, 0.25), (0.25, 0.4), (0.4, 1.01))


def shared_data() -> Path | None:
    for root in (
        os.environ.get("MEDSIGHT_SHARED_DATA"),
        Path(__file__).resolve().parents[1] / "../shared/data",
    ):
        if root and Path(root).is_dir():
            return Path(root)
    return None


def _dicom(path: Path):
    import pydicom

    try:
        pixels = pydicom.dcmread(path).pixel_array
    except Exception:  # noqa: BLE001 - a missing codec leaves the image out
        return None
    return pixels if pixels.ndim == 2 else None


def recall_backgrounds(data: Path | None) -> list[tuple[str, np.ndarray]]:
    """The 33 backgrounds text is rendered on (fewer without the shared data)."""
    from bench_dicom_load import ct_phantom

    from medsight.data.synthetic import body_ct, chest_xray, ultrasound

    out = []
    for seed in range(4):
        out.append(("chest", chest_xray(seed=seed, shape=(512, 512)).image.array[0]))
        label = ["normal", "benign", "malignant"][seed % 3]
        out.append(("us", ultrasound(seed=seed, shape=(480, 360), spacing=0.1, label=label).image.array[0].T))
    ct = body_ct(seed=0).image.array[0]
    out += [("ct", ct[:, :, 30]), ("ct", ct[:, :, 45])]
    volume = ct_phantom((512, 512, 2))
    out += [("ctbench", volume[:, :, 0]), ("ctbench", volume[:, :, 1])]
    if data is None:
        return out
    from PIL import Image

    busi = (
        sorted(glob.glob(str(data / "busi/*/*).png")))[:6]
        + sorted(glob.glob(str(data / "busi/normal/*).png")))[:3]
    )
    out += [("busi", np.asarray(Image.open(f).convert("L"))) for f in busi]
    for f in glob.glob(str(data / "cxr/*.png")) + glob.glob(str(data / "cxr/tbx11k_test_data/imgs/*/*.png")):
        image = Image.open(f)
        out.append(("cxr", np.asarray(image if image.mode in ("L", "I;16", "I") else image.convert("L"))))
    files = sorted(glob.glob(str(data / "dicom/totalseg_ct_series_j2k/*")))[:3]
    files += [
        str(data / "cxr/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"),
        str(data / "dicom/torchio_series/IMG0008.dcm"),
        str(data / "dicom/pydicom/MR_small.dcm"),
        str(data / "dicom/highdicom/dx_image.dcm"),
    ]
    for f in files:
        pixels = _dicom(Path(f))
        if pixels is not None:
            import pydicom

            out.append(("dcm-" + str(pydicom.dcmread(f, stop_before_pixels=True).Modality), pixels))
    return out


def clean_backgrounds(data: Path | None) -> list[tuple[str, np.ndarray, list]]:
    """Text-free images: (group, pixels, known annotation boxes not counted as false alarms)."""
    from bench_dicom_load import ct_phantom

    from medsight.data.synthetic import body_ct, chest_xray, ultrasound

    out = []
    for seed in range(12):
        label = ["normal", "benign", "malignant"][seed % 3]
        out.append(
            (
                "us_phantom",
                ultrasound(seed=seed, shape=(480, 360), spacing=0.1, label=label).image.array[0].T,
                [],
            )
        )
    for seed in range(8):
        out.append(("radiograph_phantom", chest_xray(seed=seed, shape=(512, 512)).image.array[0], []))
    ct = body_ct(seed=0).image.array[0]
    out += [("ct", ct[:, :, k], []) for k in (30, 45)]
    volume = ct_phantom((512, 512, 2))
    out += [("ct", volume[:, :, k], []) for k in (0, 1)]
    if data is None:
        return out
    from PIL import Image

    for f in sorted(glob.glob(str(data / "busi/*/*).png"))):
        kind, number = Path(f).stem.split(" (")
        if int(number.rstrip(")")) not in BUSI_WITH_TEXT[kind]:
            out.append(("busi", np.asarray(Image.open(f).convert("L")), [BUSI_CORNER]))
    for f in glob.glob(str(data / "cxr/*.png")) + glob.glob(str(data / "cxr/tbx11k_test_data/imgs/*/*.png")):
        image = Image.open(f)
        out.append(
            (
                "radiograph_real",
                np.asarray(image if image.mode in ("L", "I;16", "I") else image.convert("L")),
                [],
            )
        )
    for f, known in (
        (data / "cxr/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm", [CR_MARKER]),
        (data / "dicom/highdicom/dx_image.dcm", []),
    ):
        pixels = _dicom(f)
        if pixels is not None:
            out.append(("radiograph_real", pixels, known))
    for f in sorted(glob.glob(str(data / "dicom/totalseg_ct_series_j2k/*")))[:3]:
        pixels = _dicom(Path(f))
        if pixels is not None:
            out.append(("ct", pixels, []))
    return out


def gray(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    low, high = a.min(), a.max()
    return (a - low) / (high - low)


def random_text(rng) -> str:
    kind = rng.integers(4)
    upper, digits = string.ascii_uppercase, string.digits
    if kind == 0:
        return (
            "".join(rng.choice(list(upper), rng.integers(4, 10)))
            + "^"
            + "".join(rng.choice(list(upper), rng.integers(3, 8)))
        )
    if kind == 1:
        return "ID " + "".join(rng.choice(list(digits), rng.integers(6, 10)))
    if kind == 2:
        year, month, day = rng.integers(1920, 2024), rng.integers(1, 13), rng.integers(1, 29)
        return f"{year}/{month:02d}/{day:02d} {rng.integers(24):02d}:{rng.integers(60):02d}"
    return (
        "".join(rng.choice(list(upper + digits + string.ascii_lowercase + "  "), rng.integers(3, 14))).strip()
        or "AB"
    )


def covered(box, boxes) -> float:
    r0, c0, r1, c1 = box
    mask = np.zeros((r1 - r0, c1 - c0), bool)
    for a, b, c, d in boxes:
        mask[max(a - r0, 0) : max(min(c, r1) - r0, 0), max(b - c0, 0) : max(min(d, c1) - c0, 0)] = True
    return float(mask.mean())


class Timer:
    """The detector, timed: CPU seconds of this process (fair on a shared machine) and wall."""

    def __init__(self, detector):
        self.detector, self.seconds, self.wall, self.pixels = detector, 0.0, 0.0, 0

    def __call__(self, image):
        start, wall = time.process_time(), time.perf_counter()
        boxes = self.detector(image)
        self.seconds += time.process_time() - start
        self.wall += time.perf_counter() - wall
        self.pixels += image.size
        return boxes


def recall(detect, backgrounds, seed: int, per_image: int = 6) -> list[tuple[float, int, bool]]:
    """(contrast, height, found) for each string rendered; the same strings for a seed."""
    from medsight.data.synthetic.phi_corpus import _FONTS, burn_text

    rng = np.random.default_rng(seed)
    found = []
    for _, a in backgrounds:
        img, placed = a.copy(), []
        low, high = float(a.min()), float(a.max())
        taken = np.zeros(a.shape, bool)
        for _ in range(per_image):
            for _ in range(20):
                size, text = int(rng.integers(10, 50)), random_text(rng)
                row = int(rng.integers(0, a.shape[0] - size))
                col = int(rng.integers(0, max(1, a.shape[1] - size * len(text) // 2)))
                dark = rng.random() < 0.15
                value = low + (rng.uniform(0, 0.1) if dark else rng.uniform(0.8, 1.0)) * (high - low)
                font = _FONTS[rng.integers(len(_FONTS))] if rng.random() < 0.8 else None
                new, box = burn_text(img, text, row=row, col=col, size=size, value=value, font=font)
                if box[2] - box[0] < 3 or box[3] >= a.shape[1] - 1 or box[2] >= a.shape[0] - 1:
                    continue
                if taken[max(box[0] - 4, 0) : box[2] + 4, max(box[1] - 4, 0) : box[3] + 4].any():
                    continue
                contrast = abs(value - float(np.median(img[box[0] : box[2], box[1] : box[3]]))) / (high - low)
                taken[box[0] : box[2], box[1] : box[3]] = True
                img = new
                placed.append((box, contrast))
                break
        boxes = detect(gray(img))
        found += [(contrast, box[2] - box[0], covered(box, boxes) >= 0.9) for box, contrast in placed]
    return found


def false_alarms(detect, images) -> dict:
    groups: dict[str, list] = {}
    for group, a, known in images:
        boxes = detect(gray(a))
        area = np.zeros(a.shape, bool)
        for box in boxes:
            r0, c0, r1, c1 = box
            if any(covered(box, [k]) >= 0.5 for k in known):
                continue
            area[r0:r1, c0:c1] = True
        groups.setdefault(group, []).append(float(area.mean()))
    return {
        g: {
            "images": len(v),
            "flagged": round(float(np.mean([x > 0 for x in v])), 3),
            "area": round(float(np.mean(v)), 4),
        }
        for g, v in groups.items()
    }


def load_detector(path: str | None):
    if path is None:
        from medsight.deid.pixels import text_boxes

        return text_boxes
    spec = importlib.util.spec_from_file_location("detector_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.text_boxes


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--detector", help="a Python file defining text_boxes(gray); default: medsight's")
    args = parser.parse_args(argv)
    data = shared_data()
    detect = Timer(load_detector(args.detector))
    backgrounds = recall_backgrounds(data)
    strings = []
    for seed in (int(s) for s in args.seeds.split(",")):
        strings += recall(detect, backgrounds, seed)
    tall = [(c, ok) for c, h, ok in strings if h >= 8]
    bands = {}
    for low, high in BANDS:
        hits = [ok for c, ok in tall if low <= c < high]
        bands[f"{low:g}-{min(high, 1):g}"] = {
            "recall": round(float(np.mean(hits)), 3) if hits else None,
            "n": len(hits),
        }
    at_25 = [ok for c, ok in tall if c >= 0.25]
    result = {
        "benchmark": "text_detection",
        "detector": args.detector or "medsight.deid.pixels.text_boxes",
        "seeds": args.seeds,
        "shared_data": data is not None,
        "recall_8px_by_contrast": bands,
        "recall_8px_contrast_0.25+": round(float(np.mean(at_25)), 3) if at_25 else None,
        "false_alarms": false_alarms(detect, clean_backgrounds(data)),
        "ms_per_512x512": round(detect.seconds / detect.pixels * 512 * 512 * 1000, 1),
        "ms_per_512x512_wall": round(detect.wall / detect.pixels * 512 * 512 * 1000, 1),
        "machine": common_machine(("numpy", "scipy", "pillow")),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
