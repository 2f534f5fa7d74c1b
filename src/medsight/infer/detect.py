"""Detection prediction and evaluation: boxes in voxels and in patient millimetres, overlays.

    detector = Detector.load("model_dir")
    findings = detector.predict(read("chest.png"))         # list of dicts, best score first
    detector.predict_paths(["a.png", "ct_series/"], "out/")  # detections.json/.csv, overlay PNGs
    result = evaluate_detector("model_dir", "data/", split="test")   # AP50, mAP, FROC with CIs

A finding is ``{"label", "score", "box", "corners_mm", "centre_mm", "size_mm"}``: ``box`` in
voxels of the input image (``[i0, j0, i1, j1]``, i = column, upper corners exclusive; 3D
adds ``k``), the rest in RAS+ mm through the image's affine (`medsight.tasks.detect.boxes`).
Boxes come after MONAI's box selection: score threshold, top-k per level and NMS, as planned;
where training kept test-time mirroring (``inference.mirror_axes``), the mirrored views' boxes
are fused (`medsight.tasks.detect.fusion`).
A one-slice volume (a DICOM radiograph with a position) is predicted as the 2D image it holds.
For DICOM input, `predict_paths` also writes the findings as a DICOM SR measurement report
(TID 1500, `medsight.io.write_detection_sr`) that references the source instances.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import FormatError
from medsight.image import Image
from medsight.io._atomic import atomic_path
from medsight.models.bundle import Bundle, load_bundle
from medsight.tasks.detect.boxes import boxes_to_mm, check_boxes
from medsight.tasks.detect.preprocess import as_planar, boxes_to_image, normalize, prepare

__all__ = ["Detector", "evaluate_detector", "write_detect_evaluation"]

_COLOURS = [(255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120), (255, 120, 255)]


@dataclass
class Detector:
    bundle: Bundle
    network: object
    detector: object
    device: str = "cpu"

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu") -> Detector:
        from medsight.tasks.detect.detector import make_detector

        bundle = load_bundle(folder, task="detect")
        network = bundle.build().to(device)
        return cls(bundle, network, make_detector(network, bundle.plan).to(device), device)

    @property
    def classes(self) -> list[str]:
        return list(self.bundle.labels)

    def predict_boxes(self, image: Image) -> dict:
        """``{"boxes": (N, 2d) voxels of `image`, "scores": (N,), "labels": [names]}``, best first."""
        import torch

        from medsight.tasks.detect.detector import detect, inference_precision

        pre = self.bundle.plan["preprocess"]
        image = as_planar(image)
        array, scale = prepare(image, pre)
        x = normalize(torch.from_numpy(array)[None].to(self.device), pre["normalize"])
        plan = self.bundle.plan
        mirror = plan.get("inference", {}).get("mirror_axes", [])
        found = detect(self.detector, x, inference_precision(plan, self.device), mirror)[0]
        order = np.argsort(-found["scores"], kind="stable")
        boxes = boxes_to_image(found["boxes"][order], scale, image.spatial_shape)
        return {
            "boxes": boxes,
            "scores": found["scores"][order],
            "labels": [self.classes[k] for k in found["labels"][order]],
        }

    def predict(self, image: Image) -> list[dict]:
        """Findings in `image`, best score first (see the module docstring)."""
        found = self.predict_boxes(image)
        mm = boxes_to_mm(found["boxes"], image.affine) if len(found["boxes"]) else None
        return [
            {
                "label": label,
                "score": round(float(score), 6),
                "box": [round(float(v), 3) for v in box],
                "corners_mm": np.round(mm["corners_mm"][n], 3).tolist(),
                "centre_mm": np.round(mm["centre_mm"][n], 3).tolist(),
                "size_mm": np.round(mm["size_mm"][n], 3).tolist(),
            }
            for n, (box, score, label) in enumerate(zip(found["boxes"], found["scores"], found["labels"]))
        ]

    def predict_paths(self, paths, out: str | Path | None = None, *, min_score: float = 0.0) -> list[dict]:
        """Predict each input (file or DICOM series folder); with `out` (a folder), write
        ``detections.json``, ``detections.csv`` and ``<name>_boxes.png`` overlays into it, and for
        DICOM input (one file per slice) ``<name>_sr.dcm``, a DICOM SR of the findings."""
        from medsight.infer.classify import expand_inputs
        from medsight.io import read, write_detection_sr
        from medsight.io._sniff import image_stem

        rows = []
        folder = None if out is None else Path(out)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        for path in expand_inputs(paths):
            image = as_planar(read(path))
            findings = [f for f in self.predict(image) if f["score"] >= min_score]
            row = {"input": str(path), "shape": list(image.spatial_shape), "findings": findings}
            if folder is not None:
                overlay = folder / f"{image_stem(path)}_boxes.png"
                write_overlay(image, findings, overlay)
                row["overlay"] = str(overlay)
                # Like DICOM SEG: single-frame sources only (a multi-frame file would need frame numbers).
                files = image.metadata.get("files") or []
                if files and len(files) == (image.spatial_shape[2] if image.ndim == 3 else 1):
                    row["dicom_sr"] = str(
                        write_detection_sr(
                            [f["box"] for f in findings],
                            [f["label"] for f in findings],
                            [f["score"] for f in findings],
                            files,
                            folder / f"{image_stem(path)}_sr.dcm",
                        )
                    )
            rows.append(row)
        if folder is not None:
            with atomic_path(folder / "detections.json") as tmp:
                tmp.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
            with atomic_path(folder / "detections.csv") as tmp:
                tmp.write_text(_findings_csv(rows), encoding="utf-8")
        return rows


def _findings_csv(rows: list[dict]) -> str:
    """One row per finding: input, rank, label, score, the box in voxels, centre and size in mm."""
    buffer = io.StringIO()
    fields = ["input", "finding", "label", "score", "box", "centre_x_mm", "centre_y_mm", "centre_z_mm"]
    fields += ["size_mm", "corners_mm"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        for n, f in enumerate(row["findings"], start=1):
            x, y, z = f["centre_mm"]
            writer.writerow(
                {
                    "input": row["input"],
                    "finding": n,
                    "label": f["label"],
                    "score": f["score"],
                    "box": json.dumps(f["box"]),
                    "centre_x_mm": x,
                    "centre_y_mm": y,
                    "centre_z_mm": z,
                    "size_mm": json.dumps(f["size_mm"]),
                    "corners_mm": json.dumps(f["corners_mm"]),
                }
            )
    return buffer.getvalue()


def write_overlay(image: Image, findings: list[dict], path: str | Path) -> Path:
    """A PNG of `image` (display window) with each finding's box, label and score drawn on it.

    3D: the slice through the best finding's centre (the middle slice without findings), with
    the boxes that cross it.
    """
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from medsight.io._raster import display_window

    array = image.array
    index = None
    if image.ndim == 3:
        index = (
            int(np.clip(np.mean(findings[0]["box"][2::3]), 0, image.spatial_shape[2] - 1))
            if findings
            else (image.spatial_shape[2] // 2)
        )
        array = array[..., index]
    centre, width = display_window(image, None)
    grey = np.clip((array.astype(np.float32) - (centre - width / 2)) / width, 0, 1)
    if grey.shape[0] >= 3:
        pixels = (grey[:3] * 255).astype(np.uint8).transpose(2, 1, 0)  # (C, i, j) -> (rows j, cols i, C)
    else:
        pixels = np.repeat((grey[:1] * 255).astype(np.uint8), 3, axis=0).transpose(2, 1, 0)
    picture = PILImage.fromarray(np.ascontiguousarray(pixels))
    draw = ImageDraw.Draw(picture)
    names = sorted({f["label"] for f in findings})
    for f in findings:
        box = f["box"]
        if image.ndim == 3:
            if not box[2] <= index + 0.5 <= box[5]:
                continue
            box = [box[0], box[1], box[3], box[4]]
        colour = _COLOURS[names.index(f["label"]) % len(_COLOURS)]
        draw.rectangle([box[0], box[1], max(box[0], box[2] - 1), max(box[1], box[3] - 1)], outline=colour)
        draw.text((box[0], max(0, box[1] - 11)), f"{f['label']} {f['score']:.2f}", fill=colour)
    path = Path(path)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return path


def evaluate_detector(
    model: str | Path | Detector,
    data,
    *,
    split: str = "test",
    n_boot: int = 1000,
    seed: int = 0,
    device: str = "cpu",
    layout: str = "auto",
    progress=None,
) -> dict:
    """Predict the `split` of `data` with the detector in `model` (a folder, or a loaded
    `Detector`) and score it against its boxes.

    Images with an empty box list are true negatives (their detections are false positives);
    a box of a class the model does not know is an error naming the file. Returns
    `medsight.tasks.detect.metrics.detection_metrics`'s result (``ap50``, ``map``,
    ``froc_mean``, ``froc``, ``per_class``, ``ci``) with the split, the model, notes and
    per-image rows under ``cases``.
    """
    from medsight.data import Manifest, load_dataset
    from medsight.tasks.detect.metrics import detection_metrics

    detector = model if isinstance(model, Detector) else Detector.load(model, device=device)
    manifest = data if isinstance(data, Manifest) else load_dataset(data, layout=layout)
    samples = [s for s in manifest if s.split == split]
    if not samples:
        raise FormatError(
            f"no samples in split {split!r}",
            path=None if isinstance(data, Manifest) else data,
            hint="Choose another --split, or split the data (medsight dataset split)",
        )
    unannotated = [s.key for s in samples if s.boxes is None]
    if unannotated:
        raise FormatError(
            f"{len(unannotated)} image(s) of split {split!r} have no boxes field, e.g. {unannotated[0]}",
            hint="Give images without findings an empty list (boxes: []): they are true negatives",
        )
    predictions, references, cases = [], [], []
    for done, sample in enumerate(samples, 1):
        image = as_planar(manifest.load_image(sample))
        ref_boxes, ref_labels = check_boxes(
            sample.boxes, image.spatial_shape, classes=detector.classes, path=manifest.path(sample.key)
        )
        found = detector.predict_boxes(image)
        predictions.append(found)
        references.append({"boxes": ref_boxes, "labels": ref_labels})
        cases.append(
            {
                "key": sample.key,
                "patient": sample.patient_id or "",
                "n_reference": len(ref_labels),
                "n_detections": len(found["labels"]),
                "max_score": round(float(found["scores"].max()), 6) if len(found["scores"]) else None,
                "detections": json.dumps(
                    [
                        {"label": lab, "score": round(float(s), 6), "box": np.round(b, 3).tolist()}
                        for b, s, lab in zip(found["boxes"], found["scores"], found["labels"])
                    ]
                ),
            }
        )
        if progress:
            progress(done, len(samples))
    patients = [s.patient_id for s in samples]
    groups = patients if all(patients) else None
    plan = detector.bundle.plan
    hit = plan.get("validation", {}).get("froc_hit", "centre")
    result = detection_metrics(
        predictions, references, classes=detector.classes, groups=groups, n_boot=n_boot, seed=seed, hit=hit
    )
    notes = []
    if groups is None:
        notes.append(
            f"{sum(not p for p in patients)} of {len(samples)} images have no patient_id: intervals resample "
            "images, which understates the uncertainty when patients contribute several images"
        )
    return {
        **result,
        "split": split,
        "model": str(detector.bundle.folder),
        "n_patients": len(set(groups)) if groups is not None else None,
        "resampled": "patients" if groups is not None else "images",
        "classes": detector.classes,
        "notes": notes,
        "cases": cases,
    }


def write_detect_evaluation(result: dict, folder: str | Path) -> list[Path]:
    """Write ``metrics.json`` (without the per-image rows) and ``per_image.csv`` into `folder`."""
    from medsight.infer.evaluate import summary

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metrics_path, rows_path = folder / "metrics.json", folder / "per_image.csv"
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(summary(result), indent=2) + "\n", encoding="utf-8")
    buffer = io.StringIO()
    fields = ["key", "patient", "n_reference", "n_detections", "max_score", "detections"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result["cases"])
    with atomic_path(rows_path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return [metrics_path, rows_path]
