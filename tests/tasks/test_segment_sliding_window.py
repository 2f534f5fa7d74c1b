"""Sliding-window inference agrees with MONAI's, mirrors correctly and keeps only a slab in memory."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from monai.inferers import sliding_window_inference

from medsight.errors import FormatError
from medsight.tasks.segment.sliding_window import sliding_window

# the module itself, whatever the package exports under that name
module = importlib.import_module("medsight.tasks.segment.sliding_window")


def _net(ndim: int, classes: int = 3):
    """A small random conv net (fixed seed): a predictor that is a fixed, non-trivial function."""
    conv = torch.nn.Conv2d if ndim == 2 else torch.nn.Conv3d
    torch.manual_seed(0)
    return torch.nn.Sequential(
        conv(1, 4, 3, padding=1), torch.nn.Tanh(), conv(4, classes, 3, padding=1)
    ).eval()


def _monai(volume, net, patch, batch_size=3, overlap=0.5):
    with torch.inference_mode():
        return sliding_window_inference(
            volume[None], patch, batch_size, net, overlap=overlap, mode="gaussian", sigma_scale=0.125
        )[0]


CASES = {
    "2d-odd": ((45, 31), (16, 12)),
    "2d-smaller-than-patch": ((9, 40), (16, 16)),
    "3d-odd-anisotropic-patch": ((37, 29, 23), (16, 12, 8)),
    "3d-smaller-than-patch": ((10, 7, 30), (16, 12, 8)),
}


@pytest.mark.parametrize("shape, patch", CASES.values(), ids=CASES.keys())
def test_matches_monai_gaussian_blending(shape, patch):
    volume = torch.randn(1, *shape, generator=torch.Generator().manual_seed(1))
    net = _net(len(shape))
    reference = _monai(volume, net, patch)

    labels = sliding_window(volume, net, patch=patch, batch_size=3)
    probabilities = sliding_window(volume.numpy(), net, patch=patch, batch_size=2, output="probabilities")
    logits = sliding_window(volume, net, patch=patch, batch_size=5, output="logits")

    assert labels.shape == shape and labels.dtype == np.uint8
    assert probabilities.shape == logits.shape == (3, *shape)
    np.testing.assert_array_equal(labels, reference.argmax(0).numpy())
    np.testing.assert_allclose(probabilities, reference.softmax(0).numpy(), atol=1e-4)
    np.testing.assert_allclose(logits, reference.numpy(), atol=1e-4)


def test_one_output_channel_is_thresholded_at_zero_logit():
    volume = torch.randn(1, 30, 26, generator=torch.Generator().manual_seed(2))
    net = _net(2, classes=1)
    reference = _monai(volume, net, (16, 16))[0]
    labels = sliding_window(volume, net, patch=(16, 16))
    probabilities = sliding_window(volume, net, patch=(16, 16), output="probabilities")
    np.testing.assert_array_equal(labels, (reference > 0).numpy())
    np.testing.assert_allclose(probabilities[0], reference.sigmoid().numpy(), atol=1e-4)


@pytest.mark.parametrize("overlap", [0.25, 0.75])
def test_other_overlaps_and_float16_probabilities(overlap):
    volume = torch.randn(1, 33, 20, 18, generator=torch.Generator().manual_seed(3))
    net = _net(3)
    reference = _monai(volume, net, (12, 12, 12), overlap=overlap).softmax(0).numpy()
    probabilities = sliding_window(
        volume, net, patch=(12, 12, 12), overlap=overlap, output="probabilities", probability_dtype="float16"
    )
    assert probabilities.dtype == np.float16
    np.testing.assert_allclose(probabilities, reference, atol=1e-3)


def test_integer_input_is_converted_per_window():
    volume = torch.randint(-5, 6, (1, 25, 21), generator=torch.Generator().manual_seed(4)).to(torch.int16)
    net = _net(2)
    expected = sliding_window(volume.float(), net, patch=(16, 16), output="logits")
    np.testing.assert_allclose(sliding_window(volume.numpy(), net, patch=(16, 16), output="logits"), expected)


def test_read_only_big_endian_numpy_input_is_accepted():
    volume = np.random.default_rng(8).normal(size=(1, 20, 18)).astype(">f4")
    volume.setflags(write=False)
    expected = sliding_window(volume.astype(np.float32), _net(2), patch=(8, 8), output="logits")
    np.testing.assert_array_equal(sliding_window(volume, _net(2), patch=(8, 8), output="logits"), expected)


def test_mirroring_with_a_flip_equivariant_predictor_changes_nothing():
    # a voxel-wise function commutes with every flip, so the mirrored average equals the plain run
    def voxelwise(x):
        return torch.cat([x, x.square() - 1, -x], dim=1)

    volume = torch.randn(1, 29, 19, 23, generator=torch.Generator().manual_seed(5))
    plain = sliding_window(volume, voxelwise, patch=(12, 12, 12), output="logits")
    mirrored = sliding_window(volume, voxelwise, patch=(12, 12, 12), mirror_axes=(0, 1, 2), output="logits")
    np.testing.assert_allclose(mirrored, plain, atol=1e-5)
    np.testing.assert_array_equal(
        sliding_window(volume, voxelwise, patch=(12, 12, 12), mirror_axes=(2, 0)), plain.argmax(0)
    )


def test_mirroring_averages_the_flipped_back_logits():
    volume = torch.randn(1, 16, 12, 8, generator=torch.Generator().manual_seed(6))  # exactly one window
    net = _net(3)
    calls = []

    def predictor(x):
        calls.append(x.shape[0])
        return net(x)

    mirrored = sliding_window(volume, predictor, patch=(16, 12, 8), mirror_axes=(1,), output="logits")
    with torch.inference_mode():
        expected = (net(volume[None]) + net(volume[None].flip(3)).flip(3))[0] / 2
    assert calls == [1, 1]
    np.testing.assert_allclose(mirrored, expected.numpy(), atol=1e-5)
    assert not np.allclose(
        mirrored, sliding_window(volume, net, patch=(16, 12, 8), output="logits"), atol=1e-3
    )


def test_streaming_keeps_one_slab_of_windows(monkeypatch):
    slabs = []

    class Recorded(module._Slab):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            slabs.append(self)

    monkeypatch.setattr(module, "_Slab", Recorded)
    shape, patch = (100, 20, 18), (16, 12, 12)  # 12 rows of windows along the slow axis
    volume = torch.randn(1, *shape, generator=torch.Generator().manual_seed(7))
    net = _net(3)
    seen = []
    labels = sliding_window(volume, net, patch=patch, batch_size=4, progress=lambda d, t: seen.append((d, t)))

    np.testing.assert_array_equal(labels, _monai(volume, net, patch).argmax(0).numpy())
    (slab,) = slabs
    assert slab.sums.shape == (3, 16, 20, 18)  # classes x patch rows x the rest: 16% of a full float map
    assert slab.weights is None  # labels need no weight sums
    assert seen[-1] == (seen[-1][1], seen[-1][1]) and len(seen) == -(-seen[-1][1] // 4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patch": (8, 8)},
        {"patch": (8, 8, 8), "overlap": 1.0},
        {"patch": (8, 8, 8), "output": "masks"},
        {"patch": (8, 8, 8), "mirror_axes": (3,)},
        {"patch": (8, 8, 8), "batch_size": 0},
        {"patch": (8, 8, 8), "precision": "float16"},
    ],
)
def test_bad_arguments_raise_format_error(kwargs):
    with pytest.raises(FormatError):
        sliding_window(np.zeros((1, 8, 8, 8), np.float32), _net(3), **kwargs)


def test_bfloat16_windows_agree_with_float32():
    volume = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 30, 26, 22)).astype(np.float32))
    net = _net(3)
    with torch.no_grad():  # a decisive predictor, as a trained one is: logits far apart
        net[2].weight.mul_(20)
    exact = sliding_window(volume, net, patch=(16, 12, 8))
    fast = sliding_window(volume, net, patch=(16, 12, 8), precision="bfloat16")
    assert fast.shape == exact.shape and (fast == exact).mean() > 0.99
    logits = sliding_window(volume, net, patch=(16, 12, 8), precision="bfloat16", output="logits")
    assert logits.dtype == np.float32  # blending stays float32
