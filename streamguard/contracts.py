"""The small objects that travel between the pipeline's stages (see DESIGN.md, "Contracts")."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


def now() -> float:
    """Wall-clock seconds; every timestamp in the pipeline uses this clock."""
    return time.time()


@dataclass(slots=True)
class Frame:
    stream_id: str
    seq: int  # per stream, from 0
    pts: float | None  # seconds of stream time, when the source knows it
    capture_ts: float | None  # wall clock at capture, when the source knows it
    received_ts: float  # wall clock when StreamGuard had the decoded frame
    image: np.ndarray  # H x W x 3 uint8 RGB


@dataclass(slots=True)
class FaceBox:
    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    keypoints: np.ndarray | None = None  # (K, 2) pixels; BlazeFace: right eye, left eye, nose, mouth, right ear, left ear


@dataclass(slots=True)
class FaceCrop:
    stream_id: str
    track_id: int
    seq: int  # the frame's seq
    box: FaceBox
    crop: np.ndarray  # detector-size S x S x 3 uint8 RGB
    received_ts: float
    detected_ts: float  # wall clock when face detection + cropping finished
    pts: float | None = None


class Level(StrEnum):
    CLEAR = "clear"
    SUSPICIOUS = "suspicious"
    ALERT = "alert"

    @property
    def rank(self) -> int:
        """0 for clear, 1 suspicious, 2 alert: levels compare by severity."""
        return list(Level).index(self)


@dataclass(slots=True)
class Verdict:
    """One event shape everywhere: SSE, WebSocket, webhook, data channel, log."""

    stream_id: str
    track_id: int
    level: Level
    score: float  # this frame's fake probability
    smoothed: float  # the track's smoothed probability
    timestamp_ms: int  # wall clock of the verdict
    seq: int
    box: tuple[float, float, float, float]
    latency_ms: dict[str, float] = field(default_factory=dict)  # detect, queue, inference, total (received -> verdict)
    changed: bool = False  # the level differs from the track's previous one

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "track_id": self.track_id,
            "level": self.level.value,
            "score": round(self.score, 4),
            "smoothed": round(self.smoothed, 4),
            "timestamp_ms": self.timestamp_ms,
            "seq": self.seq,
            "box": [round(v, 1) for v in self.box],
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
            "changed": self.changed,
        }
