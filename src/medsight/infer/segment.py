"""Segmentation prediction: the plan's preprocessing, sliding window, back onto the input's grid.

    segmenter = Segmenter.load("model_dir")
    result = segmenter.predict(read("scan.nii.gz"))     # result.labels: Image on the scan's grid
    segmenter.predict_path("dicom_series/", "out/")      # NIfTI label map, DICOM SEG for DICOM input

When the plan's spacing differs from the input's, the blended logits are resampled back
class by class (linear) with a running arg-max, as nnU-Net resamples probabilities, so
labels are not blocky and no full-size array per class is held at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.image import Image
from medsight.models.bundle import Bundle, load_bundle
from medsight.tasks.segment.postprocess import apply_postprocessing
from medsight.tasks.segment.preprocess import normalize, to_plan_grid

__all__ = ["Segmentation", "Segmenter", "evaluate_segmenter"]


@dataclass
class Segmentation:
    """A prediction on the input's grid: label map, and class probabilities when asked for."""

    labels: Image
    names: dict[int, str]
    probabilities: Image | None = None


@dataclass
class Segmenter:
    bundle: Bundle
    model: object
    device: str = "cpu"

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu") -> Segmenter:
        bundle = load_bundle(folder, task="segment")
        return cls(bundle, bundle.build().to(device), device)

    @property
    def names(self) -> dict[int, str]:
        return {i: name for i, name in enumerate(self.bundle.labels) if i > 0}

    def _window(self, array: np.ndarray, output: str, mirror: bool | None) -> np.ndarray:
        from medsight.tasks.mirroring import mirror_axes
        from medsight.tasks.segment.sliding_window import predict_with_plan

        plan = self.bundle.plan
        axes = None if mirror is None else mirror_axes(plan) if mirror else []
        return predict_with_plan(self.model, array, plan, device=self.device, mirror_axes=axes, output=output)

    def predict(
        self, image: Image, *, probabilities: bool = False, mirror: bool | None = None
    ) -> Segmentation:
        """Segment `image`; the label map (and probabilities) lie on `image`'s own grid.

        `mirror` switches test-time mirroring over every axis on or off (default: the plan's).
        """
        pre = self.bundle.plan["preprocess"]
        grid, _ = to_plan_grid(image, pre)
        array = normalize(grid.array, pre["normalize"])
        same_spacing = np.allclose(grid.spacing, image.spacing, rtol=1e-3)
        probs = None
        if same_spacing and not probabilities:
            labels = grid.with_array(self._window(array, "labels", mirror)[None], kind="label")
            labels = labels.resample(like=image)  # exact: the grids differ by axis order and flips
        else:
            labels, probs = _back_to_input(self._window(array, "logits", mirror), grid, image, probabilities)
        values = apply_postprocessing(labels.array[0], self.bundle.plan.get("postprocess"))
        labels = Image(values[None].astype(np.uint8), image.affine, kind="label")
        return Segmentation(labels, self.names, probs)

    def predict_path(self, path: str | Path, out: str | Path, *, probabilities: bool = False) -> dict:
        """Predict the image or DICOM series at `path`; write ``out`` (a label map file, or a
        folder that gets ``<name>_seg.nii.gz``, 2D: ``.png``), a DICOM SEG beside it for DICOM input, and the
        probabilities on request. Returns the written paths and the per-label measurements."""
        from medsight.io import read, write
        from medsight.io._dispatch import WRITABLE
        from medsight.io._sniff import image_stem
        from medsight.tasks.segment.measure import measure_labels

        path, out = Path(path), Path(out)
        image = read(path)
        result = self.predict(image, probabilities=probabilities)
        if out.name.lower().endswith(WRITABLE):
            label_path = out
        else:
            out.mkdir(parents=True, exist_ok=True)
            # NIfTI reads back 3D; a 2D label map stays 2D as a PNG of label values.
            label_path = out / f"{image_stem(path)}_seg{'.png' if image.ndim == 2 else '.nii.gz'}"
        written = {"labels": str(write(result.labels, label_path))}
        base = label_path.parent / image_stem(label_path)
        files = image.metadata.get("files")
        if files and image.ndim == 3 and len(files) == image.spatial_shape[2]:
            from medsight.io import write_seg

            seg = write_seg(result.labels, files, Path(f"{base}_seg.dcm"), names=self.names)
            written["dicom_seg"] = str(seg)
        if result.probabilities is not None:
            written["probabilities"] = str(write(result.probabilities, Path(f"{base}_probabilities.nii.gz")))
        return {
            "input": str(path),
            "outputs": written,
            "labels": measure_labels(result.labels, image=image, names=self.names),
        }


def _back_to_input(logits: np.ndarray, grid: Image, image: Image, probabilities: bool):
    """Label map (and softmax probabilities) on `image`'s grid from `logits` on `grid`."""
    best = labels = None
    resampled = []
    for k, channel in enumerate(logits):
        moved = grid.with_array(channel[None]).resample(like=image).array[0]
        if probabilities:
            resampled.append(moved)
        if best is None:
            best, labels = moved, np.zeros(moved.shape, np.uint8)
        else:
            better = moved > best
            labels[better] = k
            best = np.where(better, moved, best)
    probs = None
    if probabilities:
        stacked = np.stack(resampled)
        stacked -= stacked.max(0, keepdims=True)
        np.exp(stacked, out=stacked)
        stacked /= stacked.sum(0, keepdims=True)
        probs = Image(stacked.astype(np.float32), image.affine)
    return Image(labels[None], image.affine, kind="label"), probs


def evaluate_segmenter(
    model: str | Path,
    data,
    *,
    split: str = "test",
    tolerance_mm: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
    device: str = "cpu",
    layout: str = "auto",
    progress=None,
) -> dict:
    """Predict the `split` of `data` with the bundle in `model` and score it against its masks.

    Binary models are also scored by pixel AUC from their foreground probability, inside the
    field of view where the dataset has one. See `evaluate_segmentations` for the result.
    """
    from medsight.data import Manifest, load_dataset
    from medsight.errors import FormatError
    from medsight.infer.evaluate_segment import SegmentationCase, evaluate_segmentations

    segmenter = Segmenter.load(model, device=device)
    manifest = data if isinstance(data, Manifest) else load_dataset(data, layout=layout)
    samples = [s for s in manifest if s.split == split and s.masks]
    if not samples:
        raise FormatError(
            f"no samples with label maps in split {split!r}",
            path=None if isinstance(data, Manifest) else data,
            hint="Choose another --split, or split the data (medsight dataset split)",
        )
    binary = len(segmenter.names) == 1

    def cases():
        for done, sample in enumerate(samples, 1):
            image = manifest.load_image(sample)
            result = segmenter.predict(image, probabilities=binary)
            yield SegmentationCase(
                sample.key,
                result.labels,
                manifest.load_mask(sample),
                patient_id=sample.patient_id,
                fov=manifest.load_fov(sample),
                probability=result.probabilities,
            )
            if progress:
                progress(done, len(samples))

    result = evaluate_segmentations(
        cases(), class_names=segmenter.bundle.labels, tolerance_mm=tolerance_mm, n_boot=n_boot, seed=seed
    )
    return {**result, "split": split, "model": str(model)}
