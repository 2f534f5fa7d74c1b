"""RetinaNet for 2D and 3D detection: MONAI's RetinaNet heads on a MONAI ResNet with MONAI's FPN.

    network = build_model({"name": "retinanet", "spatial_dims": 2, "in_channels": 1, "num_classes": 1,
                           "num_anchors": 3, "depth": 10, "width": 0.25, "fpn_channels": 64,
                           "max_pool": False, "returned_layers": [1, 2]})

MONAI's own ``resnet_fpn_feature_extractor`` needs torchvision (its ``IntermediateLayerGetter``
and a layer check), which MedSight does not install; `ResNetFPN` does the same composition with
MONAI parts only (built inside the function, so importing this module imports no torch):
the ResNet stem and stages, then ``FeaturePyramidNetwork`` with a
max-pooled extra level. Feature levels, finest first: the returned stages, then the pool level.
"""

from __future__ import annotations

from medsight.errors import UnsupportedError
from medsight.models.registry import register_model

__all__ = ["retinanet", "size_divisible", "strides"]

_LAYERS = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


def strides(*, stem_stride: int = 2, max_pool: bool = True, returned_layers=(1, 2)) -> list[int]:
    """Stride (input voxels per feature voxel) of each feature level, finest first."""
    first = stem_stride * (2 if max_pool else 1)  # stage 1 keeps the stem's resolution
    levels = [first * 2 ** (k - 1) for k in returned_layers]
    return [*levels, levels[-1] * 2]  # the extra max-pooled level


def size_divisible(**network) -> int:
    """What every input side must divide by: the coarsest level's stride."""
    keys = ("stem_stride", "max_pool", "returned_layers")
    return strides(**{k: network[k] for k in keys if k in network})[-1]


def _feature_extractor(spatial_dims, in_channels, depth, width, stem_stride, max_pool, returned_layers, fpn):
    import torch
    from monai.networks.blocks.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool
    from monai.networks.nets.resnet import ResNet, ResNetBlock

    class ResNetFPN(torch.nn.Module):
        """The ResNet stages up to the last returned one, and an FPN over the returned ones."""

        def __init__(self):
            super().__init__()
            planes = [max(8, int(round(c * width))) for c in (64, 128, 256, 512)]
            backbone = ResNet(
                block=ResNetBlock,
                layers=_LAYERS[depth],
                block_inplanes=planes,
                spatial_dims=spatial_dims,
                n_input_channels=in_channels,
                conv1_t_size=max(7, 2 * stem_stride + 1) if stem_stride > 1 else 3,
                conv1_t_stride=stem_stride,
                no_max_pool=not max_pool,
                feed_forward=False,
            )
            self.stem = torch.nn.Sequential(
                backbone.conv1,
                backbone.bn1,
                backbone.act,
                backbone.maxpool if max_pool else torch.nn.Identity(),
            )
            last = max(returned_layers)
            self.stages = torch.nn.ModuleList(getattr(backbone, f"layer{k}") for k in range(1, last + 1))
            self.returned = [k - 1 for k in returned_layers]
            self.fpn = FeaturePyramidNetwork(
                spatial_dims=spatial_dims,
                in_channels_list=[planes[k] for k in self.returned],
                out_channels=fpn,
                extra_blocks=LastLevelMaxPool(spatial_dims),
            )
            self.out_channels = fpn

        def forward(self, x):
            from collections import OrderedDict

            x = self.stem(x)
            features = OrderedDict()
            for k, stage in enumerate(self.stages):
                x = stage(x)
                if k in self.returned:
                    features[str(k)] = x
            return self.fpn(features)

    return ResNetFPN()


@register_model("retinanet")
def retinanet(
    *,
    spatial_dims: int,
    in_channels: int,
    num_classes: int,
    num_anchors: int,
    depth: int = 10,
    width: float = 0.25,
    fpn_channels: int = 64,
    stem_stride: int = 2,
    max_pool: bool = True,
    returned_layers: list[int] = (1, 2),
):
    """MONAI's RetinaNet (classification and box-regression heads) on a width-scaled ResNet + FPN.

    Parameters
    ----------
    depth : {10, 18, 34}
        ResNet basic-block depth.
    width : float
        Scales the stage channels (64, 128, 256, 512).
    fpn_channels : int
        Channels of every FPN level and of the heads (a multiple of 8: the heads use
        GroupNorm with 8 groups).
    stem_stride, max_pool, returned_layers
        The finest level's stride is ``stem_stride`` (x2 with max pooling) for stage 1, doubling
        per stage; small objects need a fine first level (see `strides`).
    """
    from monai.apps.detection.networks.retinanet_network import RetinaNet

    if depth not in _LAYERS:
        raise UnsupportedError(f"ResNet depth {depth} is not offered", hint=f"Use one of {sorted(_LAYERS)}")
    returned = sorted(int(k) for k in returned_layers)
    if not returned or returned[0] < 1 or returned[-1] > 4:
        raise UnsupportedError(f"returned_layers {returned_layers} must lie within 1..4")
    if fpn_channels % 8:
        raise UnsupportedError(f"fpn_channels {fpn_channels} is not a multiple of 8 (the heads' GroupNorm)")
    extractor = _feature_extractor(
        spatial_dims, in_channels, depth, width, int(stem_stride), bool(max_pool), returned, int(fpn_channels)
    )
    divisible = size_divisible(
        stem_stride=int(stem_stride), max_pool=bool(max_pool), returned_layers=returned
    )
    return RetinaNet(
        spatial_dims=spatial_dims,
        num_classes=num_classes,
        num_anchors=num_anchors,
        feature_extractor=extractor,
        size_divisible=divisible,
    )
