"""Selective state-space scan (Mamba-style, eq. 2 of MLVP-Net) in plain PyTorch.

This module is the specification: differentiable, device-agnostic and exportable to
ONNX. Faster kernels must match it (see ``tests/test_scan.py``).

Recurrence per channel ``d`` and state ``n`` (zero initial state)::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = <C_t, h_t> + D * u_t

It is evaluated in chunks (a two-level scan): sequences are cut into ~sqrt(L) chunks of
~sqrt(L) steps; all chunks are scanned at once, step by step, then the state is carried
across chunks. That is O(sqrt L) small tensor steps instead of L (a plain loop) and no
O(L log L) full-size passes (a Hillis-Steele scan): what matters on CPU and in an
exported ONNX graph, where per-op overhead and memory passes dominate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def selective_scan_ref(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None) -> Tensor:
    """Scan sequences already in scan order.

    Shapes: u, delta (N, d, L); A (d, n) or (N, d, n), negative; B, C (N, n, L); D (d,) or (N, d).
    Returns y (N, d, L).
    """
    n_batch, dim, length = u.shape
    steps = max(1, round(math.sqrt(length)))  # steps per chunk
    chunks = -(-length // steps)
    pad = chunks * steps - length  # padded steps have delta = 0: they carry the state unchanged

    def step_major(t: Tensor) -> Tensor:
        """(N, X, L) -> (steps, N, X, chunks): a step's values for every chunk are one contiguous slab."""
        return F.pad(t, (0, pad)).view(n_batch, t.shape[1], chunks, steps).permute(3, 0, 1, 2)

    A = _batched(A, 2).unsqueeze(-1)  # (1|N, d, n, 1)
    dt = step_major(delta).unsqueeze(3)  # (steps, N, d, 1, chunks)
    decay = torch.exp(dt * A)  # (steps, N, d, n, chunks)
    drive = dt * step_major(u).unsqueeze(3) * step_major(B).unsqueeze(2)

    # 1. Scan every chunk from a zero state, all chunks at once.
    decays, drives = decay.unbind(0), drive.unbind(0)
    h = drives[0]
    local = [h]
    for t in range(1, steps):
        h = decays[t] * h + drives[t]
        local.append(h)
    h_local = torch.stack(local)

    # 2. Carry the state across chunks: state entering chunk j = decay over chunk j-1 * state entering it + its local end.
    chunk_decays = torch.exp(dt.sum(0) * A).movedim(-1, 0).unbind(0)  # per chunk (N, d, n)
    chunk_ends = h_local[-1].movedim(-1, 0).unbind(0)
    entering = [torch.zeros_like(chunk_ends[0])]
    for j in range(1, chunks):
        entering.append(chunk_decays[j - 1] * entering[-1] + chunk_ends[j - 1])
    h_in = torch.stack(entering, -1)  # (N, d, n, chunks)

    # 3. Every position adds the entering state, decayed from its chunk's start.
    h = h_local + torch.exp(dt.cumsum(0) * A) * h_in
    y = (h * step_major(C).unsqueeze(2)).sum(3)  # (steps, N, d, chunks)
    y = y.permute(1, 2, 3, 0).reshape(n_batch, dim, chunks * steps)[..., :length]
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
