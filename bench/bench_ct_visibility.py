"""How visible the CT phantom's liver tumours are against the liver's own noise (no model).

For each scan of the cohort `bench_detect.py --datasets ct` trains on (180 patients, seed 0):
the image's 3 x 3 x 3 voxel mean minus the liver's median HU. A tumour's darkness is the
lowest such mean inside it (the tumours are hypodense); the liver's own dark spots are the
local minima (5-voxel neighbourhood) of that mean in the liver away from its edge (2 voxels
in). The number of spots per scan darker than a tumour says how many false positives a
reader who goes by darkness alone would meet before finding it. Prints ONE JSON line.

    python bench/bench_ct_visibility.py [--cohort DIR]   # DIR: an exported body-ct cohort
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

THRESHOLDS_HU = (-20, -30, -40, -50)
DIAMETER_BANDS_MM = ((0, 15), (15, 20), (20, 25), (25, np.inf))


def scan_figures(hu: np.ndarray, labels: np.ndarray, liver: int, tumour: int):
    """Per scan: counts of liver spots darker than each threshold; each tumour's (voxels, darkness)."""
    from scipy import ndimage

    darkness = ndimage.uniform_filter(hu.astype(np.float32), 3) - np.median(hu[labels == liver])
    inner = ndimage.binary_erosion(labels == liver, iterations=2)
    spots = darkness[(darkness == ndimage.minimum_filter(darkness, size=5)) & inner]
    components, n = ndimage.label(labels == tumour)
    voxels = np.bincount(components.ravel(), minlength=n + 1)[1:]
    darkest = ndimage.minimum(darkness, components, index=np.arange(1, n + 1))
    return [int((spots < t).sum()) for t in THRESHOLDS_HU], list(zip(voxels.tolist(), darkest))


def main(argv=None) -> dict:
    from medsight.data import load_dataset
    from medsight.data.synthetic import export_cohort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=Path, help="an exported body-ct cohort (default: export one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cohort = args.cohort or export_cohort("body-ct", Path(tmp) / "ct", n=180, seed=0, timepoints=1)
        manifest = load_dataset(cohort)
        names = {v: k for k, v in manifest.label_names.items()}
        counts, tumours = [], []
        for sample in manifest:
            image = manifest.load_image(sample)
            labels = manifest.load_mask(sample).array[0]
            spots, found = scan_figures(image.array[0], labels, names["liver"], names["tumour"])
            counts.append(spots)
            # the diameter of a sphere of the tumour's volume, as the phantom's truth gives it
            tumours += [(2 * (3 * v * image.voxel_volume / (4 * np.pi)) ** (1 / 3), d) for v, d in found]
    tumours = np.asarray(tumours)
    bands = {}
    for lo, hi in DIAMETER_BANDS_MM:
        dark = tumours[(tumours[:, 0] >= lo) & (tumours[:, 0] < hi), 1]
        bands[f"{lo}-{hi} mm"] = {
            "tumours": len(dark),
            "darkness_hu_p10_p50_p90": np.percentile(dark, [10, 50, 90]).round(1).tolist(),
        }
    out = {
        "benchmark": "ct_visibility",
        "scans": len(counts),
        "liver_spots_per_scan_darker_than": dict(
            zip(map(str, THRESHOLDS_HU), np.mean(counts, axis=0).round(2).tolist())
        ),
        "tumour_darkness_by_diameter": bands,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
