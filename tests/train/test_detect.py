"""Detection end to end: plan, fit, bundle, predict (voxels, mm, overlays), evaluate, bad input."""

import json

import numpy as np
import pytest

from medsight.data import Manifest, Sample, read_manifest, write_manifest
from medsight.errors import FormatError
from medsight.image import Image
from medsight.io import write
from tests.conftest import run_cli

# A small network and a fixed schedule, so the test does not depend on the planner's timing.
FAST = [
    "network.depth=10",
    "network.width=0.125",
    "network.fpn_channels=32",
    "batch_size=8",
    "steps_per_epoch=15",
    "epochs=4",
]


def spots(root, n=36, size=64, seed=0):
    """Bright discs of 6-14 pixels on noise with their boxes; a third of the images have none."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ii, jj = np.mgrid[:size, :size]
    samples = []
    for k in range(n):
        image = rng.normal(80, 20, (size, size))
        boxes = []
        for _ in range(0 if k % 3 == 0 else int(rng.integers(1, 3))):
            r = rng.uniform(3, 7)
            c = rng.uniform(r + 1, size - r - 1, 2)
            image[(ii - c[0]) ** 2 + (jj - c[1]) ** 2 <= r * r] += 90
            boxes.append(
                {"box": [float(c[0] - r), float(c[1] - r), float(c[0] + r), float(c[1] + r)], "label": "spot"}
            )
        write(Image(np.clip(image, 0, 255).astype(np.uint8)[None]), root / f"i{k}.png")
        split = "train" if k < 24 else "val" if k < 30 else "test"
        samples.append(Sample(f"i{k}.png", boxes=boxes, patient_id=f"p{k // 2}", split=split))
    manifest = Manifest(samples, root=root, name="spots", classes=["spot"])
    return write_manifest(manifest, root / "manifest.json")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from medsight.train.detect import train_detector

    root = tmp_path_factory.mktemp("det")
    data = spots(root / "data")
    card = train_detector(data, root / "model", budget_min=60, overrides=FAST, progress=False)
    return root, data, card


def _random_boxes_ap50(manifest: Manifest, split: str, seed: int = 0) -> float:
    """AP50 of random boxes of the findings' size: what a pipeline that learnt nothing scores."""
    from medsight.tasks.detect.metrics import detection_metrics

    rng = np.random.default_rng(seed)
    preds, refs = [], []
    for s in manifest.split(split):
        boxes = []
        for _ in range(5):
            x, y = rng.uniform(0, 54, 2)
            boxes.append([x, y, x + 10, y + 10])
        preds.append({"boxes": boxes, "scores": rng.random(5), "labels": ["spot"] * 5})
        refs.append({"boxes": [b["box"] for b in s.boxes], "labels": [b["label"] for b in s.boxes]})
    return detection_metrics(preds, refs, classes=["spot"], n_boot=0)["ap50"]


def test_training_learns_and_writes_a_bundle(trained):
    root, data, card = trained
    model = root / "model"
    for name in ("weights.safetensors", "plan.json", "model_card.json", "labels.json", "hashes.json"):
        assert (model / name).is_file()
    assert json.loads((model / "labels.json").read_text()) == ["spot"]
    history = [json.loads(x) for x in (model / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert {"val_ap50", "val_map", "val_froc_mean"} <= set(history[0])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    plan = json.loads((model / "plan.json").read_text())
    assert plan["task"] == "detect" and plan["selection"]["metric"] == "val_ap50"
    assert len(plan["anchors"]["base_shapes"]) == plan["network"]["num_anchors"]
    assert card["data"]["images_without_boxes_train"] == 8  # true negatives train as such
    chance = _random_boxes_ap50(read_manifest(data), "val")
    assert chance < 0.1
    assert card["validation"]["ap50"] > 0.8  # a broken pipeline (boxes, anchors, targets) fails this


def test_bfloat16_prediction_keeps_the_float32_boxes(trained):
    """Plans predict under autocast; the head maps go back to float32 before MONAI decodes them
    (it decodes in the maps' type: bfloat16 would round corners to 1/8 px here, 2 px near 256)."""
    import torch

    from medsight.infer.detect import Detector
    from medsight.tasks.detect.boxes import box_iou
    from medsight.tasks.detect.detector import detect
    from medsight.tasks.detect.metrics import DetectionSet
    from medsight.tasks.detect.preprocess import normalize, prepare

    root, data, _ = trained
    model = Detector.load(root / "model")
    pre = model.bundle.plan["preprocess"]
    assert model.bundle.plan["inference"]["precision"] == "auto"
    manifest = read_manifest(data)
    samples = [s for s in manifest if s.split != "train"]
    x = normalize(
        torch.from_numpy(np.stack([prepare(manifest.load_image(s), pre)[0] for s in samples])),
        pre["normalize"],
    )
    refs = [{"boxes": [b["box"] for b in s.boxes], "labels": ["spot"] * len(s.boxes)} for s in samples]
    full, half = detect(model.detector, x, "float32"), detect(model.detector, x, "bfloat16")
    corners = np.concatenate([f["boxes"].ravel() for f in half])
    assert (np.abs(corners * 8 - np.round(corners * 8)) > 1e-3).mean() > 0.5  # not rounded to 1/8 px
    for one, other in zip(full, half):
        confident = one["boxes"][one["scores"] >= 0.5]
        if len(confident):
            assert box_iou(confident, other["boxes"]).max(axis=1).min() >= 0.7
    ap50 = {
        name: DetectionSet(
            [{**f, "labels": ["spot"] * len(f["scores"])} for f in found], refs, classes=["spot"]
        ).metrics()["ap50"]
        for name, found in (("float32", full), ("bfloat16", half))
    }
    assert ap50["float32"] > 0.8 and abs(ap50["bfloat16"] - ap50["float32"]) <= 0.05


def test_mirrored_detection_maps_boxes_back_and_is_chosen_on_validation(trained):
    """Test-time mirroring: a mirrored image gives the mirror of the image's fused boxes (the
    same four views, so the flips back are exact); the card records the choice on validation."""
    import torch

    from medsight.infer.detect import Detector
    from medsight.tasks.detect.detector import detect
    from medsight.tasks.detect.preprocess import normalize, prepare

    root, data, card = trained
    model = Detector.load(root / "model")
    pre = model.bundle.plan["preprocess"]
    manifest = read_manifest(data)
    samples = [s for s in manifest if s.split == "test" and s.boxes]
    x = normalize(
        torch.from_numpy(np.stack([prepare(manifest.load_image(s), pre)[0] for s in samples])),
        pre["normalize"],
    )
    width = x.shape[2]  # spatial axis 0: the box's first coordinate
    plain = detect(model.detector, x, "float32", [0, 1])
    mirrored = detect(model.detector, x.flip(2), "float32", [0, 1])
    for one, other in zip(plain, mirrored):
        assert len(one["scores"]) and len(one["scores"]) == len(other["scores"])
        np.testing.assert_allclose(one["scores"], other["scores"], atol=1e-5)
        back = other["boxes"].copy()
        back[:, [0, 2]] = width - other["boxes"][:, [2, 0]]
        np.testing.assert_allclose(one["boxes"], back, atol=1e-3)
    mirroring = card["validation"]["mirroring"]
    assert set(mirroring) == {"axes", "ap50_without", "ap50_with"}
    kept = mirroring["ap50_with"] > mirroring["ap50_without"] + 1e-3
    assert mirroring["axes"] == ([0, 1] if kept else [])
    assert model.bundle.plan["inference"]["mirror_axes"] == mirroring["axes"]


def test_training_on_patches_learns_to_find_on_whole_images(tmp_path):
    """Small spots on 128-pixel images: the plan trains on 64-pixel patches, validation runs whole."""
    from medsight.train.detect import train_detector

    data = spots(tmp_path / "data", size=128)
    card = train_detector(data, tmp_path / "model", budget_min=60, overrides=FAST, progress=False)
    plan = json.loads((tmp_path / "model" / "plan.json").read_text())
    assert plan["training_patch"]["size"] == [64, 64] and plan["preprocess"]["size"] == [128, 128]
    assert card["validation"]["ap50"] > 0.8


def test_both_box_losses_learn_and_unknown_ones_are_refused(trained, tmp_path):
    """The plan's GIoU (the `trained` model) and MONAI's smooth L1 both learn the spots."""
    from medsight.errors import UnsupportedError
    from medsight.train.detect import train_detector

    root, data, card = trained
    assert json.loads((root / "model" / "plan.json").read_text())["loss"]["box"] == "giou"
    smooth = train_detector(
        data, tmp_path / "model", budget_min=60, overrides=[*FAST, "loss.box=smooth_l1"], progress=False
    )
    assert card["validation"]["ap50"] > 0.8 and smooth["validation"]["ap50"] > 0.8
    with pytest.raises(UnsupportedError, match="box loss 'iou'"):
        train_detector(data, tmp_path / "other", overrides=[*FAST, "loss.box=iou"], progress=False)


def test_plan_for_phantom_chest_nodules():
    """Phantom radiograph nodules (3-9 pixels): a fine first level and anchors of their size."""
    from medsight.data.synthetic import cohort
    from medsight.tasks.detect.boxes import check_boxes
    from medsight.tasks.detect.plan import fingerprint, make_plan, relative_boxes

    cases = list(cohort("chest-xray", 16, seed=1, classes=["normal", "nodule"]))
    boxes = []
    for case in cases:
        checked, labels = check_boxes(case.boxes, case.image.spatial_shape, classes=["nodule"])
        assert set(labels) <= {"nodule"}
        boxes.append(relative_boxes(checked, case.image.spatial_shape))
    assert sum(len(b) == 0 for b in boxes) == 8  # normal films: true negatives
    fp = fingerprint([c.image for c in cases[:4]], boxes, classes=["nodule"], box_counts=[8], n={"train": 16})
    plan = make_plan(fp, budget_min=10, measure=False)
    assert plan["preprocess"]["size"] == [128, 128]
    assert plan["network"]["max_pool"] is False  # stride-2 first level for 3-9 pixel nodules
    assert 2.5 < min(plan["anchors"]["base_shapes"][0]) < 6
    assert plan["training_patch"]["size"] == [64, 64]


def test_predict_cli_writes_boxes_mm_overlays(trained, tmp_path, capsys):
    from medsight.io import read
    from medsight.tasks.detect.boxes import boxes_to_mm

    root, data, _ = trained
    manifest = read_manifest(data)
    tests = [manifest.path(s.key) for s in manifest.split("test")][:3]
    out = tmp_path / "pred"
    run_cli("predict", str(root / "model"), *map(str, tests), "--out", str(out))
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(rows) == 3
    saved = json.loads((out / "detections.json").read_text())
    assert [r["input"] for r in saved] == [str(p) for p in tests]
    csv_lines = (out / "detections.csv").read_text().splitlines()
    assert csv_lines[0].startswith("input,finding,label,score,box,centre_x_mm")
    assert len(csv_lines) == 1 + sum(len(r["findings"]) for r in rows)
    for path, row in zip(tests, rows):
        assert (out / f"{path.stem}_boxes.png").is_file()
        image = read(path)
        scores = [f["score"] for f in row["findings"]]
        assert scores == sorted(scores, reverse=True)
        for f in row["findings"]:
            box = np.array(f["box"])
            assert f["label"] == "spot" and 0 <= f["score"] <= 1
            assert (
                np.all(box[:2] >= 0) and np.all(box[2:] <= image.spatial_shape) and np.all(box[2:] > box[:2])
            )
            mm = boxes_to_mm(box[None], image.affine)
            np.testing.assert_allclose(f["centre_mm"], mm["centre_mm"][0], atol=1e-2)
    overlay = read(out / f"{tests[0].stem}_boxes.png")
    assert overlay.spatial_shape == read(tests[0]).spatial_shape and overlay.num_channels == 3


def test_predict_cli_on_dicom_writes_an_sr_of_the_findings(trained, tmp_path, capsys):
    """A radiograph as DICOM (read as a one-slice volume) is predicted as 2D; the SR's regions
    are the predicted boxes, on the source instance."""
    hd = pytest.importorskip("highdicom")
    import pydicom
    from pydicom.sr.codedict import codes

    from medsight.infer.detect import Detector
    from medsight.io import read, write_dicom_series

    root, data, _ = trained
    manifest = read_manifest(data)
    sample = next(s for s in manifest.split("test") if s.boxes)
    png = read(manifest.path(sample.key))
    (source,) = write_dicom_series(
        Image(png.array.astype(np.int16), png.affine), tmp_path / "dx", modality="DX"
    )
    out = tmp_path / "pred"
    run_cli("predict", str(root / "model"), str(tmp_path / "dx"), "--out", str(out))
    (row,) = json.loads((out / "detections.json").read_text())
    assert row["findings"] and row["dicom_sr"] == str(out / "dx_sr.dcm")
    assert [f["box"] for f in row["findings"]] == [
        f["box"] for f in Detector.load(root / "model").predict(png)
    ]  # the same pixels give the same boxes, DICOM or PNG
    sr = hd.sr.srread(row["dicom_sr"])
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(row["findings"])
    uid = str(pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID)
    for group, finding in zip(groups, row["findings"]):
        points = np.asarray(group.roi.value)
        np.testing.assert_allclose([*points.min(0), *points.max(0)], finding["box"], atol=1e-4)
        assert str(group.roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID) == uid
        assert group.finding_type.meaning == "spot"
        (certainty,) = group.get_measurements(name=codes.DCM.CertaintyOfFinding)
        assert certainty.value == pytest.approx(100 * finding["score"], abs=1e-3)


def test_evaluate_cli_json_has_ap50_and_froc_mean(trained, tmp_path, capsys):

    root, data, _ = trained
    out = tmp_path / "eval"
    run_cli(
        "evaluate",
        str(root / "model"),
        str(data),
        "--split",
        "test",
        "--json",
        "--n-boot",
        "50",
        "--out",
        str(out),
    )
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert 0 <= result["ap50"] <= 1 and 0 <= result["froc_mean"] <= 1
    assert set(result["froc"]) == {"0.125", "0.25", "0.5", "1", "2", "4", "8"}
    low, high = result["ci"]["ap50"]
    assert low <= result["ap50"] <= high
    assert result["resampled"] == "patients" and result["n_images"] == 6
    assert result["ap50"] > 0.5
    assert (out / "metrics.json").is_file() and (out / "per_image.csv").is_file()
    assert "cases" not in json.loads((out / "metrics.json").read_text())


def test_evaluate_refuses_classes_the_model_does_not_know(trained, tmp_path):
    from medsight.infer.detect import evaluate_detector

    root, data, _ = trained
    manifest = read_manifest(data)
    for s in manifest.samples:
        if s.split == "test" and s.boxes:
            s.boxes = [{**s.boxes[0], "label": "fracture"}]
            break
    with pytest.raises(FormatError, match="'fracture', which is not among the classes"):
        evaluate_detector(root / "model", manifest, split="test", n_boot=0)


def _toy(root, n=8, *, ndim=2, size=32):
    """Bright squares on noise with their boxes; every third image without any."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    samples = []
    for k in range(n):
        image = rng.normal(50, 10, (size,) * ndim).astype(np.float32)
        boxes = []
        if k % 3:
            lo = rng.integers(2, size - 12, ndim)
            image[tuple(slice(a, a + 8) for a in lo)] += 100
            boxes.append({"box": [float(v) for v in (*lo, *(lo + 8))], "label": "spot"})
        name = f"i{k}.png" if ndim == 2 else f"i{k}.nii.gz"
        pixels = np.clip(image, 0, 255).astype(np.uint8) if ndim == 2 else image
        write(Image(pixels[None]), root / name)
        split = "train" if k < n - 2 else "val"
        samples.append(Sample(name, boxes=boxes, patient_id=f"p{k}", split=split))
    return Manifest(samples, root=root, name="toy")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"box": [30, 2, 40, 10]}, "lies outside the image"),
        ({"box": [10, 10, 4, 20]}, "empty or inverted"),
        ({"box": [1, 2, 3]}, "does not have 4 coordinates"),
    ],
)
def test_bad_boxes_fail_before_training_naming_the_file(tmp_path, edit, message):
    from medsight.train.detect import train_detector

    manifest = _toy(tmp_path / "d")
    manifest.samples[1].boxes = [{**manifest.samples[1].boxes[0], **edit}]
    with pytest.raises(FormatError, match=message) as info:
        train_detector(manifest, tmp_path / "m", budget_min=1, progress=False)
    assert "i1.png" in str(info.value)
    assert not (tmp_path / "m" / "weights.safetensors").exists()


def test_unannotated_images_and_box_free_data_are_refused(tmp_path):
    from medsight.train.detect import train_detector

    manifest = _toy(tmp_path / "d")
    manifest.samples[2].boxes = None
    with pytest.raises(FormatError, match="no boxes field"):
        train_detector(manifest, tmp_path / "m", budget_min=1, progress=False)
    for s in manifest.samples:
        s.boxes = []
    with pytest.raises(FormatError, match="no training image has a box"):
        train_detector(manifest, tmp_path / "m", budget_min=1, progress=False)


def test_box_classes_missing_from_the_declared_ones_or_the_resumed_plan_are_refused(tmp_path):
    from dataclasses import replace

    from medsight.train.detect import train_detector

    manifest = replace(_toy(tmp_path / "d"), classes=["spot"])
    manifest.samples[4].boxes = [{**manifest.samples[4].boxes[0], "label": "sopt"}]
    with pytest.raises(FormatError, match="class 'sopt' is not among the declared classes") as info:
        train_detector(manifest, tmp_path / "m", budget_min=1, progress=False)
    assert "i4.png" in str(info.value)

    manifest.samples[4].boxes[0]["label"] = "spot"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "plan.json").write_text(json.dumps({"classes": ["nodule"]}))
    with pytest.raises(FormatError, match=r"classes \['spot'\] differ from the classes \['nodule'\]"):
        train_detector(manifest, tmp_path / "m", budget_min=1, resume=True, progress=False)


def test_augmentation_moves_boxes_with_the_image():
    import torch

    from medsight.data.augment import Flip, Pipeline
    from medsight.tasks.detect.detector import decode_targets, encode_targets
    from medsight.train.detect import _augmenter

    image = torch.zeros(2, 1, 32, 24)
    image[0, 0, 4:10, 2:8] = 1
    boxes = [np.array([[4.0, 2.0, 10.0, 8.0]]), np.zeros((0, 4))]
    targets = encode_targets(boxes, [[0], []], ndim=2)
    augment = _augmenter(Pipeline([Flip(axis_probability=1.0)]), 2)
    x, y = augment(image, targets, torch.Generator().manual_seed(0))
    moved = decode_targets(y)
    np.testing.assert_allclose(moved[0]["boxes"].numpy(), [[22, 16, 28, 22]])  # 32 - 10, 24 - 8, ...
    assert x[0, 0, 22:28, 16:22].min() == 1 and x[0, 0].sum() == 36  # the square sits in its box
    assert len(moved[1]["boxes"]) == 0 and y.shape == targets.shape


def test_3d_training_smoke_and_prediction_in_mm(tmp_path):
    from medsight.infer.detect import Detector
    from medsight.io import read
    from medsight.train.detect import train_detector

    manifest = _toy(tmp_path / "d", n=6, ndim=3, size=32)
    fast = ["network.width=0.125", "network.fpn_channels=16", "batch_size=2", "steps_per_epoch=2", "epochs=1"]
    card = train_detector(manifest, tmp_path / "m", budget_min=5, overrides=fast, progress=False)
    plan = json.loads((tmp_path / "m" / "plan.json").read_text())
    assert plan["selection"]["metric"] == "val_froc_mean" and plan["preprocess"]["ndim"] == 3
    assert card["validation"]["froc_mean"] is not None
    image = read(tmp_path / "d" / "i1.nii.gz")
    findings = Detector.load(tmp_path / "m").predict(image)
    for f in findings:
        assert len(f["box"]) == 6 and len(f["centre_mm"]) == 3 and len(f["size_mm"]) == 3
