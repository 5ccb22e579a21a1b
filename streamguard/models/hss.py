"""MSPM and its hybrid state-space (HSS) blocks (MLVP-Net eqs. 1-4).

Scan orders are data: each is a permutation of raster token indices built once per
grid size (global zigzag, plus local zigzag scans over patches under the identity,
inverse, rotation and transposition encodings). The scan kernel gathers by the order,
scans, and scatters back, so new orders need no new code.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamguard.kernels import multi_order_scan
from streamguard.models.layers import ConvBNAct


def zigzag(grid: Tensor) -> Tensor:
    """Visit a 2-D grid row by row, reversing every other row (a snake), returning its values."""
    rows = [row.flip(0) if i % 2 else row for i, row in enumerate(grid)]
    return torch.cat(rows)


def local_zigzag(grid: Tensor, patch: int) -> Tensor:
    """Visit ``patch`` x ``patch`` windows (in snake order), zigzag inside each; edge windows may be smaller."""
    h, w = grid.shape
    windows = []
    for i, top in enumerate(range(0, h, patch)):
        lefts = list(range(0, w, patch))
        for left in reversed(lefts) if i % 2 else lefts:
            windows.append(zigzag(grid[top : top + patch, left : left + patch]))
    return torch.cat(windows)


@lru_cache(maxsize=32)
def scan_orders(h: int, w: int, patch: int) -> Tensor:
    """The five HSS scan orders of an h x w grid, shape (5, h*w), each a permutation of range(h*w)."""
    grid = torch.arange(h * w).view(h, w)
    return torch.stack(
        [
            zigzag(grid),  # global
            local_zigzag(grid, patch),  # local, identity encoding
            local_zigzag(grid, patch).flip(0),  # local, inverse encoding
            local_zigzag(torch.rot90(grid), patch),  # local, rotation encoding
            local_zigzag(grid.t(), patch),  # local, transposition encoding
        ]
    )


NUM_ORDERS = 5


def _inverse_softplus(x: Tensor) -> Tensor:
    return x + torch.log(-torch.expm1(-x))


class HSSBlock(nn.Module):
    """One hybrid state-space block: norm -> in-proj (x, gate z) -> depthwise conv -> K-order selective scan
    (eq. 2, input-dependent delta, B, C; A negative) -> concatenated orders merged -> gated -> out-proj + residual."""

    def __init__(self, dim: int, d_state: int = 16, expand: float = 1.0, patch: int = 4, dt_min: float = 1e-3, dt_max: float = 0.1) -> None:
        super().__init__()
        inner = int(dim * expand)
        self.inner, self.d_state, self.patch = inner, d_state, patch
        self.dt_rank = math.ceil(dim / 16)
        k = NUM_ORDERS
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.conv = nn.Conv2d(inner, inner, 3, padding=1, groups=inner)
        self.x_proj = nn.Parameter(torch.empty(k, self.dt_rank + 2 * d_state, inner).uniform_(-(inner**-0.5), inner**-0.5))
        self.dt_proj = nn.Parameter(torch.empty(k, inner, self.dt_rank).uniform_(-(self.dt_rank**-0.5), self.dt_rank**-0.5))
        dt = torch.exp(torch.rand(k, inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.dt_bias = nn.Parameter(_inverse_softplus(dt))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(k, inner, 1))
        self.D = nn.Parameter(torch.ones(k, inner))
        self.merge = nn.Linear(k * inner, inner, bias=False)
        self.out_norm = nn.LayerNorm(inner)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        length, k, inner = h * w, NUM_ORDERS, self.inner
        u, z = self.in_proj(self.norm(x.flatten(2).transpose(1, 2))).chunk(2, -1)  # (b, L, inner) each
        u = F.silu(self.conv(u.transpose(1, 2).reshape(b, inner, h, w))).flatten(2)  # (b, inner, L)
        proj = torch.einsum("bel,kje->bkjl", u, self.x_proj)
        dt, B, C = proj.split([self.dt_rank, self.d_state, self.d_state], 2)
        delta = F.softplus(torch.einsum("bkrl,ker->bkel", dt, self.dt_proj) + self.dt_bias.unsqueeze(-1))
        orders = scan_orders(h, w, self.patch).to(x.device)
        y = multi_order_scan(u.unsqueeze(1).expand(b, k, inner, length), delta, -torch.exp(self.A_log), B, C, self.D, orders)
        y = self.merge(y.reshape(b, k * inner, length).transpose(1, 2))
        y = self.out_norm(y) * F.silu(z)
        return x + self.out_proj(y).transpose(1, 2).reshape(b, c, h, w)


class MSPM(nn.Module):
    """Multi-scale perception: cascaded HSS blocks (eq. 1) beside depthwise k=3, 5, 7 branches (eq. 3),
    concatenated, fused by a 1x1 conv, plus the input (eq. 4)."""

    def __init__(self, dim: int, depth: int = 2, d_state: int = 16, patch: int = 4) -> None:
        super().__init__()
        self.hss = nn.Sequential(*(HSSBlock(dim, d_state, patch=patch) for _ in range(depth)))
        self.local = nn.ModuleList(ConvBNAct(dim, dim, k, groups=dim) for k in (3, 5, 7))
        self.mix = ConvBNAct(4 * dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mix(torch.cat([self.hss(x), *(branch(x) for branch in self.local)], 1))
