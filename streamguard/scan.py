"""``streamguard scan VIDEO``: score every face track of a video file and say what it thinks of each."""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from streamguard.config import SmoothingSettings
from streamguard.contracts import FaceCrop
from streamguard.faces import BlazeFaceDetector, FaceStage
from streamguard.ingest.file import probe, read_frames
from streamguard.runtime import Detector
from streamguard.smoothing import TrackSmoother, TrackSummary

TOP_K = 5
MIN_TRACK_FRAMES = 3  # shorter tracks are detector noise (a face seen once), not faces to judge


@dataclass
class ScanResult:
    video: Path
    fps: float
    frames_scanned: int
    detector: str
    tracks: list[TrackSummary]

    def summary(self) -> dict:
        probs = [p for t in self.tracks for p in t.probs]
        if not probs:
            return {"faces": False}
        verdict = max((t.highest_level for t in self.tracks), key=lambda level: level.rank)
        top = sorted(probs, reverse=True)[:TOP_K]
        return {"faces": True, "mean": statistics.fmean(probs), "top_k_mean": statistics.fmean(top), "verdict": verdict.value}

    def to_dict(self) -> dict:
        return {
            "video": str(self.video),
            "fps": self.fps,
            "frames_scanned": self.frames_scanned,
            "detector": self.detector,
            "summary": self.summary(),
            "tracks": [
                {
                    "track_id": t.track_id,
                    "frames": len(t.probs),
                    "start_s": t.times_s[0],
                    "end_s": t.times_s[-1],
                    "mean": t.mean,
                    "top_k_mean": t.top_k_mean(TOP_K),
                    "verdict": t.highest_level.value,
                    "timeline": [
                        {"t": round(a, 3), "prob": round(b, 4), "smoothed": round(c, 4)}
                        for a, b, c in zip(t.times_s, t.probs, t.smoothed, strict=True)
                    ],
                }
                for t in self.tracks
            ],
        }


def scan_video(
    video: Path, engine: Detector, smoothing: SmoothingSettings, fps: float, batch: int = 8, progress: bool = True
) -> ScanResult:
    """Decode at most ``fps`` frames per second, detect and track faces, score crops in batches, smooth per track."""
    info = probe(video)  # raises a one-line error for missing or corrupt files
    expected = int(info.duration_s * min(fps, info.fps)) if info.duration_s else None
    smoothers: dict[int, TrackSmoother] = {}
    summaries: dict[int, TrackSummary] = {}
    pending: list[FaceCrop] = []

    def flush() -> None:
        if not pending:
            return
        probs = engine.run(np.stack([c.crop for c in pending])).prob.tolist()
        for crop, prob in zip(pending, probs, strict=True):
            smoother = smoothers.setdefault(crop.track_id, TrackSmoother(smoothing))
            smoothed, level, _ = smoother.update(prob)
            summary = summaries.setdefault(crop.track_id, TrackSummary(crop.stream_id, crop.track_id))
            summary.add(crop.pts or 0.0, prob, smoothed, level)
        pending.clear()

    frames = 0
    with BlazeFaceDetector() as detector:
        stage = FaceStage(engine.info.input_size, detector)
        bar = tqdm(total=expected, unit="frame", desc=video.name, disable=not progress, file=sys.stderr, leave=False)
        for frame in read_frames(video, stream_id=video.name, max_fps=fps):
            frames += 1
            bar.update()
            pending.extend(stage.process(frame))
            if len(pending) >= batch:
                flush()
        flush()
        bar.close()
    tracks = [summaries[k] for k in sorted(summaries) if len(summaries[k].probs) >= MIN_TRACK_FRAMES]
    return ScanResult(video, min(fps, info.fps), frames, engine.info.detector, tracks)


def format_report(result: ScanResult) -> str:
    if not result.tracks:
        return f"{result.video.name}: no face found ({result.frames_scanned} frames scanned at {result.fps:g} fps)"
    lines = [
        f"{result.video.name}: {result.frames_scanned} frames scanned at {result.fps:g} fps, "
        f"{len(result.tracks)} face track{'s' if len(result.tracks) != 1 else ''} ({result.detector})",
        f"{'track':>5} {'frames':>6} {'seconds':>13} {'mean':>6} {'top-5':>6}  verdict",
    ]
    for t in result.tracks:
        span = f"{t.times_s[0]:.1f}-{t.times_s[-1]:.1f}"
        lines.append(f"{t.track_id:>5} {len(t.probs):>6} {span:>13} {t.mean:>6.3f} {t.top_k_mean(TOP_K):>6.3f}  {t.highest_level.value}")
    s = result.summary()
    lines.append(f"video: mean {s['mean']:.3f}, top-5 {s['top_k_mean']:.3f} -> {s['verdict']}")
    return "\n".join(lines)


def write_json(result: ScanResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def write_plot(result: ScanResult, path: Path, smoothing: SmoothingSettings) -> None:
    """A timeline of each track's frame scores (dots) and smoothed score (line) against the alert thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.8), dpi=110)
    for t in result.tracks:
        (line,) = ax.plot(t.times_s, t.smoothed, lw=2, label=f"track {t.track_id} (smoothed)")
        ax.scatter(t.times_s, t.probs, s=8, alpha=0.35, color=line.get_color())
    ax.axhline(smoothing.suspicious_on, color="orange", ls="--", lw=1, label="suspicious")
    ax.axhline(smoothing.alert_on, color="red", ls="--", lw=1, label="alert")
    ax.set(ylim=(0, 1), xlabel="video time (s)", ylabel="P(synthetic)", title=f"{result.video.name} - {result.detector}")
    if not result.tracks:
        ax.text(0.5, 0.5, "no face found", ha="center", va="center", transform=ax.transAxes)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
