"""The fused Triton multi-order scan must match the PyTorch reference.

Without a CUDA GPU the kernel runs in Triton's CPU interpreter; ``tests/conftest.py``
sets ``TRITON_INTERPRET=1`` before anything imports triton. With a GPU the tests run the
compiled kernel on CUDA.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

pytest.importorskip("triton", reason="triton is not installed")

from streamguard.kernels import triton_scan
from streamguard.kernels.scan import multi_order_scan_ref

# The interpreter runs CPU tensors; a compiled kernel needs CUDA ones.
DEVICE = "cpu" if triton_scan.interpreted() else "cuda"
pytestmark = pytest.mark.skipif(
    not (triton_scan.interpreter_usable() if triton_scan.interpreted() else torch.cuda.is_available()),
    reason="no CUDA GPU, and triton was imported before TRITON_INTERPRET=1 was set",
)

Inputs = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def make_inputs(batch: int, num_orders: int, dim: int, dstate: int, length: int, *, seed: int = 0, device: str = DEVICE) -> Inputs:
    """Moderate random inputs (A < 0, delta = softplus) and K random permutation orders."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, num_orders, dim, length, generator=g)
    delta = F.softplus(torch.randn(batch, num_orders, dim, length, generator=g))
    a = -torch.rand(num_orders, dim, dstate, generator=g) - 0.1
    b = torch.randn(batch, num_orders, dstate, length, generator=g)
    c = torch.randn(batch, num_orders, dstate, length, generator=g)
    d = torch.randn(num_orders, dim, generator=g)
    orders = torch.stack([torch.randperm(length, generator=g) for _ in range(num_orders)])
    return u.to(device), delta.to(device), a.to(device), b.to(device), c.to(device), d.to(device), orders.to(device)


def cast(inputs: Inputs, dtype: torch.dtype) -> Inputs:
    """Cast the float inputs (not the orders) to ``dtype``."""
    u, delta, a, b, c, d, orders = inputs
    return u.to(dtype), delta.to(dtype), a.to(dtype), b.to(dtype), c.to(dtype), d.to(dtype), orders


@pytest.mark.parametrize(("length", "dim", "dstate"), [(49, 16, 16), (196, 8, 16), (64, 8, 4)])
def test_triton_scan_matches_reference(length: int, dim: int, dstate: int) -> None:
    inputs = make_inputs(2, 5, dim, dstate, length)
    y = triton_scan.multi_order_scan_triton(*inputs)
    assert y.shape == (2, 5, dim, length)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, multi_order_scan_ref(*inputs), rtol=1e-3, atol=1e-3)


def test_triton_scan_masked_channel_blocks_and_state() -> None:
    # d = 12 in blocks of 8 (second block half masked), n = 5 padded to DSTATE = 8.
    inputs = make_inputs(2, 5, 12, 5, 30, seed=1)
    y = triton_scan.multi_order_scan_triton(*inputs, block_d=8)
    torch.testing.assert_close(y, multi_order_scan_ref(*inputs), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_triton_scan_half_precision(dtype: torch.dtype) -> None:
    # The kernel accumulates in fp32 and rounds only its output, so compare with the fp32
    # reference run on the same (already rounded) inputs.
    inputs = cast(make_inputs(2, 5, 16, 16, 49, seed=2), dtype)
    y = triton_scan.multi_order_scan_triton(*inputs)
    assert y.dtype == dtype
    ref = multi_order_scan_ref(*cast(inputs, torch.float32))
    torch.testing.assert_close(y.float(), ref, rtol=1e-2, atol=1e-2)


def test_triton_scan_non_contiguous_inputs() -> None:
    batch, num_orders, dim, dstate, length = 2, 5, 8, 4, 36
    u, delta, a, b, c, d, orders = make_inputs(batch, num_orders, dim, dstate, length, seed=3)
    u = u[:, :1].expand(batch, num_orders, dim, length)  # the same tokens for every order
    delta = delta.transpose(2, 3).contiguous().transpose(2, 3)  # (N, K, d, L) with L-stride d
    b = b[:1].expand(batch, num_orders, dstate, length)  # stride 0 over the batch
    orders = orders.t().contiguous().t()  # column-major orders
    assert not (u.is_contiguous() or delta.is_contiguous() or b.is_contiguous() or orders.is_contiguous())
    inputs = (u, delta, a, b, c, d, orders)
    y = triton_scan.multi_order_scan_triton(*inputs)
    assert y.is_contiguous()
    torch.testing.assert_close(y, multi_order_scan_ref(*inputs), rtol=1e-3, atol=1e-3)


def test_triton_scan_int32_orders() -> None:
    inputs = make_inputs(1, 2, 4, 4, 20, seed=4)
    y = triton_scan.multi_order_scan_triton(*inputs[:-1], inputs[-1].int())
    torch.testing.assert_close(y, multi_order_scan_ref(*inputs), rtol=1e-3, atol=1e-3)


def test_triton_scan_rejects_bad_shapes() -> None:
    u, delta, a, b, c, d, orders = make_inputs(1, 2, 4, 4, 8)
    with pytest.raises(ValueError, match=r"u must be \(N, K, d, L\)"):
        triton_scan.multi_order_scan_triton(u[0], delta, a, b, c, d, orders)
    with pytest.raises(ValueError, match="A must be"):
        triton_scan.multi_order_scan_triton(u, delta, a[:1], b, c, d, orders)
    with pytest.raises(ValueError, match="B must have shape"):
        triton_scan.multi_order_scan_triton(u, delta, a, b[..., :-1], c, d, orders)
    with pytest.raises(ValueError, match="orders must have shape"):
        triton_scan.multi_order_scan_triton(u, delta, a, b, c, d, orders[:1])
    with pytest.raises(ValueError, match="orders must be an integer tensor"):
        triton_scan.multi_order_scan_triton(u, delta, a, b, c, d, orders.float())
    with pytest.raises(ValueError, match="u must be float32, float16 or bfloat16"):
        triton_scan.multi_order_scan_triton(u.double(), delta, a, b, c, d, orders)
    with pytest.raises(ValueError, match="block_d must be a positive power of 2"):
        triton_scan.multi_order_scan_triton(u, delta, a, b, c, d, orders, block_d=6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-3), (torch.float16, 1e-2)])
@pytest.mark.parametrize("length", [49, 196, 784])
def test_triton_scan_cuda(length: int, dtype: torch.dtype, tol: float) -> None:
    if triton_scan.interpreted():
        pytest.skip("TRITON_INTERPRET=1 is set: the compiled kernel is not in use")
    inputs = cast(make_inputs(2, 5, 48, 16, length, seed=5, device="cuda"), dtype)
    y = triton_scan.multi_order_scan_triton(*inputs)
    assert y.dtype == dtype
    ref = multi_order_scan_ref(*cast(inputs, torch.float32))
    torch.testing.assert_close(y.float(), ref, rtol=tol, atol=tol)
