"""Selective-scan speed at the sizes MSPM uses: the PyTorch reference vs the fused Triton kernel (CUDA only).

    python benchmarks/scan.py [--json benchmarks/results/scan-<machine>.json]

On a CPU machine only the reference is timed (the Triton kernel needs a GPU; under
TRITON_INTERPRET=1 it is a correctness tool, not a fast path).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from streamguard.kernels.scan import multi_order_scan_ref
from streamguard.models.hss import NUM_ORDERS, scan_orders

# (batch, channels, state, grid side): MSPM of mlvp_lite0 (stride 32), mlvp_b0 / mlvp_b4 at 224 (stride 16), longer grids.
SIZES = [(1, 64, 8, 7), (8, 64, 8, 7), (8, 96, 16, 14), (32, 128, 16, 14), (32, 128, 16, 7), (8, 96, 16, 28)]


def inputs(batch: int, d: int, n: int, side: int, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    length, k = side * side, NUM_ORDERS
    g = torch.Generator().manual_seed(0)
    u = torch.randn(batch, 1, d, length, generator=g).expand(batch, k, d, length)
    delta = torch.nn.functional.softplus(torch.randn(batch, k, d, length, generator=g) - 2)
    A = -torch.rand(k, d, n, generator=g) * 4 - 0.1
    B, C = torch.randn(batch, k, n, length, generator=g), torch.randn(batch, k, n, length, generator=g)
    D = torch.randn(k, d, generator=g)
    tensors = [t.to(device, dtype) for t in (u, delta, A, B, C, D)]
    return (*tensors, scan_orders(side, side, 4).to(device))


def time_ms(fn, *args, runs: int) -> float:  # type: ignore[no-untyped-def]
    sync = torch.cuda.synchronize if args[0].is_cuda else (lambda: None)
    for _ in range(3):
        fn(*args)
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(*args)
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    machine = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    rows = []
    print(f"machine: {machine}")
    print(f"{'batch':>5} {'d':>4} {'n':>3} {'L':>5} {'dtype':>8} {'reference ms':>12} {'triton ms':>10} {'speed-up':>9}")
    for batch, d, n, side in SIZES:
        for dtype in (torch.float32, torch.float16) if device == "cuda" else (torch.float32,):
            x = inputs(batch, d, n, side, device, dtype)
            with torch.inference_mode():
                ref = time_ms(multi_order_scan_ref, *x, runs=args.runs)
                fast = None
                if device == "cuda":
                    from streamguard.kernels.triton_scan import multi_order_scan_triton

                    fast = time_ms(multi_order_scan_triton, *x, runs=args.runs)
            row = {
                "batch": batch,
                "d": d,
                "n": n,
                "L": side * side,
                "dtype": str(dtype).removeprefix("torch."),
                "reference_ms": ref,
                "triton_ms": fast,
            }
            rows.append(row)
            speed = f"{ref / fast:.1f}x" if fast else "-"
            triton = f"{fast:.3f}" if fast else "no GPU"
            print(f"{batch:>5} {d:>4} {n:>3} {side * side:>5} {row['dtype']:>8} {ref:>12.3f} {triton:>10} {speed:>9}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "torch": torch.__version__, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
