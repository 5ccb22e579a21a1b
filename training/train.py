"""The training loop: ``python -m training.train --detector mlvp_lite0 --data DIR --out RUN_DIR [options]``.

Defaults follow MLVP-Net's recipe: Adam at 1e-4, learning rate halved every epoch, 20 epochs. ``--data`` is an
extracted folder of real faces (``--layout real``: 50/50 real / self-blended fakes, split by identity into train
and validation) or FaceForensics++ / Celeb-DF extracted from their roots (``--layout ffpp`` / ``celebdf``).

Mixed precision: autocast on CUDA (bf16 where supported, else fp16 with a gradient scaler); ``--bf16`` turns bf16
autocast on for CPUs. It pays only where the CPU has native bf16 (AVX-512 BF16 / AMX); elsewhere PyTorch's bf16
convolutions take a slow path (measured about 10x slower than fp32 on an AVX2-only EPYC) and a warning says so.
Writes into RUN_DIR:

- ``last.pt`` every epoch (model, optimizer, scheduler, scaler, epoch, step, best AUC, RNG states): ``--resume``
  continues from it exactly, because every sample's randomness derives from (seed, epoch, index) and the global
  RNG state is restored;
- ``best.pt`` (model of the best validation AUC), ``log.csv`` (one row per epoch), ``run.json`` (the arguments);
- ``weights.safetensors`` at the end: the best model's state dict, for ``build_detector(variant, weights=path)``
  (give the same ``--set`` overrides when building it).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
import time
from collections.abc import Sequence, Sized
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from streamguard.models import build_detector
from streamguard.models.config import ConfigError, DetectorConfig
from streamguard.models.layers import DetectorModel
from training.common import autocast_context, parse_overrides, predict
from training.datasets import (
    LabeledFaceDataset,
    RealFaceDataset,
    celebdf_frames,
    extracted_frames,
    faceforensics_frames,
    split_by_identity,
    worker_init,
)
from training.losses import DetectorLoss
from training.metrics import frame_and_video_metrics

LOG_FIELDS = (
    "epoch",
    "step",
    "loss",
    "cls",
    "heatmap",
    "consistency",
    "fidelity",
    "val_auc",
    "val_ap",
    "val_video_auc",
    "val_video_ap",
    "lr",
    "images_per_s",
    "seconds",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--detector", required=True, help="variant name (e.g. mlvp_lite0) or config YAML")
    parser.add_argument("--data", required=True, type=Path, help="extracted folder (python -m training.extract)")
    parser.add_argument("--out", required=True, type=Path, help="run folder for checkpoints, log and weights")
    parser.add_argument("--layout", choices=("real", "ffpp", "celebdf"), default="real", help="how to read --data")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--lr-decay", type=float, default=0.5, help="learning-rate factor per epoch (0.5: halved, MLVP-Net)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of identities held out for validation")
    parser.add_argument("--bi-fraction", type=float, default=0.0, help="share of fakes made as blended face swaps (BI)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    parser.add_argument("--max-steps-per-epoch", type=int, default=0, help="cap steps per epoch (0: whole epoch)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2 if torch.cuda.is_available() else 0,
        help="data-loading processes (default: 2 with a GPU, 0 on CPU, where extra processes fight the model for cores)",
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU")
    parser.add_argument("--no-amp", action="store_true", help="no autocast on CUDA")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE", help="detector config overrides, e.g. dropout=0"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def build_datasets(args: argparse.Namespace, config: DetectorConfig) -> tuple[Dataset[dict[str, Any]], Dataset[dict[str, Any]] | None]:
    """Training and validation sets, split by identity (never by frame)."""
    if args.layout == "real":
        train, val, _ = split_by_identity(extracted_frames(args.data), args.val_fraction, 0.0, args.seed)
        train_set = RealFaceDataset(train, config, train=True, bi_fraction=args.bi_fraction, seed=args.seed)
        val_set = RealFaceDataset(val, config, train=False, bi_fraction=args.bi_fraction, seed=args.seed + 1) if val else None
        return train_set, val_set
    frames = faceforensics_frames(args.data) if args.layout == "ffpp" else celebdf_frames(args.data, split="train")
    train, val, _ = split_by_identity(frames, args.val_fraction, 0.0, args.seed)
    return LabeledFaceDataset(train, config, train=True, seed=args.seed), (LabeledFaceDataset(val, config) if val else None)


def autocast_dtype(args: argparse.Namespace, device: torch.device) -> torch.dtype | None:
    if device.type == "cuda" and not args.no_amp:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and args.bf16:
        if not cpu_bf16_fast():
            print(
                "train: warning: this CPU has no native bf16 (AVX-512 BF16 / AMX): oneDNN is bypassed and bf16 convolutions "
                "take PyTorch's slow path (about 10x slower than fp32 on an AVX2-only EPYC); drop --bf16 here",
                file=sys.stderr,
            )
        return torch.bfloat16
    return None


def cpu_bf16_fast() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (without it, bf16 convolutions fall back to a slow loop)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def rng_state() -> dict[str, Any]:
    """Global RNG states: torch's drives dropout; numpy's and Python's are kept for code that may draw from them."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_weights(model: DetectorModel, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(path))


class Trainer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.device = torch.device(args.device)
        torch.manual_seed(args.seed)
        np.random.seed(args.seed % 2**32)
        random.seed(args.seed)
        self.overrides = parse_overrides(args.overrides)
        self.model = build_detector(args.detector, **self.overrides).to(self.device)
        self.config = self.model.config
        self.criterion = DetectorLoss(self.config)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=args.lr_decay)
        self.dtype = autocast_dtype(args, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.train_set, self.val_set = build_datasets(args, self.config)
        self.epoch = 0  # next epoch to run
        self.step = 0
        self.best_auc: float | None = None

    # -- checkpoints -------------------------------------------------------------------------------------------
    def save(self, epoch: int, val_auc: float) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "best_auc": self.best_auc,
            "rng": rng_state(),
            "detector": str(self.args.detector),
            "overrides": self.overrides,
        }
        tmp = self.out / "last.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.out / "last.pt")
        # Without a validation set there is nothing to choose by: the latest model is the best one.
        score = val_auc if not math.isnan(val_auc) else math.inf
        if self.best_auc is None or score >= self.best_auc or not (self.out / "best.pt").is_file():
            self.best_auc = score if self.best_auc is None else max(score, self.best_auc)
            torch.save({"model": self.model.state_dict(), "epoch": epoch, "val_auc": val_auc}, self.out / "best.pt")

    def resume(self) -> None:
        path = self.out / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: nothing to resume from")
        state = torch.load(path, map_location=self.device, weights_only=False)  # our own checkpoint
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.best_auc = state["epoch"] + 1, state["step"], state["best_auc"]
        set_rng_state(state["rng"])

    # -- loop ----------------------------------------------------------------------------------------------------
    def loader(self, dataset: Dataset[dict[str, Any]], epoch: int, shuffle: bool) -> DataLoader[dict[str, Any]]:
        generator = torch.Generator().manual_seed(self.args.seed * 1_000_003 + epoch)
        return DataLoader(
            dataset,
            batch_size=self.args.batch,
            sampler=RandomSampler(cast(Sized, dataset), generator=generator) if shuffle else None,
            drop_last=shuffle and len(cast(Sized, dataset)) >= self.args.batch,
            num_workers=self.args.workers,
            worker_init_fn=worker_init,
            generator=generator,
            pin_memory=self.device.type == "cuda",
        )

    def train_epoch(self, epoch: int) -> dict[str, float]:
        from tqdm import tqdm

        self.model.train()
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        loader = self.loader(self.train_set, epoch, shuffle=True)
        steps = len(loader) if not self.args.max_steps_per_epoch else min(len(loader), self.args.max_steps_per_epoch)
        sums: dict[str, float] = {}
        images, done, start = 0, 0, time.perf_counter()
        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{self.args.epochs}", unit="step", disable=self.args.quiet)
        for batch in loader:
            if done >= steps:
                break
            batch = {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            with autocast_context(self.device, self.dtype):
                outputs = self.model(batch["image"])
            loss, terms = self.criterion(outputs, batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            done += 1
            images += len(batch["image"])
            for name, value in {"loss": float(loss.detach()), **terms}.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.update()
            bar.set_postfix(loss=f"{sums['loss'] / done:.4f}")
        bar.close()
        seconds = time.perf_counter() - start
        return {**{k: v / max(done, 1) for k, v in sums.items()}, "images_per_s": images / max(seconds, 1e-9), "seconds": seconds}

    def validate(self) -> dict[str, float]:
        if self.val_set is None or len(self.val_set) == 0:  # type: ignore[arg-type]
            return {"val_auc": math.nan, "val_ap": math.nan, "val_video_auc": math.nan, "val_video_ap": math.nan}
        videos, labels, probs = predict(
            self.model, self.loader(self.val_set, 0, shuffle=False), self.device, self.dtype, not self.args.quiet
        )
        m = frame_and_video_metrics(videos, labels, probs, self.config.threshold)
        return {
            "val_auc": m["frame"]["auc"],
            "val_ap": m["frame"]["ap"],
            "val_video_auc": m["video"]["auc"],
            "val_video_ap": m["video"]["ap"],
        }

    def log(self, row: dict[str, Any]) -> None:
        path = self.out / "log.csv"
        new = not path.is_file()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def run(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.args.resume:
            self.resume()
        (self.out / "run.json").write_text(
            json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in vars(self.args).items()}, indent=1)
        )
        for epoch in range(self.epoch, self.args.epochs):
            lr = self.optimizer.param_groups[0]["lr"]
            train = self.train_epoch(epoch)
            self.scheduler.step()
            val = self.validate()
            self.save(epoch, val["val_auc"])
            self.log({"epoch": epoch + 1, "step": self.step, **train, **val, "lr": lr})
            if not self.args.quiet:
                print(
                    f"epoch {epoch + 1}: loss {train.get('loss', math.nan):.4f}, "
                    f"val AUC {val['val_auc']:.4f}, {train['images_per_s']:.1f} images/s"
                )
        return self.finish()

    def finish(self) -> Path:
        """``weights.safetensors`` from best.pt (or the current model when no epoch has run)."""
        best = self.out / "best.pt"
        if best.is_file():
            self.model.load_state_dict(torch.load(best, map_location=self.device, weights_only=True)["model"])
        path = self.out / "weights.safetensors"
        save_weights(self.model, path)
        return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        trainer = Trainer(args)
        path = trainer.run()
    except (ConfigError, OSError, ValueError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    print(f"weights: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
