"""Segmentation training end to end on tiny phantoms: plan, patches, fit, post-processing, bundle."""

import json

import numpy as np
import pytest

from medsight.data import Manifest, Sample
from medsight.errors import FormatError
from medsight.image import Image
from medsight.io import write
from tests.conftest import run_cli

FAST2D = [
    "network.filters=[8,16,32]",
    "network.kernels=[[3,3],[3,3],[3,3]]",
    "network.strides=[[1,1],[2,2],[2,2]]",
    "network.deep_supervision=1",  # trains with an extra output; predicts with one
    "patch_size=[32,32]",
    "batch_size=4",
    "steps_per_epoch=10",
    'augmentation.strength="light"',
]


def make_cases(root, n=12, seed=0, ndim=2, size=40):
    """A bright disc (label 1) and a dark bar (label 2) on noise; anisotropic 3D when asked."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    samples = []
    grid = np.mgrid[tuple(slice(0, size) for _ in range(ndim))]
    for k in range(n):
        img = rng.normal(100, 15, (size,) * ndim)
        label = np.zeros((size,) * ndim, np.uint8)
        centre = rng.integers(12, size - 12, ndim)
        disc = sum((g - c) ** 2 for g, c in zip(grid, centre)) < 36
        label[disc] = 1
        img[disc] += 60
        bar = (grid[0] > 3) & (grid[0] < 8)
        label[bar & ~disc] = 2
        img[bar & ~disc] -= 50
        suffix = ".png" if ndim == 2 else ".nii.gz"
        pixels = np.clip(img, 0, 255).astype(np.uint8) if ndim == 2 else img.astype(np.float32)
        write(Image(pixels[None]), root / f"img{k}{suffix}")
        write(Image(label[None], kind="label"), root / f"lab{k}{suffix}")
        split = "train" if k < n * 0.6 else "val" if k < n * 0.8 else "test"
        samples.append(Sample(f"img{k}{suffix}", mask=f"lab{k}{suffix}", patient_id=f"p{k}", split=split))
    return Manifest(samples, root=root, name="toy", label_names={1: "disc", 2: "bar"})


@pytest.fixture(scope="module")
def trained2d(tmp_path_factory):
    from medsight.train.segment import train_segmenter

    root = tmp_path_factory.mktemp("seg")
    manifest = make_cases(root / "data")
    card = train_segmenter(
        manifest, root / "model", budget_min=60, overrides=[*FAST2D, "epochs=8"], progress=False
    )
    return root, manifest, card


def test_bundle_history_and_learning(trained2d):
    root, _, card = trained2d
    model = root / "model"
    for name in ("weights.safetensors", "plan.json", "model_card.json", "labels.json", "hashes.json"):
        assert (model / name).is_file()
    history = [json.loads(x) for x in (model / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert "val_dice" in history[0]
    dice = card["validation"]["dice_per_class"]
    assert dice["disc"] > 0.8 and dice["bar"] > 0.8  # easy shapes: a broken pipeline fails this
    assert json.loads((model / "labels.json").read_text()) == ["background", "disc", "bar"]
    plan = json.loads((model / "plan.json").read_text())
    assert "largest_component" in plan["postprocess"]
    mirroring = card["validation"]["mirroring"]  # kept only where it raised validation Dice
    assert plan["inference"]["mirror_axes"] == mirroring["axes"] and mirroring["axes"] in ([], [0, 1])
    assert bool(mirroring["axes"]) == (mirroring["mean_dice_with"] > mirroring["mean_dice_without"] + 1e-3)


def test_mirroring_is_kept_only_where_it_raises_validation_dice():
    import torch

    from medsight.train.segment import _choose_mirroring

    class Spiked(torch.nn.Module):  # the bright square, plus a false positive at a fixed pixel
        def forward(self, x):
            score = x[:, :1] - 0.5
            score[..., 2, 3] += 1
            return torch.cat([-score, score], dim=1)

    image = np.zeros((1, 24, 24), np.float32)
    image[0, 8:16, 8:16] = 1
    truth = (image[0] > 0).astype(np.uint8)
    plan = {
        "patch_size": [24, 24],
        "preprocess": {"ndim": 2},
        "augmentation": {"flip_axes": None},
        "inference": {"overlap": 0.5, "batch_size": 1, "mirror_axes": [], "precision": "float32"},
    }
    # Mirrored, the spike lands elsewhere in three of the four flips and is averaged away: kept.
    predicted, axes, without, with_ = _choose_mirroring(Spiked(), [image], [truth], plan, "cpu", 1)
    assert axes == [0, 1] and with_ == 1.0 > without
    np.testing.assert_array_equal(predicted[0], truth)
    # Against a reference that holds the spike, the plain prediction is right: not kept.
    spiked = truth.copy()
    spiked[2, 3] = 1
    _, axes, without, with_ = _choose_mirroring(Spiked(), [image], [spiked], plan, "cpu", 1)
    assert axes == [] and without == 1.0 > with_


def test_bad_label_maps_fail_before_training(tmp_path):
    from medsight.train.segment import train_segmenter

    manifest = make_cases(tmp_path / "d", n=6)
    write(Image(np.full((1, 40, 40), 7, np.uint8), kind="label"), tmp_path / "d" / "lab0.png")
    with pytest.raises(FormatError, match=r"img0.*outside the declared classes"):
        train_segmenter(manifest, tmp_path / "m", budget_min=1, overrides=FAST2D, progress=False)
    write(Image(np.zeros((1, 30, 40), np.uint8), kind="label"), tmp_path / "d" / "lab0.png")
    with pytest.raises(FormatError, match=r"img0.*does not match its image"):
        train_segmenter(manifest, tmp_path / "m", budget_min=1, overrides=FAST2D, progress=False)


def test_empty_foreground_everywhere_is_refused(tmp_path):
    from medsight.train.segment import train_segmenter

    manifest = make_cases(tmp_path / "d", n=5)
    for k in range(5):
        write(Image(np.zeros((1, 40, 40), np.uint8), kind="label"), tmp_path / "d" / f"lab{k}.png")
    with pytest.raises(FormatError, match="empty"):
        train_segmenter(manifest, tmp_path / "m", budget_min=1, overrides=FAST2D, progress=False)


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def test_predict_cli_writes_label_maps_on_the_input_grid(trained2d, tmp_path):
    from medsight.io import read

    root, _, _ = trained2d
    out = tmp_path / "pred"
    run_cli("predict", str(root / "model"), str(root / "data" / "img11.png"), "--out", str(out))
    predicted = read(out / "img11_seg.png").array[0]
    truth = read(root / "data" / "lab11.png").array[0]
    assert predicted.shape == truth.shape
    assert _dice(predicted == 1, truth == 1) > 0.8 and _dice(predicted == 2, truth == 2) > 0.8


def make_volumes(root, n=8, seed=0):
    """Anisotropic (1 x 1 x 2 mm) volumes: a ball (1) always in the left half, a slab (2) low down."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    shape = (28, 24, 12)
    i, j, k = np.mgrid[: shape[0], : shape[1], : shape[2]]
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    samples, cases = [], []
    for c in range(n):
        img = rng.normal(100, 10, shape)
        label = np.zeros(shape, np.uint8)
        ci, cj, ck = rng.integers(5, 9), rng.integers(7, 17), rng.integers(4, 8)
        ball = (i - ci) ** 2 + (j - cj) ** 2 + (2 * (k - ck)) ** 2 < 20
        label[ball] = 1
        img[ball] += 80
        slab = (k < 2) & ~ball
        label[slab] = 2
        img[slab] -= 60
        image = Image(img.astype(np.int16)[None], affine)
        write(image, root / f"img{c}.nii.gz")
        write(Image(label[None], affine, kind="label"), root / f"lab{c}.nii.gz")
        split = "train" if c < n - 2 else "val"
        samples.append(Sample(f"img{c}.nii.gz", mask=f"lab{c}.nii.gz", patient_id=f"p{c}", split=split))
        cases.append((image, label))
    return Manifest(samples, root=root, name="toy3d", label_names={1: "ball", 2: "slab"}), cases


def test_3d_training_and_prediction_on_an_lps_dicom_series(tmp_path):
    """Trained on RAS NIfTI, predicted on an LPS DICOM series: labels land on the right voxels."""
    from medsight.infer.segment import Segmenter
    from medsight.io import read, read_seg, write_dicom_series
    from medsight.train.segment import train_segmenter

    manifest, _ = make_volumes(tmp_path / "data")
    fast3d = [
        "network.filters=[8,16,32]",
        "network.kernels=[[3,3,3],[3,3,3],[3,3,3]]",
        "network.strides=[[1,1,1],[2,2,2],[2,2,2]]",
        "patch_size=[24,24,12]",
        "batch_size=2",
        "steps_per_epoch=10",
        "epochs=8",
        'augmentation.strength="none"',
    ]
    card = train_segmenter(manifest, tmp_path / "m", budget_min=60, overrides=fast3d, progress=False)
    assert card["validation"]["dice_per_class"]["ball"] > 0.7

    _, cases = make_volumes(tmp_path / "other", n=1, seed=5)
    image, truth = cases[0]
    # The same voxels stored LPS: i flipped and j flipped, as a DICOM series holds them.
    lps = Image(image.array[:, ::-1, ::-1, :].copy(), image.affine @ _flip(image.spatial_shape, (0, 1)))
    write_dicom_series(lps, tmp_path / "dicom", modality="MR")
    series = read(tmp_path / "dicom")
    assert series.orientation != "RAS"
    result = Segmenter.load(tmp_path / "m").predict_path(tmp_path / "dicom", tmp_path / "out")
    predicted = read(result["outputs"]["labels"])
    assert predicted.same_grid(series)
    back = predicted.resample(like=image).array[0]  # onto the RAS grid of the truth
    assert _dice(back == 1, truth == 1) > 0.7
    seg = read_seg(result["outputs"]["dicom_seg"], source=tmp_path / "dicom")
    np.testing.assert_array_equal(seg.array[0], predicted.array[0])
    volumes = {row["name"]: row["volume_ml"] for row in result["labels"]}
    assert volumes["ball"] == pytest.approx((predicted.array[0] == 1).sum() * 2 / 1000)
    assert volumes["ball"] == pytest.approx((truth == 1).sum() * 2 / 1000, rel=0.6)  # a tiny model


def _flip(shape, axes):
    """Affine that maps flipped voxel indices back to the original ones."""
    flip = np.eye(4)
    for axis in axes:
        flip[axis, axis] = -1
        flip[axis, 3] = shape[axis] - 1
    return flip


def test_evaluate_cli_reports_dice_with_intervals(trained2d, tmp_path, capsys):
    from medsight.data import write_manifest

    root, manifest, _ = trained2d
    path = write_manifest(manifest, root / "data" / "manifest.json")
    run_cli(
        "evaluate",
        str(root / "model"),
        str(path),
        "--split",
        "test",
        "--json",
        "--n-boot",
        "50",
        "--out",
        str(tmp_path / "eval"),
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dice"] > 0.8 and result["n_cases"] == 2
    assert set(result["per_class"]) >= {"disc", "bar"}
    low, high = result["ci"]["dice"]
    assert low <= result["dice"] <= high
    assert (tmp_path / "eval" / "metrics.json").is_file() and (tmp_path / "eval" / "per_case.csv").is_file()
