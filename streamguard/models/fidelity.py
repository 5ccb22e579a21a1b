"""DeepFidelity: SSAAFormer (conv stages, symmetric flip in stage 1, self-attention in stages 3-4)
and a fidelity head in [0, 1] (real high, fake low). Its detector score is ``prob = 1 - fidelity``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from streamguard.models.config import DetectorConfig
from streamguard.models.layers import ConvBNAct, DetectorModel
from streamguard.models.registry import register


@dataclass
class FidelityConfig(DetectorConfig):
    arch: str = "deepfidelity"
    backbone: str = "ssaaformer"
    dims: tuple[int, int, int, int] = (48, 96, 192, 384)
    depths: tuple[int, int, int, int] = (2, 2, 4, 2)
    head_dim: int = 32  # attention head size in stages 3-4
    dropout: float = 0.2


class ConvBlock(nn.Module):
    """Depthwise 7x7 conv + BN, then a pointwise MLP (the residual is added by the caller)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw = ConvBNAct(dim, dim, 7, groups=dim, act=False)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 4 * dim, 1), nn.GELU(), nn.Conv2d(4 * dim, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.dw(x))


class SymmetricConvBlock(nn.Module):
    """Stage-1 block: ``x + w1 * A + w2 * flip(A)`` with A the block's response and flip horizontal,
    so left and right halves of a face are compared."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = ConvBlock(dim)
        self.w = nn.Parameter(torch.tensor([0.5, 0.5]))

    def forward(self, x: Tensor) -> Tensor:
        a = self.block(x)
        return x + self.w[0] * a + self.w[1] * a.flip(-1)


class ResidualConvBlock(ConvBlock):
    def forward(self, x: Tensor) -> Tensor:
        return x + super().forward(x)


class AttentionBlock(nn.Module):
    """Pre-norm multi-head self-attention over all tokens, then an MLP."""

    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__()
        self.heads = max(dim // head_dim, 1)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(self.norm1(t)).view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5, -1)
        t = t + self.proj((attn @ v).transpose(1, 2).reshape(b, h * w, c))
        t = t + self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape(b, c, h, w)


@register("deepfidelity")
class DeepFidelity(DetectorModel):
    Config = FidelityConfig

    def __init__(self, config: FidelityConfig) -> None:
        super().__init__(config)
        d = config.dims
        self.stem = nn.Sequential(ConvBNAct(3, d[0] // 2, 3, 2), ConvBNAct(d[0] // 2, d[0], 3, 2))
        block_types = (SymmetricConvBlock, ResidualConvBlock, None, None)
        stages: list[nn.Module] = []
        for i, (dim, depth, block) in enumerate(zip(d, config.depths, block_types, strict=True)):
            layers: list[nn.Module] = [] if i == 0 else [ConvBNAct(d[i - 1], dim, 3, 2, act=False)]
            if block is None:  # attention stages get a convolutional position encoding first
                layers.append(ResidualConvPosition(dim))
                layers.extend(AttentionBlock(dim, config.head_dim) for _ in range(depth))
            else:
                layers.extend(block(dim) for _ in range(depth))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(d[-1])
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(d[-1], 1))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = self.stages(self.stem(x))
        fidelity_logit = self.head(self.norm(features.mean((2, 3)))).squeeze(1)
        # Fake logit is the negated fidelity logit, so prob = 1 - fidelity exactly.
        return self.outputs(-fidelity_logit, fidelity=torch.sigmoid(fidelity_logit))


class ResidualConvPosition(nn.Module):
    """Conditional position encoding: ``x + DWConv3x3(x)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x)
