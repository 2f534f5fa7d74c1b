"""ONNX export of a classification bundle, and a predictor that runs the export with onnxruntime.

    record = export_onnx("MODEL_DIR")                 # MODEL_DIR/model.onnx and MODEL_DIR/onnx.json
    predictor = load_predictor("MODEL_DIR", engine="onnx")   # same interface as Classifier

The graph takes the *prepared* input (`prepare`: channels and size fixed, intensities as
read) and returns logits. The plan's intensity normalisation is inside the graph, so the
file alone is a complete model: a deployment cannot forget the normalisation or apply it
twice. Temperature and threshold stay outside, as in `Classifier`: the logits of both
engines are the same numbers and one calibration serves both (the file's metadata repeats
them for users of the bare file).

An export is kept only after onnxruntime and torch agree within `TOLERANCE` on a random
batch of another size than the traced one (the batch axis is dynamic). ``onnx.json`` in
the bundle records the file's SHA-256, the opset, the input and output signature and the
hashes of the weights and plan it came from; the bundle's own files and ``hashes.json`` stay untouched, so the
bundle stays valid, and a predictor refuses an export of other weights or another plan.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from medsight.errors import FormatError, MissingDependencyError, NotFoundError, UnsupportedError
from medsight.infer.classify import Classifier
from medsight.io._atomic import atomic_path, sha256_file
from medsight.models.bundle import Bundle, load_bundle, write_json

__all__ = ["OPSET", "OPSETS", "RECORD", "TOLERANCE", "OnnxClassifier", "export_onnx", "load_predictor"]

# Opset 17 runs on every onnxruntime since 1.13 (1.32 reads up to 23) and holds every
# operator a MONAI ResNet or DenseNet needs.
OPSET = 17
OPSETS = range(13, 21)  # 13 (onnxruntime 1.6 on) to 20, the newest the TorchScript exporter writes
TOLERANCE = 1e-4
RECORD = "onnx.json"
INPUT, OUTPUT = "input", "logits"
ENGINES = ("torch", "onnx")
_BAKED_IN = ("weights.safetensors", "plan.json")  # bundle files the graph depends on


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "onnxruntime is not installed", hint="pip install 'medsight[ml]', or use the torch engine"
        ) from None
    return onnxruntime


def _session(path: Path):
    ort = _onnxruntime()
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors on bad files
        raise FormatError(f"onnxruntime cannot load the model ({exc})", path=path) from exc


def _normalized(network, spec: dict):
    """The network with the plan's normalisation in front, as one module to trace."""
    import torch

    from medsight.tasks.classify.preprocess import normalize

    class Normalized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, x):
            return self.network(normalize(x, spec))

    return Normalized().eval()


def _random_inputs(pre: dict, batch: int, seed: int) -> np.ndarray:
    """Prepared-input-like values: the training intensity range, and beyond the CT clip."""
    rng = np.random.default_rng(seed)
    shape = (batch, pre["channels"], *pre["size"])
    spec = pre["normalize"]
    if spec["kind"] == "ct":
        lo, hi = spec["clip"]
        margin = 0.2 * (hi - lo)
        return rng.uniform(lo - margin, hi + margin, shape).astype(np.float32)
    return rng.normal(spec.get("mean", 0.0), spec.get("std", 1.0), shape).astype(np.float32)


def _relative(path: Path, folder: Path) -> str:
    """The ONNX file as ``onnx.json`` names it: relative inside the bundle, so both move together."""
    path, folder = path.resolve(), folder.resolve()
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def export_onnx(
    model: str | Path,
    out: str | Path | None = None,
    *,
    opset: int = OPSET,
    tolerance: float = TOLERANCE,
    seed: int = 0,
) -> dict:
    """Export the bundle in folder `model` to ONNX, verify it, and record it in ``onnx.json``.

    Parameters
    ----------
    model : path
        A classification bundle folder.
    out : path, optional
        The ONNX file; ``model/model.onnx`` by default. Written atomically, and only once verified.
    opset : int
        ONNX opset of the graph.
    tolerance : float
        Largest allowed absolute difference between torch and onnxruntime logits.

    Returns
    -------
    dict
        The record written to ``model/onnx.json``: file, sha256, opset, input and output
        signature, the hashes of the bundle's weights and plan, the measured difference.
    """
    import torch

    if opset not in OPSETS:
        raise UnsupportedError(
            f"ONNX opset {opset} is not offered",
            hint=f"Use {OPSETS.start} to {OPSETS.stop - 1}; {OPSET} by default",
        )
    bundle = load_bundle(model, task="classify")
    folder = bundle.folder
    out = Path(out) if out is not None else folder / "model.onnx"
    if not out.parent.is_dir():
        raise NotFoundError("output folder does not exist", path=out.parent, hint="Create it first")
    onnx_rt = _onnxruntime()
    pre = bundle.plan["preprocess"]
    wrapped = _normalized(bundle.build(), pre["normalize"])
    example = torch.from_numpy(_random_inputs(pre, 2, seed))
    check = _random_inputs(pre, 3, seed + 1)  # another batch size: proves the batch axis is dynamic
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            # The TorchScript exporter: the torch.export-based default needs onnxscript, not a
            # dependency. Its deprecation warning is for us, not for the user.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        _add_metadata(tmp, bundle)
        with torch.no_grad():
            expected = wrapped(torch.from_numpy(check)).numpy()
        got = _session(tmp).run([OUTPUT], {INPUT: check})[0]
        diff = float(np.max(np.abs(got - expected)))
        if not diff <= tolerance:  # also catches NaN
            raise UnsupportedError(
                f"the ONNX export differs from torch by {diff:.3g} (> {tolerance:g}); "
                "the file was not written",
                path=out,
                hint="Report it, and predict with the torch engine meanwhile",
            )
    hashes = json.loads((folder / "hashes.json").read_text())
    record = {
        "file": _relative(out, folder),
        "sha256": sha256_file(out),
        "bytes": out.stat().st_size,
        "opset": opset,
        "input": {
            "name": INPUT,
            "shape": ["batch", pre["channels"], *pre["size"]],
            "dtype": "float32",
            "content": "prepared image, not normalised: the plan's normalisation is in the graph",
        },
        "output": {
            "name": OUTPUT,
            "shape": ["batch", len(bundle.labels)],
            "dtype": "float32",
            "content": "logits before temperature scaling",
        },
        "classes": bundle.labels,
        "calibration": bundle.plan.get("calibration", {}),
        "bundle_sha256": {name: hashes.get(name) for name in _BAKED_IN},
        "verified": {"max_abs_diff": diff, "tolerance": tolerance, "batch": len(check)},
        "torch": torch.__version__,
        "onnxruntime": onnx_rt.__version__,
    }
    write_json(record, folder / RECORD)
    return record


def _add_metadata(path: Path, bundle: Bundle) -> None:
    """Classes, calibration and normalisation in the file itself, for users of the bare file."""
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "classes": json.dumps(bundle.labels),
        "multilabel": json.dumps(bool(bundle.plan.get("multilabel"))),
        "calibration": json.dumps(bundle.plan.get("calibration", {})),
        "preprocess": json.dumps(bundle.plan["preprocess"]),
        "producer": "medsight",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


class OnnxClassifier(Classifier):
    """`Classifier` whose network runs in onnxruntime; preprocessing and calibration from the plan."""

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu") -> OnnxClassifier:
        bundle = load_bundle(folder, task="classify")
        return cls.from_bundle(bundle)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> OnnxClassifier:
        """Open the export that ``onnx.json`` records, after checking it is intact and of these weights."""
        record_path = bundle.folder / RECORD
        if not record_path.is_file():
            raise NotFoundError(
                "the model has no ONNX export",
                path=bundle.folder,
                hint=f"Export it first: medsight export onnx {bundle.folder}",
            )
        record = json.loads(record_path.read_text())
        path = Path(record["file"])
        path = path if path.is_absolute() else bundle.folder / path
        if not path.is_file():
            raise NotFoundError(
                "the ONNX file that onnx.json names is missing",
                path=path,
                hint=f"Export again: medsight export onnx {bundle.folder}",
            )
        hashes = json.loads((bundle.folder / "hashes.json").read_text())
        if record.get("bundle_sha256") != {name: hashes.get(name) for name in _BAKED_IN}:
            raise FormatError(
                "the ONNX file was exported from other weights or another plan than the bundle's",
                path=path,
                hint=f"Export again: medsight export onnx {bundle.folder}",
            )
        if sha256_file(path) != record.get("sha256"):
            raise FormatError(
                "the ONNX file does not match the hash in onnx.json: changed or corrupt",
                path=path,
                hint=f"Export again: medsight export onnx {bundle.folder}",
            )
        return cls(bundle, _session(path))

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Raw network outputs for prepared (not yet normalised) inputs ``(N, C, *size)``."""
        out = [
            self.model.run(
                [OUTPUT], {INPUT: np.ascontiguousarray(inputs[i : i + self.batch_size], dtype=np.float32)}
            )[0]
            for i in range(0, len(inputs), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)


def load_predictor(folder: str | Path, *, engine: str = "torch", device: str = "cpu") -> Classifier:
    """A classification predictor for the bundle in `folder`: ``engine`` ``"torch"`` or ``"onnx"``.

    Both give the same `Classifier` interface (`logits`, `probabilities`, `decide`,
    `predict_images`, `predict_paths`); a bundle of another task is refused with a clear error.
    """
    if engine not in ENGINES:
        raise UnsupportedError(f"unknown engine {engine!r}", hint=f"Use one of: {', '.join(ENGINES)}")
    bundle = load_bundle(folder, task="classify")
    if engine == "onnx":
        if device != "cpu":
            raise UnsupportedError(
                f"the onnx engine runs on the CPU, not {device}", hint="Use --engine torch for GPU prediction"
            )
        return OnnxClassifier.from_bundle(bundle)
    return Classifier(bundle, bundle.build().to(device))
