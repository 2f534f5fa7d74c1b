"""Classification prediction from a model bundle: the plan's preprocessing, calibrated probabilities.

predictor = Classifier.load("MODEL_DIR")
rows = predictor.predict_paths(["scan.dcm", "folder_of_pngs/"])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import NotFoundError
from medsight.image import Image
from medsight.models.bundle import Bundle, load_bundle
from medsight.tasks.classify.preprocess import normalize, prepare
from medsight.tasks.classify.targets import probabilities

__all__ = ["Classifier", "expand_inputs"]


def expand_inputs(paths: list[str | Path]) -> list[Path]:
    """Files as given; a folder of DICOM files is one input (a series), other folders give their images."""
    from medsight.io._sniff import format_from_suffix, looks_like_dicom

    out = []
    for p in map(Path, paths):
        if not p.exists():
            raise NotFoundError("no such file or folder", path=p)
        if p.is_file():
            out.append(p)
            continue
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        dicom = [f for f in files if looks_like_dicom(f.open("rb").read(132))]
        if dicom and len(dicom) == len([f for f in files if format_from_suffix(f) != "raster"]):
            out.append(p)
        else:
            out += [
                f
                for f in files
                if format_from_suffix(f) not in (None, "npz") and not f.name.endswith(".provenance.json")
            ]
    return out


@dataclass
class Classifier:
    bundle: Bundle
    model: object
    batch_size: int = 64

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu") -> Classifier:
        bundle = load_bundle(folder)
        return cls(bundle, bundle.build().to(device))

    @property
    def classes(self) -> list[str]:
        return self.bundle.labels

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Raw network outputs for prepared (not yet normalised) inputs ``(N, C, *size)``."""
        import torch

        pre = self.bundle.plan["preprocess"]
        device = next(self.model.parameters()).device
        out = []
        with torch.no_grad():
            for i in range(0, len(inputs), self.batch_size):
                x = torch.as_tensor(inputs[i : i + self.batch_size], device=device)
                out.append(self.model(normalize(x, pre["normalize"])).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: logits divided by the fitted temperature."""
        z = logits / self.bundle.plan.get("calibration", {}).get("temperature", 1.0)
        return probabilities(z, bool(self.bundle.plan.get("multilabel")))

    def decide(self, probs: np.ndarray) -> list:
        """Predicted class per row (binary: the validation-chosen threshold; multi-label: a list)."""
        threshold = self.bundle.plan.get("calibration", {}).get("threshold", 0.5)
        if self.bundle.plan.get("multilabel"):
            return [[c for c, p in zip(self.classes, row) if p >= threshold] for row in probs]
        if probs.shape[1] == 2:
            return [self.classes[int(p >= threshold)] for p in probs[:, 1]]
        return [self.classes[i] for i in probs.argmax(1)]

    def predict_images(self, images: list[Image]) -> np.ndarray:
        pre = self.bundle.plan["preprocess"]
        inputs = np.stack([prepare(im, pre) for im in images]) if images else np.zeros((0,))
        return self.probabilities(self.logits(inputs))

    def predict_paths(self, paths: list[str | Path]) -> list[dict]:
        """One row per input: path, predicted class and the probability of every class.

        Inputs are read a batch at a time, so a large folder never sits in memory at once.
        """
        from medsight.io import read

        files = expand_inputs(paths)
        rows = []
        for start in range(0, len(files), self.batch_size):
            chunk = files[start : start + self.batch_size]
            probs = self.predict_images([read(p) for p in chunk])
            for path, p, decision in zip(chunk, probs, self.decide(probs)):
                row = {"path": str(path), "prediction": decision}
                row.update({f"p_{c}": round(float(v), 6) for c, v in zip(self.classes, p)})
                rows.append(row)
        return rows
