"""Importers on small layouts built here (the real ones are in test_importers_realdata.py)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from medsight.data import load_dataset, read_manifest
from medsight.errors import FormatError
from medsight.image import Image
from medsight.io import write


def png(path, value=0, shape=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    write(Image(np.full((1, *shape), value, np.uint8)), path)


def test_class_folders_with_and_without_splits(tmp_path):
    for cls in ("normal", "pneumonia"):
        for n in range(3):
            png(tmp_path / "flat" / cls / f"{n}.png", n)
            png(tmp_path / "split" / ("train" if n else "test") / cls / f"{n}.png", n)
    flat = load_dataset(tmp_path / "flat")
    assert flat.classes == ["normal", "pneumonia"] and len(flat) == 6
    split = load_dataset(tmp_path / "split")
    assert sorted({s.split for s in split}) == ["test", "train"]
    png(tmp_path / "one" / "only" / "a.png")
    (tmp_path / "one" / "other").mkdir()
    with pytest.raises(FormatError):
        load_dataset(tmp_path / "one", layout="class-folders")


def test_images_and_masks_pairing(tmp_path):
    for n in range(3):
        png(tmp_path / "d" / "images" / f"case{n}.png")
        png(tmp_path / "d" / "masks" / f"case{n}_mask.png", 1)
    m = load_dataset(tmp_path / "d")
    assert [s.mask for s in m] == [f"masks/case{n}_mask.png" for n in range(3)]
    png(tmp_path / "d" / "images" / "case9.png")
    with pytest.raises(FormatError, match="1 image\\(s\\) have no mask, e.g. case9.png"):
        load_dataset(tmp_path / "d")


def test_coco_finds_image_folder_and_keeps_negatives(tmp_path):
    png(tmp_path / "ds" / "images" / "a.png", shape=(20, 10))
    png(tmp_path / "ds" / "images" / "b.png", shape=(20, 10))
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [2, 3, 4, 5]}],
        "categories": [{"id": 7, "name": "nodule"}],
    }
    (tmp_path / "ds" / "ann").mkdir()
    (tmp_path / "ds" / "ann" / "boxes.json").write_text(json.dumps(coco))
    m = load_dataset(tmp_path / "ds" / "ann" / "boxes.json")
    assert m.samples[0].boxes == [{"box": [2.0, 3.0, 6.0, 8.0], "label": "nodule"}]
    assert m.samples[1].boxes == []  # a true negative is kept
    assert m.load_image(m.samples[1]).spatial_shape == (20, 10)


def test_cli_import_describe_split(tmp_path):
    for cls in ("a", "b"):
        for n in range(10):
            png(tmp_path / "d" / cls / f"{n}.png", n)
    run = [sys.executable, "-m", "medsight", "dataset"]
    out = tmp_path / "m.csv"
    subprocess.run([*run, "import", str(tmp_path / "d"), "--out", str(out)], check=True, capture_output=True)
    assert len(read_manifest(out)) == 20 and (tmp_path / "m.csv.provenance.json").exists()
    proc = subprocess.run(
        [*run, "split", str(out), "--out", str(tmp_path / "s.json"), "--seed", "5"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "no patient_id" in proc.stdout
    summary = json.loads(
        subprocess.run(
            [*run, "describe", str(tmp_path / "s.json"), "--json"], check=True, capture_output=True, text=True
        ).stdout
    )
    assert summary["samples"] == 20 and set(summary["splits"]) == {"train", "val", "test"}
    assert summary["images"]["shapes"] == {"6x5": 20}
    bad = subprocess.run([*run, "describe", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert bad.returncode == 1 and "no such dataset" in bad.stderr and "Traceback" not in bad.stderr


def test_a_folder_with_a_manifest_is_read_through_it(tmp_path):
    from medsight.data import Manifest, Sample, write_manifest

    png(tmp_path / "d" / "images" / "a.png")
    png(tmp_path / "d" / "masks" / "a.png", 1)
    boxes = [{"box": [1.0, 1.0, 3.0, 3.0], "label": "nodule"}]
    samples = [Sample("images/a.png", mask="masks/a.png", boxes=boxes, split="val")]
    write_manifest(Manifest(samples, root=tmp_path / "d", name="d"), tmp_path / "d" / "manifest.json")
    m = load_dataset(tmp_path / "d")  # the folder alone reads as images + masks, without boxes
    assert m.samples[0].boxes == boxes and m.samples[0].split == "val"
    assert load_dataset(tmp_path / "d", layout="images-masks").samples[0].boxes is None
