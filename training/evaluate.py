"""Evaluation: ``python -m training.evaluate --detector NAME --weights W --data DIR [--json OUT] [--roc OUT.png]``.

The default held-out set is built from an extracted folder of real faces, deterministically (fixed seed): every
face as itself, as a self-blended fake (SBI) and, when the folder holds two identities or more, as a blended face
swap (BI) with another identity's face. ``--layout ffpp`` / ``celebdf`` evaluate dataset labels instead. Prints
ACC, AUC, AP and EER at frame and video level (video = mean frame probability).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from streamguard.models import build_detector
from streamguard.models.config import ConfigError, DetectorConfig
from streamguard.models.weights import WeightsError
from training.common import parse_overrides, predict
from training.datasets import (
    FaceFrame,
    LabeledFaceDataset,
    RealFaceDataset,
    celebdf_frames,
    extracted_frames,
    faceforensics_frames,
    worker_init,
)
from training.metrics import frame_and_video_metrics

EVAL_SEED = 20240601


class _FakesOnly(Dataset[dict[str, Any]]):
    """The odd (fake) half of a RealFaceDataset, its video ids tagged with the kind of fake."""

    def __init__(self, base: RealFaceDataset, tag: str) -> None:
        self.base, self.tag = base, tag

    def __len__(self) -> int:
        return len(self.base.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.base[2 * index + 1]
        sample["video"] = sample["video"].replace("#fake", f"#{self.tag}")
        return sample


class _RealsOnly(_FakesOnly):
    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.base[2 * index]


def build_eval_set(
    source: str | Path | Sequence[FaceFrame], config: DetectorConfig, seed: int = EVAL_SEED, bi: bool = True
) -> Dataset[dict[str, Any]]:
    """Reals + SBI fakes (+ BI face swaps when there are two identities) from an extracted folder (or its frames):
    the same samples for the same folder, config and seed. Fakes get video ids ``<video>#sbi`` / ``<video>#bi``."""
    frames = extracted_frames(source) if isinstance(source, str | Path) else source
    sbi = RealFaceDataset(frames, config, train=False, bi_fraction=0.0, seed=seed)
    parts: list[Dataset[dict[str, Any]]] = [_RealsOnly(sbi, "real"), _FakesOnly(sbi, "sbi")]
    if bi and sbi.can_bi:
        parts.append(_FakesOnly(RealFaceDataset(frames, config, train=False, bi_fraction=1.0, seed=seed + 1), "bi"))
    return ConcatDataset(parts)


def layout_dataset(layout: str, data: Path, config: DetectorConfig, seed: int = EVAL_SEED) -> Dataset[dict[str, Any]]:
    if layout == "real":
        return build_eval_set(data, config, seed)
    if layout == "ffpp":
        return LabeledFaceDataset(faceforensics_frames(data), config)
    if layout == "celebdf":
        return LabeledFaceDataset(celebdf_frames(data, split="test"), config)
    raise ValueError(f"unknown layout {layout!r}")


def save_roc(path: Path, labels: np.ndarray, probs: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve  # type: ignore[import-untyped]

    fpr, tpr, _ = roc_curve(labels, probs)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(labels, probs):.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(results: dict[str, dict[str, float]]) -> str:
    cols = ("n", "fakes", "acc", "auc", "ap", "eer")
    lines = [f"{'level':<6}" + "".join(f"{c:>9}" for c in cols)]
    for level, row in results.items():
        cells = [f"{int(row[c]):>9d}" if c in ("n", "fakes") else ("      nan" if math.isnan(row[c]) else f"{row[c]:>9.4f}") for c in cols]
        lines.append(f"{level:<6}" + "".join(cells))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__)
    parser.add_argument("--detector", required=True, help="variant name (e.g. mlvp_lite0) or config YAML")
    parser.add_argument("--weights", required=True, type=Path, help=".safetensors / .pt weights of the whole detector")
    parser.add_argument("--data", required=True, type=Path, help="an extracted folder (python -m training.extract)")
    parser.add_argument(
        "--layout", choices=("real", "ffpp", "celebdf"), default="real", help="how to read --data (default: real faces + SBI/BI)"
    )
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides used in training")
    parser.add_argument("--seed", type=int, default=EVAL_SEED, help="seed of the synthetic fakes")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="write the metrics here")
    parser.add_argument("--roc", type=Path, help="write a frame-level ROC plot (PNG) here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = build_detector(args.detector, **parse_overrides(args.overrides), weights=str(args.weights.resolve()))
        config = model.config
        dataset = layout_dataset(args.layout, args.data, config, args.seed)
    except (ConfigError, WeightsError, OSError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    device = torch.device(args.device)
    model.to(device)
    loader = DataLoader(dataset, batch_size=args.batch, num_workers=args.workers, worker_init_fn=worker_init)
    dtype = torch.float16 if device.type == "cuda" else None
    videos, labels, probs = predict(model, loader, device, dtype, progress=True)
    results = frame_and_video_metrics(videos, labels, probs, config.threshold)
    print(f"{config.name} on {args.data} ({args.layout}), threshold {config.threshold}")
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        clean = {level: {k: None if math.isnan(v) else v for k, v in row.items()} for level, row in results.items()}
        payload = {"detector": config.name, "weights": str(args.weights), "data": str(args.data), "layout": args.layout, **clean}
        args.json.write_text(json.dumps(payload, indent=1))
    if args.roc and 0 < labels.sum() < len(labels):
        save_roc(args.roc, labels, probs, f"{config.name} (frame level)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
