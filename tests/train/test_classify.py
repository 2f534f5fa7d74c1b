"""Classification training end to end on a tiny synthetic set: plan, train, resume, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from medsight.data import Manifest, Sample, write_manifest
from medsight.errors import FormatError
from medsight.image import Image
from medsight.io import write

# progressive=null: the same training whichever candidate the planner happened to time first.
FAST = [
    "network.width=0.125",
    "network.depth=10",
    "preprocess.size=[24,24]",
    "batch_size=16",
    "progressive=null",
]


def make_dataset(root, n=48, seed=0, ndim=2):
    """Bright disc (class 'disc') vs dark square ('square') on noise; 2 images per patient."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:24, :24]
    samples = []
    for k in range(n):
        label = "disc" if k % 2 else "square"
        img = rng.normal(100, 20, (24, 24))
        cy, cx = rng.integers(8, 16, 2)
        if label == "disc":
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < 25] += 80
        else:
            img[cy - 4 : cy + 4, cx - 4 : cx + 4] -= 60
        arr = np.clip(img, 0, 255).astype(np.uint8)
        name = f"img{k}.png" if ndim == 2 else f"img{k}.nii.gz"
        data = arr.T[None] if ndim == 2 else np.repeat(arr.T[None, :, :, None], 4, axis=3)
        write(Image(data), root / name)
        split = "train" if k < n * 0.6 else "val" if k < n * 0.8 else "test"
        samples.append(Sample(name, label=label, patient_id=f"p{k // 2}", split=split))
    return Manifest(samples, root=root, name="toy", classes=["square", "disc"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from medsight.train.classify import train_classifier

    root = tmp_path_factory.mktemp("cls")
    manifest = make_dataset(root / "data")
    path = write_manifest(manifest, root / "data" / "manifest.json")
    card = train_classifier(
        path, root / "model", budget_min=60, overrides=[*FAST, "epochs=6"], progress=False
    )
    return root, card


def test_bundle_history_and_learning(trained):
    root, card = trained
    model = root / "model"
    for name in ("weights.safetensors", "plan.json", "model_card.json", "labels.json", "hashes.json"):
        assert (model / name).is_file()
    history = [json.loads(line) for line in (model / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, 7))
    assert {"epoch", "elapsed_s", "train_loss", "val_auc"} <= set(history[0])
    assert card["validation"]["calibrated"]["auc"] > 0.9  # an easy task: a broken model fails this
    plan = json.loads((model / "plan.json").read_text())
    assert plan["network"]["width"] == 0.125 and plan["preprocess"]["size"] == [24, 24]
    assert plan["calibration"]["temperature"] > 0
    assert json.loads((model / "labels.json").read_text()) == ["square", "disc"]


def test_predict_cli_on_raw_files(trained, tmp_path):
    root, _ = trained
    out = tmp_path / "pred.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "medsight",
            "predict",
            str(root / "model"),
            str(root / "data" / "img1.png"),
            str(root / "data" / "img0.png"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("path,prediction,p_square,p_disc")
    assert lines[1].split(",")[1] == "disc" and lines[2].split(",")[1] == "square"


def test_resume_after_interruption_keeps_finished_epochs(tmp_path, monkeypatch):
    import medsight.train.loop as loop
    from medsight.train.classify import train_classifier

    manifest = make_dataset(tmp_path / "data", n=32)
    path = write_manifest(manifest, tmp_path / "data" / "m.json")
    real = loop.save_checkpoint
    calls = {"n": 0}

    def killed_after_two(*args, **kwargs):
        real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies right after epoch 2's checkpoint

    monkeypatch.setattr(loop, "save_checkpoint", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(path, tmp_path / "m", budget_min=60, overrides=[*FAST, "epochs=4"], progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real)
    history = (tmp_path / "m" / "history.jsonl").read_text().splitlines()
    assert len(history) == 2
    train_classifier(path, tmp_path / "m", budget_min=60, resume=True, progress=False)
    epochs = [
        json.loads(line)["epoch"] for line in (tmp_path / "m" / "history.jsonl").read_text().splitlines()
    ]
    assert epochs == [1, 2, 3, 4]  # nothing lost, nothing repeated


def test_resumed_run_matches_uninterrupted_run(tmp_path, monkeypatch):
    import medsight.train.loop as loop
    from medsight.train.classify import train_classifier

    manifest = make_dataset(tmp_path / "data", n=32)
    path = write_manifest(manifest, tmp_path / "data" / "m.json")
    train_classifier(path, tmp_path / "a", budget_min=60, overrides=[*FAST, "epochs=3"], progress=False)
    real = loop.save_checkpoint

    def killed(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(path, tmp_path / "b", budget_min=60, overrides=[*FAST, "epochs=3"], progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real)
    train_classifier(path, tmp_path / "b", budget_min=60, resume=True, progress=False)
    a = [json.loads(x)["train_loss"] for x in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    b = [json.loads(x)["train_loss"] for x in (tmp_path / "b" / "history.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(a, b, rtol=1e-4)  # same losses: weights, optimiser and RNG restored


def test_progressive_resizing_trains_small_first_and_keeps_a_full_size_epoch(tmp_path):
    from medsight.train.classify import train_classifier

    manifest = make_dataset(tmp_path / "data", n=32)
    card = train_classifier(
        manifest,
        tmp_path / "m",
        budget_min=60,
        overrides=[*FAST, "epochs=4", 'progressive={"size": [16, 16], "fraction": 0.5}'],
        progress=False,
    )
    history = [json.loads(x) for x in (tmp_path / "m" / "history.jsonl").read_text().splitlines()]
    assert [h["input_size"] for h in history] == [[16, 16]] * 2 + [[24, 24]] * 2
    assert card["training"]["best_epoch"] >= 3  # only full-size epochs can be kept
    assert card["training"]["setup_s"] > 0


def test_plan_upsamples_small_images_with_a_progressive_phase(monkeypatch):
    from medsight.tasks.classify import plan as planning

    monkeypatch.setattr(planning, "_seconds_per_sample", lambda *a, **k: 1e-5)  # a fast device
    fp = {
        "n": {"train": 1000, "val": 100},
        "classes": ["a", "b"],
        "class_counts": [500, 500],
        "multilabel": False,
        "ndim": 2,
        "channels": 1,
        "size": [28, 28],
        "spacing": [1.0, 1.0],
        "modality": None,
        "intensity": {"mean": 100.0, "std": 20.0, "p0_5": 0.0, "p99_5": 255.0},
    }
    plan = planning.make_plan(fp, budget_min=10)
    assert plan["preprocess"]["size"] == [64, 64]
    assert plan["progressive"] == {"size": [28, 28], "fraction": planning.SMALL_FRACTION}
    assert planning.make_plan({**fp, "ndim": 3, "size": [28, 28, 28]}, budget_min=10)["progressive"] is None


def _bad(tmp_path, samples, name="m.json", classes=None):
    root = tmp_path / "bad"
    good = make_dataset(root, n=8)
    m = Manifest(samples(good), root=root, classes=classes)
    return write_manifest(m, root / name)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda good: [], "no training samples"),
        (lambda good: [s for s in good.samples if s.label == "disc"], "single class"),
        (lambda good: [*good.samples, Sample("img0.png", split="train")], "have no label"),
        (
            lambda good: [*good.samples, Sample("img0.png", label="blob", split="train")],
            "not among the declared",
        ),
        (lambda good: [*good.samples, Sample("missing.png", label="disc", split="train")], "missing.png"),
    ],
)
def test_bad_input_fails_before_training_with_file_names(tmp_path, edit, message):
    from medsight.train.classify import train_classifier

    path = _bad(tmp_path, edit, classes=["square", "disc"])
    with pytest.raises(FormatError, match=message):
        train_classifier(path, tmp_path / "m", budget_min=60, overrides=FAST, progress=False)
    assert not (tmp_path / "m" / "weights.safetensors").exists()


def test_mixed_2d_and_3d_refused(tmp_path):
    from medsight.train.classify import train_classifier

    two = make_dataset(tmp_path / "d", n=8)
    three = make_dataset(tmp_path / "d3", n=8, ndim=3)
    for s in three.samples:
        s.image = f"../d3/{s.image}"
    m = Manifest(two.samples + three.samples, root=tmp_path / "d", classes=["square", "disc"])
    with pytest.raises(FormatError, match="mix 2D and 3D|3D image, but the model takes 2D"):
        train_classifier(m, tmp_path / "m", budget_min=60, overrides=FAST, progress=False)


def test_plan_overrides_are_checked():
    from medsight.tasks.overrides import apply_overrides

    plan = {"network": {"width": 0.5}, "epochs": 3}
    assert apply_overrides(plan, ["network.width=0.25", "epochs=7"]) == {
        "network": {"width": 0.25},
        "epochs": 7,
    }
    with pytest.raises(FormatError, match="did you mean 'width'"):
        apply_overrides(plan, ["network.widht=1"])
    with pytest.raises(FormatError, match="KEY=VALUE"):
        apply_overrides(plan, ["epochs"])
