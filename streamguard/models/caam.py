"""CAAM: content-aware attention fusion of low-level (L) and high-level (H) features, eqs. 6-9."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ChannelAttention(nn.Module):
    """Eq. 6: global average pool -> 1x1 squeeze -> ReLU -> 1x1 excite (per-channel weights)."""

    def __init__(self, dim: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(dim // reduction, 4)
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SpatialAttention(nn.Module):
    """Eq. 7: channel-wise average and max maps -> 7x7 conv (per-pixel weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, padding_mode="reflect")

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1))


class PixelAttention(nn.Module):
    """Eq. 8: interleave each input channel with its coarse attention (channel shuffle), grouped 7x7 conv, sigmoid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * dim, dim, 7, padding=3, padding_mode="reflect", groups=dim)

    def forward(self, x: Tensor, coarse: Tensor) -> Tensor:
        shuffled = torch.stack([x, coarse], 2).flatten(1, 2)  # channels x0, a0, x1, a1, ...
        return torch.sigmoid(self.conv(shuffled))


class CAAM(nn.Module):
    """Eq. 9: ``FS = C1x1(Wp * FL + (1 - Wp) * FH + FH + FL)`` with Wp from eqs. 6-8 on ``FL + FH``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.channel = ChannelAttention(dim)
        self.spatial = SpatialAttention()
        self.pixel = PixelAttention(dim)
        self.out = nn.Conv2d(dim, dim, 1)

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        base = low + high
        coarse = self.channel(base) + self.spatial(base)  # broadcasts to (B, C, H, W)
        weight = self.pixel(base, coarse)
        return self.out(weight * low + (1 - weight) * high + high + low)
