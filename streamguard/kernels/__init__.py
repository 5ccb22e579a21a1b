"""Scan kernels behind one dispatch function, so models never pick an implementation."""

from __future__ import annotations

from torch import Tensor

from streamguard.kernels.scan import multi_order_scan_ref


def multi_order_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, orders: Tensor) -> Tensor:
    """Selective scan of K token orderings; see :func:`multi_order_scan_ref` for shapes.

    Uses the fused Triton kernel for CUDA inference and the PyTorch reference elsewhere
    (CPU, ONNX export, and training, which needs gradients).
    """
    if u.is_cuda and not (u.requires_grad or delta.requires_grad):
        from streamguard.kernels import triton_scan

        if triton_scan.available():
            return triton_scan.multi_order_scan_triton(u, delta, A, B, C, D, orders)
    return multi_order_scan_ref(u, delta, A, B, C, D, orders)
