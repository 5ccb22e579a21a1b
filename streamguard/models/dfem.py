"""DFEM: detail feature extraction with differential convolutions (MLVP-Net).

Five parallel 3x3 branches: central (CDC), angular (ADC), horizontal (HDC) and vertical
(VDC) difference convolutions plus a vanilla conv. Each difference conv is a fixed linear
map of its learned weights, so the five kernels sum into one conv at deploy time (eq. 5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamguard.models.layers import ConvBNAct, Fusable

BRANCHES = ("vanilla", "cdc", "adc", "hdc", "vdc")
# Clockwise neighbour of each position of a flattened 3x3 kernel (the centre stays).
_ANGULAR_SHIFT = [3, 0, 1, 6, 4, 2, 7, 8, 5]


class DifferentialConv2d(nn.Module):
    """A 3x3 convolution whose effective kernel is ``kernel()``, a linear map of ``weight``."""

    def __init__(self, channels: int, kind: str) -> None:
        super().__init__()
        if kind not in BRANCHES:
            raise ValueError(f"unknown differential conv {kind!r}; expected one of {BRANCHES}")
        self.kind = kind
        shape = (channels, channels, 3) if kind in ("hdc", "vdc") else (channels, channels, 3, 3)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(channels))

    def kernel(self) -> Tensor:
        w = self.weight
        if self.kind == "vanilla":
            return w
        if self.kind == "cdc":  # x_p - x_centre on every tap: the centre tap loses the kernel's sum
            flat = w.flatten(2)
            centre = flat[:, :, 4] - flat.sum(2)
            return torch.cat([flat[:, :, :4], centre.unsqueeze(2), flat[:, :, 5:]], 2).view_as(w)
        if self.kind == "adc":  # difference with the clockwise neighbour
            flat = w.flatten(2)
            return (flat - flat[:, :, _ANGULAR_SHIFT]).view_as(w)
        zeros = w.new_zeros(w.shape[0], w.shape[1], 3)
        if self.kind == "hdc":  # left column minus right column
            rows = [torch.stack([w[..., i], zeros[..., i], -w[..., i]], -1) for i in range(3)]
            return torch.stack(rows, 2)
        return torch.stack([w, zeros, -w], 2)  # vdc: top row minus bottom row

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.kernel(), self.bias, padding=1)


class DifferentialBranches(nn.Module):
    """The five DFEM branches, summed (training form)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(DifferentialConv2d(channels, kind) for kind in BRANCHES)

    def forward(self, x: Tensor) -> Tensor:
        return sum((branch(x) for branch in self.branches), torch.zeros_like(x))

    @torch.no_grad()
    def as_conv(self) -> nn.Conv2d:
        """One conv equal to the sum of the branches (eq. 5): kernels and biases add up."""
        branches = [b for b in self.branches if isinstance(b, DifferentialConv2d)]
        weight = torch.stack([b.kernel() for b in branches]).sum(0)
        bias = torch.stack([b.bias for b in branches]).sum(0)
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1).to(weight)
        conv.weight.copy_(weight)
        assert conv.bias is not None
        conv.bias.copy_(bias)
        return conv


class DFEM(Fusable):
    """Project to ``dim`` channels, then add difference-conv detail features: ``x + SiLU(BN(sum of branches))``."""

    def __init__(self, cin: int, dim: int) -> None:
        super().__init__()
        self.proj = ConvBNAct(cin, dim, 1)
        self.detail: nn.Module = DifferentialBranches(dim)
        self.bn = nn.BatchNorm2d(dim)
        self.act = nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)
        return x + self.act(self.bn(self.detail(x)))

    def fuse(self) -> None:
        if isinstance(self.detail, DifferentialBranches):
            self.detail = self.detail.as_conv()
