"""What a dataset holds: counts per split and class, sizes, spacings, modalities, attributes."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from medsight.data.manifest import Manifest
from medsight.errors import MedsightError

__all__ = ["describe"]


def describe(manifest: Manifest, *, max_images: int = 500, seed: int = 0) -> dict:
    """A JSON-friendly summary of `manifest`.

    Image sizes, spacings and modalities come from reading up to `max_images` images
    (a seeded random sample of them when there are more; the summary says so).
    """
    samples = manifest.samples
    splits = Counter(s.split or "(none)" for s in samples)
    out: dict = {
        "name": manifest.name,
        "source": manifest.source,
        "samples": len(samples),
        "targets": sorted(manifest.targets),
        "splits": dict(sorted(splits.items())),
        "patients": len({s.patient_id for s in samples if s.patient_id}),
        "samples_without_patient_id": sum(s.patient_id is None for s in samples),
    }
    if "label" in manifest.targets:
        per_split: dict[str, Counter] = defaultdict(Counter)
        for s in samples:
            per_split[s.split or "(none)"].update(s.labels or ["(unlabelled)"])
        out["classes"] = {split: dict(sorted(c.items())) for split, c in sorted(per_split.items())}
    if "boxes" in manifest.targets:
        boxes = [b for s in samples for b in (s.boxes or [])]
        out["boxes"] = {
            "total": len(boxes),
            "images_without_boxes": sum(not s.boxes for s in samples),
            "labels": dict(Counter(b["label"] for b in boxes)),
        }
    if manifest.label_names:
        out["label_names"] = {str(k): v for k, v in sorted(manifest.label_names.items())}
    out["attributes"] = _attributes(samples)
    out["images"] = _images(manifest, max_images, seed)
    return out


def _attributes(samples) -> dict:
    values: dict[str, list] = defaultdict(list)
    for s in samples:
        for key, value in s.attributes.items():
            values[key].append(value)
    summary = {}
    for key, vals in sorted(values.items()):
        numeric = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        entry: dict = {"present": len(vals), "missing": len(samples) - len(vals)}
        if numeric and len(numeric) == len(vals):
            entry.update(min=min(numeric), median=float(np.median(numeric)), max=max(numeric))
        else:
            entry["counts"] = dict(Counter(str(v) for v in vals).most_common(20))
        summary[key] = entry
    return summary


def _images(manifest: Manifest, max_images: int, seed: int) -> dict:
    samples = manifest.samples
    chosen = samples
    if len(samples) > max_images:
        idx = np.random.default_rng(seed).choice(len(samples), max_images, replace=False)
        chosen = [samples[i] for i in sorted(idx)]
    shapes, spacings, modalities, dims, channels, unreadable = (
        Counter(),
        Counter(),
        Counter(),
        Counter(),
        Counter(),
        [],
    )
    for s in chosen:
        try:
            image = manifest.load_image(s)
        except MedsightError as exc:
            unreadable.append(f"{s.key}: {exc.problem}")
            continue
        shapes[tuple(image.spatial_shape)] += 1
        spacings[tuple(round(v, 3) for v in image.spacing)] += 1
        modalities[image.metadata.get("modality") or image.metadata.get("format") or "?"] += 1
        dims[f"{image.ndim}D"] += 1
        channels[image.num_channels] += 1
    read = len(chosen) - len(unreadable)
    out = {
        "read": read,
        "sampled": len(chosen) < len(samples),
        "dimensions": dict(dims),
        "channels": {str(k): v for k, v in channels.items()},
        "modalities": dict(modalities),
        "shapes": {"x".join(map(str, k)): v for k, v in shapes.most_common(10)},
        "spacings_mm": {"x".join(map(str, k)): v for k, v in spacings.most_common(10)},
    }
    if shapes:
        arr = np.array([k for k in shapes.elements()]) if len({len(k) for k in shapes}) == 1 else None
        if arr is not None:
            out["size_min"] = arr.min(axis=0).tolist()
            out["size_max"] = arr.max(axis=0).tolist()
    if unreadable:
        out["unreadable"] = unreadable[:20]
        out["unreadable_count"] = len(unreadable)
    return out
