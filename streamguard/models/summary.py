"""Per-detector size, cost and CPU speed: ``python -m streamguard.models.summary`` or ``streamguard models``."""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from streamguard.models import build_detector, variant_names
from streamguard.models.layers import DetectorModel


@dataclass
class ModelSummary:
    variant: str
    arch: str
    backbone: str
    input_size: int
    params_m: float
    gflops: float  # a multiply-add counts as 2 FLOPs; element-wise ops (the scan's recurrence) are not counted
    cpu_ms: float | None  # median latency at batch 1, fused fp32 eager on CPU


def count_gflops(model: DetectorModel) -> float:
    size = model.config.input_size
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 1e9


@torch.inference_mode()
def cpu_latency_ms(model: DetectorModel, runs: int) -> float:
    size = model.config.input_size
    x = torch.randn(1, 3, size, size)
    for _ in range(2):  # warm-up: allocator and oneDNN primitive caches
        model(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def summarize(variant: str, runs: int = 10) -> ModelSummary:
    model = build_detector(variant).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    model.fuse()
    config = model.config
    return ModelSummary(
        variant=variant,
        arch=config.arch,
        backbone=config.backbone,
        input_size=config.input_size,
        params_m=params,
        gflops=count_gflops(model),
        cpu_ms=cpu_latency_ms(model, runs) if runs > 0 else None,
    )


HEADER = f"{'detector':<16} {'arch':<13} {'backbone':<22} {'input':>5} {'params (M)':>10} {'GFLOPs':>7} {'CPU ms (b=1)':>12}"


def format_row(s: ModelSummary) -> str:
    latency = f"{s.cpu_ms:.1f}" if s.cpu_ms is not None else "-"
    return f"{s.variant:<16} {s.arch:<13} {s.backbone:<22} {s.input_size:>5} {s.params_m:>10.2f} {s.gflops:>7.2f} {latency:>12}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detector", action="append", choices=variant_names(), help="summarize only this detector (repeatable; default: all)"
    )
    parser.add_argument("--runs", type=int, default=10, help="timed runs per detector for the CPU latency; 0 skips timing (default: 10)")


def run(args: argparse.Namespace) -> int:
    print(HEADER)
    for variant in args.detector or variant_names():
        print(format_row(summarize(variant, args.runs)), flush=True)
    print(f"GFLOPs count a multiply-add as 2 FLOPs; CPU ms: fused fp32 PyTorch eager, {torch.get_num_threads()} threads, median.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamguard.models.summary", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
