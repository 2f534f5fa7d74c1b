"""The segmentation loss: Dice plus cross-entropy, over deep-supervision outputs weighed as in nnU-Net."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["deep_supervision_heads", "segmentation_loss"]


def deep_supervision_heads(strides: list) -> int:
    """Extra outputs for a network of ``len(strides)`` levels: nnU-Net supervises every decoder
    level but the two coarsest (its lowest output has weight 0), so ``levels - 3``."""
    return max(len(strides) - 3, 0)


def segmentation_loss(network: dict) -> Callable:
    """``loss(output, target)`` for the network `network` builds: target ``(B, 1, ...)`` labels.

    With deep supervision the training output is ``(B, 1 + n, C, ...)``, every output at full
    resolution (MONAI upsamples them); output ``k`` weighs ``2**-k``, normalised to sum 1
    (nnU-Net's weights, which halve with each coarser level).
    """
    from monai.losses import DiceCELoss

    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    heads = network.get("deep_supervision", 0)
    if not heads:
        return dice_ce
    weights = [0.5**k for k in range(heads + 1)]
    weights = [w / sum(weights) for w in weights]

    def loss(output, target):  # training mode only: eval mode returns one output, and no loss
        return sum(w * dice_ce(output[:, k], target) for k, w in enumerate(weights))

    return loss
