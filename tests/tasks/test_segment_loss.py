"""Deep supervision: DynUNet's extra outputs in training, nnU-Net's weights in the loss."""

import pytest
import torch

from medsight.models import build_model
from medsight.tasks.segment.loss import deep_supervision_heads, segmentation_loss

NETWORK = {
    "name": "dynunet",
    "spatial_dims": 2,
    "in_channels": 1,
    "num_classes": 3,
    "kernels": [[3, 3]] * 5,
    "strides": [[1, 1]] + [[2, 2]] * 4,
    "filters": [4, 8, 16, 32, 32],
}


def test_every_decoder_level_but_the_two_coarsest_is_supervised():
    assert [deep_supervision_heads([[1, 1]] * n) for n in (2, 3, 4, 5, 6)] == [0, 0, 1, 2, 3]


def test_training_outputs_are_stacked_and_weighed_by_halves():
    network = {**NETWORK, "deep_supervision": deep_supervision_heads(NETWORK["strides"])}
    model = build_model(network)
    x = torch.randn(2, 1, 32, 32)
    y = torch.randint(0, 3, (2, 1, 32, 32))
    out = model.train()(x)
    assert out.shape == (2, 3, 3, 32, 32)  # the full-resolution output, then two coarser ones
    loss = segmentation_loss(network)(out, y)
    plain = segmentation_loss(NETWORK)
    expected = sum(w * plain(out[:, k], y) for k, w in enumerate([4 / 7, 2 / 7, 1 / 7]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()  # the coarse levels' heads learn too
    heads = list(model.deep_supervision_heads.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 3, 32, 32)  # inference sees the full-resolution output only


def test_a_network_without_deep_supervision_keeps_one_output():
    model = build_model(NETWORK).train()
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3, 32, 32)
