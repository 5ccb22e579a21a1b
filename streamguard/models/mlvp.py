"""MLVP-Net: EfficientNet features f1/f2/f3 -> DFEM on f1, f2 -> CAAM fusion -> MSPM -> binary logit."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamguard.models.backbone import create_backbone, feature_channels
from streamguard.models.caam import CAAM
from streamguard.models.config import ConfigError, DetectorConfig
from streamguard.models.dfem import DFEM
from streamguard.models.hss import MSPM
from streamguard.models.layers import DetectorModel
from streamguard.models.registry import register


@dataclass
class MLVPConfig(DetectorConfig):
    arch: str = "mlvp"
    dim: int = 96  # channels of the fused L/H features that MSPM scans
    hss_depth: int = 2  # cascaded HSS blocks in MSPM
    d_state: int = 16  # state size of the selective scan
    local_patch: int = 4  # side of the local patch scans, in tokens
    fusion_stride: int = 16  # where CAAM fuses L and H and MSPM scans: 16 (f2's grid) or 32 (f3's, 4x fewer tokens)
    dropout: float = 0.2


@register("mlvp")
class MLVPNet(DetectorModel):
    Config = MLVPConfig

    config: MLVPConfig

    def __init__(self, config: MLVPConfig) -> None:
        super().__init__(config)
        self.backbone = create_backbone(config)
        c1, c2, c3 = feature_channels(self.backbone)
        if config.fusion_stride not in (16, 32):
            raise ConfigError(f"{config.source}: fusion_stride must be 16 or 32, got {config.fusion_stride}")
        self.dfem_low = DFEM(c1, config.dim)
        self.dfem_high = DFEM(c2, config.dim)
        self.caam = CAAM(config.dim)
        self.mspm = MSPM(config.dim, config.hss_depth, config.d_state, config.local_patch)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.dim + c3, 1))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        f1, f2, f3 = self.backbone(x)
        # L (stride 8) and H (stride 16) meet at the fusion stride, which sets the scans' length.
        low = F.avg_pool2d(self.dfem_low(f1), self.config.fusion_stride // 8, ceil_mode=True)
        high = self.dfem_high(f2)
        if self.config.fusion_stride == 32:
            high = F.avg_pool2d(high, 2, ceil_mode=True)
        fused = self.mspm(self.caam(low, high))
        logit = self.head(torch.cat([fused.mean((2, 3)), f3.mean((2, 3))], 1)).squeeze(1)
        return self.outputs(logit)
