"""Fused multi-order selective scan in Triton (forward only, for inference).

Computes exactly :func:`streamguard.kernels.scan.multi_order_scan_ref`: one program per
(batch ``n``, order ``k``, block of ``BLOCK_D`` channels) walks the ``L`` steps of scan
``k`` sequentially with the state ``h`` (``BLOCK_D x DSTATE``, fp32) held in registers.
At step ``t`` it loads ``idx = orders[k, t]``, reads ``u``, ``delta``, ``B`` and ``C`` at
raster position ``idx`` and writes ``y`` at raster position ``idx``, so the gather into
scan order and the scatter back to raster order are fused into the loop and no permuted
copy of any sequence is ever materialized. Any strides are accepted (e.g. ``u`` expanded
over ``K``). Arithmetic is fp32 for fp32/fp16/bf16 inputs; ``y`` has ``u``'s dtype.

Triton decides at import time whether ``@triton.jit`` compiles for the GPU or runs in its
CPU interpreter: to run the kernel on CPU tensors (slow; meant for tests) export
``TRITON_INTERPRET=1`` before triton is first imported anywhere in the process (note that
``import torch._dynamo`` imports triton). See :func:`interpreter_usable`.
"""

from __future__ import annotations

import importlib
import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor

# Imported by name so that this module imports (and type-checks) without triton installed.
try:
    triton: Any = importlib.import_module("triton")
    tl: Any = importlib.import_module("triton.language")
except ImportError:
    triton = None
    tl = None

_SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

_kernel: Any = None
if triton is not None:

    @triton.jit
    def _multi_order_scan_fwd_kernel(  # type: ignore[no-untyped-def]
        u_ptr,
        delta_ptr,
        a_ptr,
        b_ptr,
        c_ptr,
        d_ptr,
        orders_ptr,
        y_ptr,
        num_orders,
        dim,
        dstate,
        length,
        su_n,
        su_k,
        su_d,
        su_l,
        sdt_n,
        sdt_k,
        sdt_d,
        sdt_l,
        sa_k,
        sa_d,
        sa_s,
        sb_n,
        sb_k,
        sb_s,
        sb_l,
        sc_n,
        sc_k,
        sc_s,
        sc_l,
        sd_k,
        sd_d,
        so_k,
        so_l,
        sy_n,
        sy_k,
        sy_d,
        sy_l,
        BLOCK_D: tl.constexpr,
        DSTATE: tl.constexpr,
    ):
        pid_nk = tl.program_id(0)
        pid_d = tl.program_id(1)
        batch = (pid_nk // num_orders).to(tl.int64)
        order = (pid_nk % num_orders).to(tl.int64)

        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_s = tl.arange(0, DSTATE)
        mask_d = offs_d < dim
        mask_s = offs_s < dstate
        offs_d64 = offs_d.to(tl.int64)

        # Per-(order, channel) parameters, loaded once. exp(x) == exp2(x * log2(e)).
        a_ptrs = a_ptr + order * sa_k + offs_d64[:, None] * sa_d + offs_s[None, :] * sa_s
        a = tl.load(a_ptrs, mask=mask_d[:, None] & mask_s[None, :], other=0.0).to(tl.float32)
        a = a * 1.4426950408889634
        d_skip = tl.load(d_ptr + order * sd_k + offs_d64 * sd_d, mask=mask_d, other=0.0).to(tl.float32)

        u_row = u_ptr + batch * su_n + order * su_k + offs_d64 * su_d
        dt_row = delta_ptr + batch * sdt_n + order * sdt_k + offs_d64 * sdt_d
        b_row = b_ptr + batch * sb_n + order * sb_k + offs_s * sb_s
        c_row = c_ptr + batch * sc_n + order * sc_k + offs_s * sc_s
        y_row = y_ptr + batch * sy_n + order * sy_k + offs_d64 * sy_d
        o_row = orders_ptr + order * so_k

        # Padded state lanes stay exactly 0 (B = C = 0 there); padded channels write nothing.
        h = tl.zeros((BLOCK_D, DSTATE), dtype=tl.float32)
        # The index of the next step is prefetched one iteration ahead, so the dependent
        # gather loads of a step only wait on one memory round trip.
        idx_next = tl.load(o_row).to(tl.int64)
        for t in range(length):
            idx = idx_next
            idx_next = tl.load(o_row + tl.minimum(t + 1, length - 1) * so_l).to(tl.int64)
            u = tl.load(u_row + idx * su_l, mask=mask_d, other=0.0).to(tl.float32)
            dt = tl.load(dt_row + idx * sdt_l, mask=mask_d, other=0.0).to(tl.float32)
            b = tl.load(b_row + idx * sb_l, mask=mask_s, other=0.0).to(tl.float32)
            c = tl.load(c_row + idx * sc_l, mask=mask_s, other=0.0).to(tl.float32)
            h = tl.exp2(dt[:, None] * a) * h + (dt * u)[:, None] * b[None, :]
            y = tl.sum(h * c[None, :], axis=1) + d_skip * u
            tl.store(y_row + idx * sy_l, y.to(y_ptr.dtype.element_ty), mask=mask_d)

    _kernel = _multi_order_scan_fwd_kernel


def available() -> bool:
    """Whether the Triton kernel can run: triton imports and a CUDA GPU or the interpreter is there."""
    return triton is not None and (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1")


def interpreted() -> bool:
    """Whether the kernel was built for Triton's CPU interpreter (``TRITON_INTERPRET=1`` at import)."""
    return _kernel is not None and not isinstance(_kernel, triton.runtime.JITFunction)


def interpreter_usable() -> bool:
    """Whether the interpreter can run the kernel in this process.

    That needs ``TRITON_INTERPRET=1`` when ``triton`` itself was first imported, not just
    when this module was: ``triton.language`` helpers such as ``tl.sum`` are ``@triton.jit``
    functions too. Note that ``import torch._dynamo`` (e.g. via timm) imports triton.
    """
    return interpreted() and not isinstance(tl.sum, triton.runtime.JITFunction)


def multi_order_scan_triton(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor,
    orders: Tensor,
    *,
    block_d: int | None = None,
    num_warps: int | None = None,
) -> Tensor:
    """Fused forward of :func:`~streamguard.kernels.scan.multi_order_scan_ref` (no autograd).

    Shapes: u, delta (N, K, d, L); A (K, d, n); B, C (N, K, n, L); D (K, d); orders (K, L)
    integer, each row a permutation of ``range(L)`` (not checked: that would need a device
    sync; out-of-range indices are out-of-bounds accesses). Returns y (N, K, d, L) in raster
    order with ``u``'s dtype. ``block_d`` (power of 2) and ``num_warps`` override the
    launch heuristics.
    """
    if _kernel is None:
        raise RuntimeError("multi_order_scan_triton needs triton, which could not be imported")
    _check_inputs(u, delta, A, B, C, D, orders)
    if interpreted():
        if not interpreter_usable():
            raise RuntimeError(
                "TRITON_INTERPRET=1 was set after triton was imported, so the Triton interpreter cannot "
                "run; set it before triton is first imported (torch._dynamo imports triton)"
            )
    elif not u.is_cuda:
        raise ValueError(
            f"inputs are on {u.device} but the Triton kernel was compiled for the GPU; "
            "set TRITON_INTERPRET=1 before triton is first imported to run on CPU"
        )

    batch, num_orders, dim, length = u.shape
    dstate = A.shape[-1]
    y = torch.empty((batch, num_orders, dim, length), dtype=u.dtype, device=u.device)
    if y.numel() == 0:
        return y

    dstate_p2 = max(triton.next_power_of_2(dstate), 1)  # n = 0 leaves y = D * u
    if block_d is None:
        block_d = min(triton.next_power_of_2(dim), 128 if interpreted() else 32)
    elif block_d <= 0 or block_d & (block_d - 1):
        raise ValueError(f"block_d must be a positive power of 2, got {block_d}")
    if num_warps is None:
        num_warps = max(1, min(8, block_d * dstate_p2 // 128))

    grid = (batch * num_orders, triton.cdiv(dim, block_d))
    # Launch on u's GPU; CPU tensors (interpreter) need no device context.
    device_ctx: AbstractContextManager[Any] = torch.cuda.device(u.device) if u.is_cuda else nullcontext()
    with device_ctx:
        _kernel[grid](
            u,
            delta,
            A,
            B,
            C,
            D,
            orders,
            y,
            num_orders,
            dim,
            dstate,
            length,
            *u.stride(),
            *delta.stride(),
            *A.stride(),
            *B.stride(),
            *C.stride(),
            *D.stride(),
            *orders.stride(),
            *y.stride(),
            BLOCK_D=block_d,
            DSTATE=dstate_p2,
            num_warps=num_warps,
        )
    return y


def _check_inputs(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, orders: Tensor) -> None:
    """Raise ValueError unless shapes, dtypes and devices match the documented contract."""
    if u.dim() != 4:
        raise ValueError(f"u must be (N, K, d, L), got shape {tuple(u.shape)}")
    batch, num_orders, dim, length = u.shape
    if A.dim() != 3 or A.shape[:2] != (num_orders, dim):
        raise ValueError(f"A must be (K, d, n) = ({num_orders}, {dim}, n), got shape {tuple(A.shape)}")
    dstate = A.shape[2]
    expected = {
        "delta": (delta, (batch, num_orders, dim, length)),
        "B": (B, (batch, num_orders, dstate, length)),
        "C": (C, (batch, num_orders, dstate, length)),
        "D": (D, (num_orders, dim)),
        "orders": (orders, (num_orders, length)),
    }
    for name, (t, shape) in expected.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} given u {tuple(u.shape)} and A {tuple(A.shape)}, got {tuple(t.shape)}")
    for name, t in {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": D}.items():
        if t.dtype not in _SUPPORTED_DTYPES:
            raise ValueError(f"{name} must be float32, float16 or bfloat16, got {t.dtype}")
    if orders.dtype.is_floating_point or orders.dtype.is_complex or orders.dtype == torch.bool:
        raise ValueError(f"orders must be an integer tensor, got {orders.dtype}")
    for name, t in {"delta": delta, "A": A, "B": B, "C": C, "D": D, "orders": orders}.items():
        if t.device != u.device:
            raise ValueError(f"{name} is on {t.device} but u is on {u.device}")
