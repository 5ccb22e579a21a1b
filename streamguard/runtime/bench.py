"""``streamguard bench``: a detector and its bare backbone under each backend, side by side in one run."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from streamguard.models import build_detector, variant_names
from streamguard.models.backbone import BackboneClassifier
from streamguard.models.layers import DetectorModel
from streamguard.runtime import BACKENDS, BackendUnavailable, Detector, create_engine

CPU_BATCHES = (1, 4, 8)
GPU_BATCHES = (1, 8, 32, 128)


@dataclass
class BenchRow:
    model: str
    backend: str
    device: str
    batch: int
    ms_per_batch: float
    images_per_s: float
    ratio_to_backbone: float | None  # detector images/s over bare-backbone images/s, same backend and run


def time_engine(engine: Detector, batch: int, runs: int) -> float:
    """Median milliseconds of ``engine.run`` on a random uint8 batch, after warm-up."""
    size = engine.info.input_size
    crops = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    for _ in range(3):
        engine.run(crops)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.run(crops)  # returns host arrays, so GPU work is complete when it returns
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def bench(variant: str, backends: list[str], batches: tuple[int, ...], runs: int, log: Callable[[str], None] = print) -> list[BenchRow]:
    detector = build_detector(variant).eval()
    baseline: DetectorModel | None = BackboneClassifier(detector.config).eval() if detector.config.backbone != "ssaaformer" else None
    rows: list[BenchRow] = []
    for backend in backends:
        try:
            engines = {"detector": create_engine(detector, backend)}
            if baseline is not None:
                engines["backbone"] = create_engine(baseline, backend)
        except BackendUnavailable as exc:
            log(f"{backend}: skipped ({exc})")
            continue
        for batch in batches:
            ms = {name: time_engine(engine, batch, runs) for name, engine in engines.items()}
            for name, engine in engines.items():
                ratio = ms["backbone"] / ms["detector"] if name == "detector" and "backbone" in ms else None
                row = BenchRow(engine.info.detector, backend, engine.info.device, batch, ms[name], batch * 1e3 / ms[name], ratio)
                rows.append(row)
                log(format_row(row))
    return rows


HEADER = f"{'model':<22} {'backend':<12} {'device':<7} {'batch':>5} {'ms/batch':>9} {'images/s':>9} {'vs backbone':>11}"


def format_row(r: BenchRow) -> str:
    ratio = f"{r.ratio_to_backbone:.2f}x" if r.ratio_to_backbone is not None else "-"
    return f"{r.model:<22} {r.backend:<12} {r.device:<7} {r.batch:>5} {r.ms_per_batch:>9.2f} {r.images_per_s:>9.1f} {ratio:>11}"


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU, {torch.get_num_threads()} threads"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", default="mlvp_lite0", choices=variant_names(), help="detector variant (default: mlvp_lite0)")
    parser.add_argument(
        "--backend", action="append", choices=BACKENDS, help="backend to run (repeatable; default: all, unavailable ones skipped)"
    )
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable; default: 1 4 8 on CPU, 1 8 32 128 on GPU)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per measurement (default: 20)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")


def run(args: argparse.Namespace) -> int:
    batches = tuple(args.batch or (GPU_BATCHES if torch.cuda.is_available() else CPU_BATCHES))
    if any(b < 1 for b in batches) or args.runs < 1:
        print("streamguard bench: error: batch sizes and --runs must be >= 1", file=sys.stderr)
        return 2
    print(f"machine: {machine()}; ratio = detector images/s / bare backbone images/s, same backend, same run")
    print(HEADER)
    rows = bench(args.detector, args.backend or list(BACKENDS), batches, args.runs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"machine": machine(), "torch": torch.__version__, "rows": [asdict(r) for r in rows]}, indent=2) + "\n"
        )
        print(f"wrote {args.json}")
    return 0
