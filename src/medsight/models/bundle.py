"""The model bundle: a folder with weights (safetensors, never pickle), plan, card, labels, hashes.

    MODEL_DIR/
      weights.safetensors   the network's state dict
      plan.json             everything needed to rebuild and feed the network
      model_card.json       intended use, data summary, metrics, limitations
      labels.json           class names in output order
      hashes.json           SHA-256 of weights, plan and labels; of the code and the data

Loading checks the hashes, so a bundle edited by hand or cut short is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from medsight.errors import FormatError, NotFoundError, UnsupportedError
from medsight.io._atomic import atomic_path, sha256_file

__all__ = ["Bundle", "code_hash", "load_bundle", "save_bundle", "write_json"]

FILES = ("weights.safetensors", "plan.json", "model_card.json", "labels.json")


@dataclass
class Bundle:
    folder: Path
    plan: dict
    card: dict
    labels: list[str]
    state_dict: dict

    def build(self):
        """The network with its trained weights, in eval mode."""
        from medsight.models.registry import build_model
        from medsight.models.weights import load_weights

        model = build_model(self.plan["network"])
        load_weights(model, self.state_dict, path=self.folder / "weights.safetensors")
        return model.eval()


def write_json(data, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def code_hash() -> str:
    """SHA-256 over MedSight's own source files: which code made a model."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def save_bundle(
    folder: str | Path,
    *,
    state_dict: dict,
    plan: dict,
    card: dict,
    labels: list[str],
    data_hash: str | None = None,
) -> Path:
    """Write a bundle into `folder` (created if needed); each file atomically, hashes last."""
    from medsight.models.weights import save_weights

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "weights.safetensors") as tmp:
        save_weights(state_dict, tmp, metadata={"format": "pt"})
    write_json(plan, folder / "plan.json")
    write_json(card, folder / "model_card.json")
    write_json(list(labels), folder / "labels.json")
    hashes = {name: sha256_file(folder / name) for name in FILES}
    hashes["code"] = code_hash()
    if data_hash:
        hashes["data"] = data_hash
    write_json(hashes, folder / "hashes.json")  # last: a bundle without it is incomplete
    return folder


_TASK_NAMES = {"classify": "classifier", "segment": "segmentation model", "detect": "detection model"}


def check_task(bundle: Bundle, task: str) -> None:
    """Refuse a bundle trained for another task than `task` (``classify``, ``segment``, ``detect``)."""
    found = bundle.plan.get("task")
    if found != task:
        raise UnsupportedError(
            f"a {found or 'untyped'} model, not a {_TASK_NAMES[task]}",
            path=bundle.folder,
            hint=f"Give a bundle made by medsight train {task}",
        )


def load_bundle(folder: str | Path, *, verify: bool = True, task: str | None = None) -> Bundle:
    """Read a bundle; with `verify`, every file must match ``hashes.json``; with `task`, the
    bundle must have been trained for it."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError("no such model folder", path=folder)
    missing = [name for name in (*FILES, "hashes.json") if not (folder / name).is_file()]
    if missing:
        raise FormatError(
            f"not a complete model bundle: {', '.join(missing)} missing",
            path=folder,
            hint="Train again, or copy the whole folder",
        )
    hashes = json.loads((folder / "hashes.json").read_text())
    if verify:
        for name in FILES:
            if sha256_file(folder / name) != hashes.get(name):
                raise FormatError(
                    f"{name} does not match the bundle's hash: it was changed or is corrupt",
                    path=folder,
                    hint="Use the bundle as it was written, or retrain",
                )
    try:
        state = load_file(str(folder / "weights.safetensors"))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise FormatError(f"unreadable weights ({exc})", path=folder / "weights.safetensors") from exc
    bundle = Bundle(
        folder=folder,
        plan=json.loads((folder / "plan.json").read_text()),
        card=json.loads((folder / "model_card.json").read_text()),
        labels=json.loads((folder / "labels.json").read_text()),
        state_dict=state,
    )
    if task is not None:
        check_task(bundle, task)
    return bundle
