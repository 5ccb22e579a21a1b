import pytest
import torch

from streamguard.kernels import multi_order_scan
from streamguard.kernels.scan import selective_scan_loop, selective_scan_ref
from streamguard.models.hss import NUM_ORDERS, scan_orders


def random_scan_inputs(n: int, d: int, state: int, length: int) -> tuple[torch.Tensor, ...]:
    u = torch.randn(n, d, length)
    delta = torch.nn.functional.softplus(torch.randn(n, d, length))
    A = -torch.rand(d, state) - 0.1
    B = torch.randn(n, state, length)
    C = torch.randn(n, state, length)
    D = torch.randn(d)
    return u, delta, A, B, C, D


@pytest.mark.parametrize("length", [1, 2, 7, 49, 196])
def test_reference_scan_matches_naive_loop(length: int) -> None:
    inputs = random_scan_inputs(2, 8, 16, length)
    assert torch.allclose(selective_scan_ref(*inputs), selective_scan_loop(*inputs), atol=1e-5, rtol=1e-5)


def test_reference_scan_gradients_match_naive_loop() -> None:
    inputs = [t.double().requires_grad_() for t in random_scan_inputs(1, 4, 8, 13)]
    grads_ref = torch.autograd.grad(selective_scan_ref(*inputs).square().sum(), inputs)
    grads_loop = torch.autograd.grad(selective_scan_loop(*inputs).square().sum(), inputs)
    for ref, loop in zip(grads_ref, grads_loop, strict=True):
        assert torch.allclose(ref, loop, atol=1e-9)


@pytest.mark.parametrize("h, w, patch", [(7, 7, 4), (14, 14, 4), (12, 9, 5), (1, 5, 2)])
def test_scan_orders_are_permutations_with_exact_inverses(h: int, w: int, patch: int) -> None:
    orders = scan_orders(h, w, patch)
    assert orders.shape == (NUM_ORDERS, h * w)
    tokens = torch.randn(3, h * w)
    for order in orders:
        assert torch.equal(order.sort().values, torch.arange(h * w))
        inverse = torch.argsort(order)
        assert torch.equal(tokens[:, order][:, inverse], tokens)


def test_scan_orders_are_distinct() -> None:
    orders = scan_orders(8, 8, 4)
    assert len({tuple(o.tolist()) for o in orders}) == NUM_ORDERS


def test_zigzag_snakes_through_rows() -> None:
    assert scan_orders(2, 3, 2)[0].tolist() == [0, 1, 2, 5, 4, 3]


def test_multi_order_scan_equals_scanning_each_permuted_sequence() -> None:
    n, k, d, state, h, w = 2, NUM_ORDERS, 6, 4, 5, 5
    length = h * w
    orders = scan_orders(h, w, 2)
    u = torch.randn(n, d, length).unsqueeze(1).expand(n, k, d, length)
    delta = torch.nn.functional.softplus(torch.randn(n, k, d, length))
    A, D = -torch.rand(k, d, state) - 0.1, torch.randn(k, d)
    B, C = torch.randn(n, k, state, length), torch.randn(n, k, state, length)
    y = multi_order_scan(u, delta, A, B, C, D, orders)
    for j, order in enumerate(orders):
        expected = selective_scan_loop(u[:, j][..., order], delta[:, j][..., order], A[j], B[:, j][..., order], C[:, j][..., order], D[j])
        assert torch.allclose(y[:, j][..., order], expected, atol=1e-5)
