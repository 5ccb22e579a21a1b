"""LAA-Net: EfficientNet + E-FPN with classification, heatmap and self-consistency heads."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamguard.models.backbone import create_backbone, feature_channels
from streamguard.models.config import DetectorConfig
from streamguard.models.layers import ConvBNAct, DetectorModel
from streamguard.models.registry import register


@dataclass
class LAAConfig(DetectorConfig):
    arch: str = "laa"
    backbone: str = "efficientnet_b4"
    input_size: int = 384
    fpn_dim: int = 128
    gamma_w: float = 1.0  # exponent of the E-FPN redundancy weight (eq. 9)
    dropout: float = 0.2
    # L = BCE + 10 L_heatmap + 100 L_consistency
    loss_weights: dict[str, float] = field(default_factory=lambda: {"cls": 1.0, "heatmap": 10.0, "consistency": 100.0})


class EFPN(nn.Module):
    """Top-down pyramid whose lateral features are down-weighted where the coarser level already responds:
    ``P_l = Conv3x3(Lat(F_l) * (1 - sigmoid(Up(P_{l+1})))^gamma_w + Up(P_{l+1}))`` (eq. 9)."""

    def __init__(self, channels: list[int], dim: int, gamma_w: float) -> None:
        super().__init__()
        self.gamma_w = gamma_w
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in channels)
        self.smooth = nn.ModuleList(ConvBNAct(dim, dim, 3) for _ in channels[:-1])

    def forward(self, features: list[Tensor]) -> Tensor:
        top = self.lateral[-1](features[-1])
        for level in range(len(features) - 2, -1, -1):
            up = F.interpolate(top, size=features[level].shape[-2:], mode="nearest")
            weight = (1 - torch.sigmoid(up)) ** self.gamma_w
            top = self.smooth[level](self.lateral[level](features[level]) * weight + up)
        return top


def _map_head(dim: int, bias: float) -> nn.Sequential:
    head = nn.Sequential(ConvBNAct(dim, dim, 3), nn.Conv2d(dim, 1, 1))
    nn.init.constant_(head[-1].bias, bias)  # type: ignore[arg-type]
    return head


@register("laa")
class LAANet(DetectorModel):
    """Outputs ``heatmap`` (vulnerable points) and ``consistency`` (agreement with the most vulnerable point),
    both (N, 1, H/8, W/8) in [0, 1], beside the binary logit."""

    Config = LAAConfig

    def __init__(self, config: LAAConfig) -> None:
        super().__init__(config)
        self.backbone = create_backbone(config)
        channels = feature_channels(self.backbone)
        self.fpn = EFPN(channels, config.fpn_dim, config.gamma_w)
        self.heatmap = _map_head(config.fpn_dim, -2.19)  # prior of 0.1 on peaks, as in CenterNet
        self.consistency = _map_head(config.fpn_dim, 0.0)
        self.cls = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.fpn_dim + channels[-1], 1))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = self.backbone(x)
        pyramid = self.fpn(features)
        logit = self.cls(torch.cat([pyramid.mean((2, 3)), features[-1].mean((2, 3))], 1)).squeeze(1)
        return self.outputs(
            logit,
            heatmap=torch.sigmoid(self.heatmap(pyramid)),
            consistency=torch.sigmoid(self.consistency(pyramid)),
        )
