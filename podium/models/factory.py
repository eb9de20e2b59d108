"""Build a model: SMP architecture × SMP/timm encoder, with our heads on top."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from podium.heads import FeatureShapes, HeadBase, HeadInputs

__all__ = ["PodiumModel", "build_model", "load_encoder_file"]


class PodiumModel(nn.Module):
    """Encoder → decoder → heads in config order, each reading what it declared.

    Input: {"image": normalized B×C×H×W float, <extra input>: B×n float, ...}, or the image
    tensor alone. Output: {head name: B×K×H×W or B×K}.
    """

    def __init__(
        self,
        net: smp.base.SegmentationModel,
        heads: dict[str, nn.Module],
        inputs: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = net.encoder
        self.decoder = net.decoder
        self.heads = nn.ModuleDict(heads)
        self.inputs = dict(inputs or {})
        self.output_stride = getattr(net.encoder, "output_stride", 32)
        self.requires_divisible_input = net.requires_divisible_input_shape

    def forward(self, inputs: dict[str, torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor]:
        if isinstance(inputs, torch.Tensor):
            inputs = {"image": inputs}
        x = inputs["image"]
        if self.requires_divisible_input:
            _check_divisible(x, self.output_stride)
        missing = [name for name in self.inputs if name not in inputs]
        if missing:
            raise ValueError(f"the model reads inputs {missing} besides the image; none given")
        features = self.encoder(x)
        ctx = HeadInputs(
            features, self.decoder(features), {n: inputs[n] for n in self.inputs}, outputs={}
        )
        for name, head in self.heads.items():
            ctx.outputs[name] = head(ctx)
        return ctx.outputs


def _check_divisible(x: torch.Tensor, stride: int) -> None:
    h, w = x.shape[-2:]
    if h % stride or w % stride:
        raise ValueError(
            f"input {h}×{w} is not divisible by the encoder's output stride {stride}: "
            "crop/pad in the augmentation (e.g. PadIfNeeded with pad_height_divisor) "
            "or use tiled inference"
        )


def build_model(
    arch: str,
    encoder_name: str,
    heads: dict[str, HeadBase],
    encoder_weights: str | None = None,
    in_channels: int = 3,
    inputs: dict[str, int] | None = None,
    **kwargs: Any,
) -> PodiumModel:
    """kwargs go to the SMP constructor unrenamed (decoder_channels, encoder_depth, ...).

    inputs: extra model inputs (name → values per image) that heads may read.
    """
    local_file = encoder_weights is not None and _looks_like_path(encoder_weights)
    net = smp.create_model(
        arch,
        encoder_name=encoder_name,
        encoder_weights=None if local_file else encoder_weights,
        in_channels=in_channels,
        classes=1,
        **kwargs,
    )
    if local_file:
        load_encoder_file(net.encoder, Path(encoder_weights))
    shapes = _feature_shapes(net, inputs or {})
    built: dict[str, nn.Module] = {}
    for name, head in heads.items():
        built[name] = head.build_module(shapes)
        # Later heads may read this one's output: they learn its channel count.
        shapes = dataclasses.replace(shapes, heads={**shapes.heads, name: head.out_channels})
    return PodiumModel(net, built, inputs)


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.endswith((".pth", ".pt", ".ckpt", ".bin", ".safetensors"))


def _feature_shapes(net: smp.base.SegmentationModel, inputs: dict[str, int]) -> FeatureShapes:
    """Read channels and kernel size from the SMP segmentation head we replace."""
    conv = next(m for m in net.segmentation_head.modules() if isinstance(m, nn.Conv2d))
    return FeatureShapes(
        tuple(net.encoder.out_channels), conv.in_channels, conv.kernel_size[0], dict(inputs)
    )


def load_encoder_file(encoder: nn.Module, path: Path) -> None:
    """Load local encoder weights (a state dict, e.g. torchvision/timm); report what mismatched."""
    if not path.is_file():
        raise FileNotFoundError(f"model.encoder_weights: file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    target = encoder.model if hasattr(encoder, "model") else encoder  # timm-universal wraps
    state = _strip_prefix(state, target)
    own = target.state_dict()
    missing = [k for k in own if k not in state]
    if len(missing) == len(own):
        raise ValueError(
            f"model.encoder_weights: no tensor in {path} matches the encoder "
            f"(first keys: {list(state)[:3]})"
        )
    # SMP encoders override load_state_dict (dropping classifier keys) and return None,
    # so the missing keys are computed above rather than read from the result.
    target.load_state_dict(state, strict=False)
    if missing:
        print(f"encoder weights {path}: {len(missing)} missing keys, e.g. {missing[:3]}")


def _strip_prefix(state: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """Accept files saved from a whole model ('encoder.' prefix) or the bare encoder."""
    own = set(target.state_dict())
    for prefix in ("", "encoder.", "encoder.model.", "model.encoder.", "backbone."):
        stripped = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if own & set(stripped):
            return stripped
    return state
