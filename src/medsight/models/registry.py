"""Networks by name: one factory, MONAI's implementations, a config that travels with the weights.

    model = build_model({"name": "resnet", "spatial_dims": 2, "in_channels": 1, "num_classes": 2,
                         "depth": 18, "width": 0.5, "small_input": True})

The dict given to `build_model` is stored in the plan, so a bundle rebuilds the same network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medsight.errors import UnsupportedError

__all__ = ["MODELS", "build_model", "register_model"]

MODELS: dict[str, Callable[..., Any]] = {}


def register_model(name: str):
    """Decorator: make a network constructor available to `build_model` under `name`."""

    def add(fn):
        MODELS[name] = fn
        return fn

    return add


def build_model(config: dict):
    """Build the network that `config["name"]` names, with the rest of `config` as arguments."""
    options = dict(config)
    name = options.pop("name", None)
    if name not in MODELS:
        import difflib

        close = difflib.get_close_matches(str(name), MODELS, n=1)
        maybe = f"; did you mean {close[0]!r}?" if close else ""
        raise UnsupportedError(f"unknown network {name!r}{maybe}", hint=f"Known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**options)


_RESNET_LAYERS = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


@register_model("resnet")
def resnet(
    *,
    spatial_dims: int,
    in_channels: int,
    num_classes: int,
    depth: int = 18,
    width: float = 1.0,
    small_input: bool = False,
):
    """MONAI's ResNet (basic blocks). `width` scales the channels (64, 128, 256, 512);
    `small_input` uses a 3x3 stride-1 stem without max-pooling, as MedMNIST-sized images need.
    """
    from monai.networks.nets import ResNet

    if depth not in _RESNET_LAYERS:
        raise UnsupportedError(
            f"ResNet depth {depth} is not offered", hint=f"Use one of {sorted(_RESNET_LAYERS)}"
        )
    planes = [max(8, int(round(c * width))) for c in (64, 128, 256, 512)]
    return ResNet(
        block="basic",
        layers=_RESNET_LAYERS[depth],
        block_inplanes=planes,
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        conv1_t_size=3 if small_input else 7,
        conv1_t_stride=1 if small_input else 2,
        no_max_pool=small_input,
        num_classes=num_classes,
    )


@register_model("densenet")
def densenet(
    *, spatial_dims: int, in_channels: int, num_classes: int, growth_rate: int = 32, init_features: int = 64
):
    """MONAI's DenseNet-121."""
    from monai.networks.nets import DenseNet121

    return DenseNet121(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=num_classes,
        growth_rate=growth_rate,
        init_features=init_features,
    )


@register_model("dynunet")
def dynunet(
    *,
    spatial_dims: int,
    in_channels: int,
    num_classes: int,
    kernels: list[list[int]],
    strides: list[list[int]],
    filters: list[int],
    deep_supervision: int = 0,
):
    """MONAI's DynUNet, the nnU-Net architecture: one level per entry of `kernels`/`strides`
    (the first stride is 1), instance norm and leaky ReLU as nnU-Net uses them.

    `deep_supervision` extra outputs from the decoder's coarser levels: in training mode the
    network then returns them stacked after the full-resolution one, ``(B, 1 + n, C, ...)``,
    each upsampled to the output's size; in eval mode the full-resolution output alone.
    """
    from monai.networks.nets import DynUNet

    return DynUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=num_classes,
        kernel_size=kernels,
        strides=strides,
        upsample_kernel_size=strides[1:],
        filters=filters,
        norm_name=("instance", {"affine": True}),
        act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision=deep_supervision > 0,
        deep_supr_num=max(deep_supervision, 1),
    )


# Detection networks live in their own module and register themselves on import.
from medsight.models import retinanet as _retinanet  # noqa: E402, F401
