"""Per-track temporal smoothing and the clear -> suspicious -> alert state machine with hysteresis."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from streamguard.config import SmoothingSettings
from streamguard.contracts import Level

_ORDER = tuple(Level)  # by severity


class TrackSmoother:
    """Smooths one track's frame probabilities (EMA or median) and moves its level with hysteresis:
    up at ``suspicious_on`` / ``alert_on``, down only once the score falls ``hysteresis`` below them."""

    def __init__(self, settings: SmoothingSettings) -> None:
        self.settings = settings
        self.level = Level.CLEAR
        self.frames = 0
        self._ema: float | None = None
        self._window: deque[float] = deque(maxlen=settings.window)

    def update(self, prob: float) -> tuple[float, Level, bool]:
        """Feed one frame's probability; return (smoothed score, level, whether the level changed)."""
        s = self.settings
        self.frames += 1
        if s.method == "ema":
            self._ema = prob if self._ema is None else s.alpha * prob + (1 - s.alpha) * self._ema
            smoothed = self._ema
        else:
            self._window.append(prob)
            smoothed = statistics.median(self._window)
        previous = self.level
        self.level = self._next_level(smoothed)
        return smoothed, self.level, self.level != previous

    def _next_level(self, score: float) -> Level:
        s = self.settings
        if self.frames < s.min_frames:
            return self.level
        raise_at = {Level.SUSPICIOUS: s.suspicious_on, Level.ALERT: s.alert_on}
        current = self.level.rank
        # Raise to the highest level whose threshold the score reaches ...
        for level in (Level.ALERT, Level.SUSPICIOUS):
            if level.rank > current and score >= raise_at[level]:
                return level
        # ... or lower while the score sits below the current level's threshold minus the hysteresis.
        while current > 0 and score < raise_at[_ORDER[current]] - s.hysteresis:
            current -= 1
        return _ORDER[current]


@dataclass
class TrackSummary:
    """A whole track's record, for ``streamguard scan``: mean and top-k mean of its frame probabilities."""

    stream_id: str
    track_id: int
    probs: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)
    highest_level: Level = Level.CLEAR

    def add(self, time_s: float, prob: float, smoothed: float, level: Level) -> None:
        self.times_s.append(time_s)
        self.probs.append(prob)
        self.smoothed.append(smoothed)
        if level.rank > self.highest_level.rank:
            self.highest_level = level

    @property
    def mean(self) -> float:
        return statistics.fmean(self.probs)

    def top_k_mean(self, k: int = 5) -> float:
        return statistics.fmean(sorted(self.probs, reverse=True)[:k])
