"""Selective state-space scan (Mamba-style, eq. 2 of MLVP-Net) in plain PyTorch.

This module is the specification: differentiable, device-agnostic and exportable to
ONNX. Faster kernels must match it (see ``tests/test_scan.py``).

Recurrence per channel ``d`` and state ``n`` (zero initial state)::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = <C_t, h_t> + D * u_t

The recurrence is linear in ``h``, so it is evaluated as a log-depth (Hillis-Steele)
associative scan: ceil(log2 L) tensor steps instead of L Python-level steps, which is
what makes it usable on CPU and in an exported graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def selective_scan_ref(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None) -> Tensor:
    """Scan sequences already in scan order.

    Shapes: u, delta (N, d, L); A (d, n) or (N, d, n), negative; B, C (N, n, L); D (d,) or (N, d).
    Returns y (N, d, L).
    """
    length = u.shape[-1]
    decay = torch.exp(delta.unsqueeze(2) * _batched(A, 2).unsqueeze(-1))  # (N, d, n, L)
    h = delta.unsqueeze(2) * B.unsqueeze(1) * u.unsqueeze(2)  # (N, d, n, L)
    step = 1
    while step < length:
        h = h + decay * F.pad(h[..., :-step], (step, 0))
        if step * 2 < length:
            decay = decay * F.pad(decay[..., :-step], (step, 0), value=1.0)
        step *= 2
    y = (h * C.unsqueeze(1)).sum(2)
    if D is not None:
        y = y + _batched(D, 1).unsqueeze(-1) * u
    return y


def selective_scan_loop(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None) -> Tensor:
    """The same recurrence as a naive per-step loop: slow, used only to check the others."""
    a = _batched(A, 2)
    h = u.new_zeros(u.shape[0], u.shape[1], a.shape[-1])
    ys = []
    for t in range(u.shape[-1]):
        dt = delta[..., t].unsqueeze(-1)  # (N, d, 1)
        h = torch.exp(dt * a) * h + dt * B[:, None, :, t] * u[..., t].unsqueeze(-1)
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + _batched(D, 1).unsqueeze(-1) * u
    return y


def multi_order_scan_ref(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, orders: Tensor) -> Tensor:
    """Scan K orderings of the same token grid at once.

    Inputs are in raster (row-major) token order; ``orders[k]`` lists the raster index
    visited at each step of scan k. Shapes: u, delta (N, K, d, L); A (K, d, n);
    B, C (N, K, n, L); D (K, d); orders (K, L) int64. Returns y (N, K, d, L) back in
    raster order, so callers never see permuted layouts.
    """
    n, k, d, length = u.shape
    index = orders.view(1, k, 1, length)

    def gather(t: Tensor) -> Tensor:
        return torch.gather(t, -1, index.expand(t.shape[0], k, t.shape[2], length)).flatten(0, 1)

    y = selective_scan_ref(gather(u), gather(delta), A.repeat(n, 1, 1), gather(B), gather(C), D.repeat(n, 1)).view(n, k, d, length)
    return torch.zeros_like(y).scatter(-1, index.expand(n, k, d, length), y)


def _batched(t: Tensor, rank: int) -> Tensor:
    """Give a parameter of unbatched rank ``rank`` a leading batch axis if it has none."""
    return t if t.dim() == rank + 1 else t.unsqueeze(0)
