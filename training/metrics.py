"""Detection metrics (label 1 = fake, score = fake probability): ACC at the detector's threshold, ROC AUC,
average precision and equal error rate, at frame level and at video level (mean frame probability per video,
as LAA-Net reports)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score, roc_curve  # type: ignore[import-untyped]


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The rate where false positives and false negatives are equal, interpolated linearly along the ROC curve."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    diff = fnr - fpr  # falls from 1 to -1 along the curve
    i = int(np.argmax(diff <= 0))
    if i == 0:
        return float(fpr[0])
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def binary_metrics(labels: Sequence[float] | np.ndarray, probs: Sequence[float] | np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """n, fakes, acc, auc, ap, eer; the ranking metrics are NaN when only one class is present."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} must be matching 1-D arrays")
    result = {"n": float(len(y)), "fakes": float(y.sum()), "acc": float(accuracy_score(y, p >= threshold)) if len(y) else math.nan}
    both = 0 < y.sum() < len(y)
    result["auc"] = float(roc_auc_score(y, p)) if both else math.nan
    result["ap"] = float(average_precision_score(y, p)) if both else math.nan
    result["eer"] = equal_error_rate(y, p) if both else math.nan
    return result


def video_level(
    videos: Sequence[str], labels: Sequence[float] | np.ndarray, probs: Sequence[float] | np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video ids in first-seen order, their labels, their mean frame probabilities). A video with frames of both
    labels is an error: it would mean real and fake frames were given the same video id."""
    order: dict[str, list[int]] = {}
    for i, video in enumerate(videos):
        order.setdefault(video, []).append(i)
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    ids, out_y, out_p = [], [], []
    for video, rows in order.items():
        if len(set(y[rows].tolist())) != 1:
            raise ValueError(f"video {video!r} has frames labelled both real and fake")
        ids.append(video)
        out_y.append(int(y[rows[0]]))
        out_p.append(float(p[rows].mean()))
    return ids, np.array(out_y, np.int64), np.array(out_p, np.float64)


def frame_and_video_metrics(
    videos: Sequence[str], labels: Sequence[float] | np.ndarray, probs: Sequence[float] | np.ndarray, threshold: float = 0.5
) -> dict[str, dict[str, float]]:
    _, vy, vp = video_level(videos, labels, probs)
    return {"frame": binary_metrics(labels, probs, threshold), "video": binary_metrics(vy, vp, threshold)}
