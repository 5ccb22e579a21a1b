"""Helpers shared by the train and evaluate CLIs: detector config overrides, autocast, batched prediction."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["dropout=0", "input_size=128"]`` -> ``{"dropout": 0, "input_size": 128}`` (values read as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> Any:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


@torch.no_grad()
def predict(
    model: nn.Module, loader: DataLoader[dict[str, Any]], device: torch.device, dtype: torch.dtype | None = None, progress: bool = False
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video ids, labels, fake probabilities) over a loader, in eval mode."""
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    videos: list[str] = []
    labels, probs = [], []
    for batch in tqdm(loader, desc="eval", unit="batch", leave=False, disable=not progress):
        with autocast_context(device, dtype):
            out = model(batch["image"].to(device))
        probs.append(out["prob"].float().cpu().numpy())
        labels.append(batch["label"].numpy())
        videos.extend(batch["video"])
    model.train(was_training)
    return videos, np.concatenate(labels) if labels else np.zeros(0), np.concatenate(probs) if probs else np.zeros(0)
