"""One dataset description for every task: a manifest of samples (CSV or JSON).

A sample names its image (one path, or several for multi-channel inputs) and any of
three targets: a class ``label`` (a list for multi-label), a label map ``mask`` (several
paths are united, e.g. one file per lesion), or ``boxes``. It also carries
``patient_id``, ``timepoint``, ``split`` and free ``attributes`` (sex, age, site, ...).

Paths are relative to the manifest's folder (``root``). An image inside an array file is
written ``file.npz#split/index`` (MedMNIST).

JSON (the full format)::

    {"format": "medsight-manifest", "version": 1, "name": "...", "classes": ["normal", "pneumonia"],
     "label_names": {"1": "liver"}, "mask_threshold": 128,
     "samples": [{"image": "a.png", "label": "normal", "patient_id": "p1", "split": "train",
                  "attributes": {"sex": "F", "age": 61}}]}

CSV (the simple format): columns ``image`` (several joined by ``|``), ``label`` (``|`` for
multi-label), ``mask``, ``fov``, ``boxes`` (JSON), ``patient_id``, ``timepoint``, ``split``;
every other column is an attribute.

Boxes are ``{"box": [i0, j0, i1, j1], "label": "polyp"}`` in voxel index units along the
image's own ``i, j[, k]`` axes (``i`` = column / x, ``j`` = row / y), upper corners
exclusive; 3D boxes are ``[i0, j0, k0, i1, j1, k1]``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medsight.errors import FormatError, GeometryError, NotFoundError
from medsight.image import Image
from medsight.io._atomic import atomic_path

__all__ = ["Manifest", "Sample", "read_manifest", "write_manifest", "SPLITS"]

FORMAT = "medsight-manifest"
SPLITS = ("train", "val", "test")
_CORE_COLUMNS = ("image", "label", "mask", "fov", "boxes", "patient_id", "timepoint", "split")


@dataclass
class Sample:
    """One image (or set of channels) with its target and who and when it comes from."""

    image: str | list[str]
    label: str | list[str] | None = None
    mask: str | list[str] | None = None
    fov: str | None = None
    boxes: list[dict] | None = None
    patient_id: str | None = None
    timepoint: int | None = None
    split: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def images(self) -> list[str]:
        return [self.image] if isinstance(self.image, str) else list(self.image)

    @property
    def masks(self) -> list[str]:
        return [] if self.mask is None else [self.mask] if isinstance(self.mask, str) else list(self.mask)

    @property
    def labels(self) -> list[str]:
        return [] if self.label is None else [self.label] if isinstance(self.label, str) else list(self.label)

    @property
    def key(self) -> str:
        """A readable identifier: the first image path."""
        return self.images[0]

    def to_dict(self) -> dict:
        out = {"image": self.image}
        for name in ("label", "mask", "fov", "boxes", "patient_id", "timepoint", "split"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "") -> Sample:
        if not data.get("image"):
            raise FormatError(f"sample {where} has no image", hint="Every sample needs an 'image' path")
        known = {k: data.get(k) for k in _CORE_COLUMNS if k in data}
        timepoint = known.get("timepoint")
        if timepoint not in (None, ""):
            try:
                known["timepoint"] = int(timepoint)
            except (TypeError, ValueError):
                raise FormatError(
                    f"sample {where}: timepoint {timepoint!r} is not an integer",
                    hint="Use 0, 1, 2, ... in time order; put dates in an attribute",
                ) from None
        boxes = known.get("boxes")
        if boxes is not None:
            known["boxes"] = _check_boxes(boxes, where)
        for name in ("patient_id", "split"):
            if known.get(name) not in (None, ""):
                known[name] = str(known[name])
        return cls(
            **{k: (None if v == "" else v) for k, v in known.items()},
            attributes=dict(data.get("attributes") or {}),
        )


def _check_boxes(boxes, where: str) -> list[dict]:
    if isinstance(boxes, str):
        try:
            boxes = json.loads(boxes) if boxes.strip() else []
        except json.JSONDecodeError as exc:
            raise FormatError(f"sample {where}: boxes are not valid JSON ({exc})") from exc
    checked = []
    for box in boxes:
        coords = box.get("box") if isinstance(box, dict) else None
        if not isinstance(coords, (list, tuple)) or len(coords) not in (4, 6):
            raise FormatError(
                f"sample {where}: box {box!r} is not {{'box': [i0, j0, i1, j1] or 6 numbers, 'label': ...}}"
            )
        half = len(coords) // 2
        if any(float(coords[a + half]) <= float(coords[a]) for a in range(half)):
            raise FormatError(
                f"sample {where}: box {coords} is empty or inverted",
                hint="Upper corners must be greater than lower corners",
            )
        checked.append({"box": [float(c) for c in coords], "label": str(box.get("label", "object"))})
    return checked


@dataclass
class Manifest:
    """A dataset: samples plus what they share (class order, label names, where paths start)."""

    samples: list[Sample]
    root: Path = field(default_factory=Path)
    name: str = ""
    classes: list[str] | None = None
    label_names: dict[int, str] | None = None
    mask_threshold: float | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    @property
    def targets(self) -> set[str]:
        """Which targets the samples carry: any of "label", "mask", "boxes"."""
        found = set()
        for s in self.samples:
            found |= {name for name in ("label", "mask", "boxes") if getattr(s, name) is not None}
        return found

    @property
    def class_names(self) -> list[str]:
        """Declared classes, else the sorted labels present."""
        if self.classes:
            return list(self.classes)
        return sorted({label for s in self.samples for label in s.labels})

    def digest(self, splits: tuple[str, ...] = ("train", "val")) -> str:
        """SHA-256 of the samples of `splits` (paths, labels, ...): what a model was trained on."""
        import hashlib
        import json

        text = json.dumps([s.to_dict() for s in self.samples if s.split in splits], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def split(self, name: str) -> Manifest:
        return replace(self, samples=[s for s in self.samples if s.split == name])

    def path(self, relative: str) -> Path:
        """Absolute path of a sample's file (array references keep their ``#`` part)."""
        file, _, fragment = relative.partition("#")
        full = Path(file) if Path(file).is_absolute() else self.root / file
        return Path(f"{full}#{fragment}") if fragment else full

    def load_image(self, sample: Sample) -> Image:
        """The sample's image; several paths are stacked as channels (same grid required)."""
        images = [self._read(p, kind="intensity") for p in sample.images]
        if len(images) == 1:
            return images[0]
        first = images[0]
        for path, other in zip(sample.images[1:], images[1:]):
            if not other.same_grid(first):
                raise GeometryError(
                    "channel image is not on the grid of the first image",
                    path=self.path(path),
                    hint="Resample the channels onto one grid first",
                )
        return first.with_array(np.concatenate([im.array for im in images]))

    def load_mask(self, sample: Sample) -> Image | None:
        """The sample's label map (masks united; thresholded when ``mask_threshold`` is set)."""
        if not sample.masks:
            return None
        masks = [self._read(p, kind="label") for p in sample.masks]
        for path, other in zip(sample.masks[1:], masks[1:]):
            if other.spatial_shape != masks[0].spatial_shape:
                raise GeometryError(
                    f"mask is {other.spatial_shape} but the sample's first mask is {masks[0].spatial_shape}",
                    path=self.path(path),
                    hint="Masks of one sample must share its grid",
                )
        arrays = [m.array[:1] if m.num_channels > 1 else m.array for m in masks]  # RGB-saved masks
        if self.mask_threshold is not None:
            arrays = [(a >= self.mask_threshold).astype(np.uint8) for a in arrays]
        if len(arrays) > 1:
            arrays = [np.maximum.reduce([(a > 0).astype(np.uint8) for a in arrays])]
        return masks[0].with_array(arrays[0], kind="label")

    def load_fov(self, sample: Sample) -> Image | None:
        """The sample's field-of-view mask (non-zero inside), where the dataset has one."""
        return self._read(sample.fov, kind="label") if sample.fov else None

    def _read(self, relative: str, *, kind: str) -> Image:
        from medsight.io import read

        file, _, fragment = relative.partition("#")
        path = self.path(file)
        if fragment and path.is_dir():  # a DICOM folder holding several series: fragment = UID
            return read(path, kind=kind, series=fragment)
        if fragment:
            return _array_file_image(path, fragment, kind=kind)
        return read(path, kind=kind)


def _array_file_image(path: Path, fragment: str, *, kind: str) -> Image:
    """One image out of a MedMNIST-style ``.npz``: ``split/index``."""
    split, _, index = fragment.partition("/")
    try:
        arr = _npz_split(str(path), split, path.stat().st_mtime_ns)[int(index)]
    except FileNotFoundError:
        raise NotFoundError("no such file", path=path) from None
    except (KeyError, IndexError, ValueError) as exc:
        raise FormatError(f"no image {fragment!r} in the array file ({exc})", path=path) from exc
    # MedMNIST stores (rows, cols), (rows, cols, 3) or a (depth, rows, cols) volume; as for PNG,
    # columns become i and rows j.
    if arr.ndim == 3 and arr.shape[-1] in (1, 3):
        array = np.moveaxis(arr, -1, 0).transpose(0, 2, 1)
    else:
        array = arr.T[None]
    return Image(array, kind=kind, metadata={"format": "medmnist", "path": f"{path}#{fragment}"})


@functools.lru_cache(maxsize=4)
def _npz_split(path: str, split: str, mtime_ns: int) -> np.ndarray:
    """A split's image array, loaded once: an npz cannot be memory-mapped, and reloading it
    for every sample made reading PneumoniaMNIST take minutes. The mtime keys out stale copies."""
    with np.load(path, allow_pickle=False) as npz:
        return npz[f"{split}_images"]


def read_manifest(path: str | Path) -> Manifest:
    """Read a manifest from ``.json`` or ``.csv``; relative paths start at its folder."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("no such manifest file", path=path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"manifest is not valid JSON ({exc})", path=path) from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT or "samples" not in data:
            raise FormatError(f'not a MedSight manifest (expected "format": "{FORMAT}")', path=path)
        try:
            samples = [Sample.from_dict(s, where=f"#{n}") for n, s in enumerate(data["samples"])]
        except FormatError as exc:
            raise FormatError(exc.problem, path=path, hint=exc.hint) from exc
        names = data.get("label_names")
        return Manifest(
            samples=samples,
            root=path.parent,
            name=data.get("name", path.stem),
            classes=data.get("classes"),
            label_names={int(k): v for k, v in names.items()} if names else None,
            mask_threshold=data.get("mask_threshold"),
            source=data.get("source", ""),
        )
    if path.suffix.lower() == ".csv":
        return Manifest(samples=_samples_from_csv(text, path), root=path.parent, name=path.stem)
    raise FormatError("a manifest is a .json or .csv file", path=path)


def _samples_from_csv(text: str, path: Path) -> list[Sample]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "image" not in reader.fieldnames:
        raise FormatError(
            "CSV manifest has no 'image' column",
            path=path,
            hint=f"Columns: {', '.join(_CORE_COLUMNS)} and any attributes",
        )
    samples = []
    for line, row in enumerate(reader, start=2):
        data = {k: v for k, v in row.items() if k in _CORE_COLUMNS and v not in (None, "")}
        for name in ("image", "label", "mask"):
            if name in data and "|" in data[name]:
                data[name] = data[name].split("|")
        data["attributes"] = {
            k: _guess(v)
            for k, v in row.items()
            if k not in _CORE_COLUMNS and k is not None and v not in (None, "")
        }
        try:
            samples.append(Sample.from_dict(data, where=f"on line {line}"))
        except FormatError as exc:
            raise FormatError(exc.problem, path=path, hint=exc.hint) from exc
    return samples


def _guess(value: str):
    """CSV attribute text as a number when it is one (age 61, not '61')."""
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def write_manifest(manifest: Manifest, path: str | Path) -> Path:
    """Write atomically as JSON or CSV (by suffix), paths relative to the manifest's new folder."""
    path = Path(path)
    manifest = _rebased(manifest, path.parent)
    if path.suffix.lower() == ".json":
        data = {"format": FORMAT, "version": 1, "name": manifest.name or path.stem}
        if manifest.source:
            data["source"] = manifest.source
        if manifest.classes:
            data["classes"] = list(manifest.classes)
        if manifest.label_names:
            data["label_names"] = {str(k): v for k, v in sorted(manifest.label_names.items())}
        if manifest.mask_threshold is not None:
            data["mask_threshold"] = manifest.mask_threshold
        data["samples"] = [s.to_dict() for s in manifest.samples]
        text = json.dumps(data, indent=1) + "\n"
    elif path.suffix.lower() == ".csv":
        text = _samples_to_csv(manifest.samples)
    else:
        raise FormatError("a manifest is written as .json or .csv", path=path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _rebased(manifest: Manifest, folder: Path) -> Manifest:
    """The same manifest with relative paths starting at `folder` instead of its root."""
    if Path(os.path.abspath(folder)) == Path(os.path.abspath(manifest.root)):
        return manifest

    def move(relative):
        if relative is None or isinstance(relative, list):
            return None if relative is None else [move(r) for r in relative]
        file, hash_, fragment = relative.partition("#")
        if Path(file).is_absolute():
            return relative
        moved = Path(os.path.relpath(os.path.abspath(manifest.root / file), os.path.abspath(folder)))
        return moved.as_posix() + hash_ + fragment

    samples = [replace(s, image=move(s.image), mask=move(s.mask), fov=move(s.fov)) for s in manifest.samples]
    return replace(manifest, samples=samples, root=folder)


def _samples_to_csv(samples: list[Sample]) -> str:
    attributes = sorted({k for s in samples for k in s.attributes})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*_CORE_COLUMNS, *attributes], lineterminator="\n")
    writer.writeheader()
    for s in samples:
        row = {k: v for k, v in s.attributes.items()}
        row["image"] = "|".join(s.images)
        row["label"] = "|".join(s.labels)
        row["mask"] = "|".join(s.masks)
        row["fov"] = s.fov or ""
        row["boxes"] = json.dumps(s.boxes) if s.boxes is not None else ""
        row["patient_id"] = s.patient_id or ""
        row["timepoint"] = "" if s.timepoint is None else s.timepoint
        row["split"] = s.split or ""
        writer.writerow(row)
    return out.getvalue()
