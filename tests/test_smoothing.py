import pytest

from streamguard.config import SmoothingSettings
from streamguard.contracts import Level
from streamguard.smoothing import TrackSmoother, TrackSummary


def run(smoother: TrackSmoother, probs: list[float]) -> list[tuple[float, Level, bool]]:
    return [smoother.update(p) for p in probs]


def test_ema_follows_the_formula() -> None:
    smoother = TrackSmoother(SmoothingSettings(alpha=0.5))
    smoothed = [s for s, _, _ in run(smoother, [1.0, 0.0, 0.0])]
    assert smoothed == pytest.approx([1.0, 0.5, 0.25])


def test_median_ignores_a_single_spike() -> None:
    smoother = TrackSmoother(SmoothingSettings(method="median", window=5, min_frames=1))
    results = run(smoother, [0.1, 0.1, 0.99, 0.1, 0.1])
    assert all(level == Level.CLEAR for _, level, _ in results)


def test_levels_rise_and_fall_with_hysteresis() -> None:
    settings = SmoothingSettings(alpha=1.0, suspicious_on=0.5, alert_on=0.8, hysteresis=0.1, min_frames=1)
    smoother = TrackSmoother(settings)
    levels = [level for _, level, _ in run(smoother, [0.2, 0.55, 0.45, 0.85, 0.75, 0.69, 0.45, 0.39])]
    assert levels == [
        Level.CLEAR,
        Level.SUSPICIOUS,  # 0.55 >= 0.5
        Level.SUSPICIOUS,  # 0.45 is within the hysteresis band of 0.5
        Level.ALERT,  # 0.85 >= 0.8
        Level.ALERT,  # 0.75 within the band of 0.8
        Level.SUSPICIOUS,  # 0.69 < 0.8 - 0.1
        Level.SUSPICIOUS,
        Level.CLEAR,  # 0.39 < 0.5 - 0.1
    ]


def test_changed_flags_only_transitions_and_jumps_straight_to_alert() -> None:
    smoother = TrackSmoother(SmoothingSettings(alpha=1.0, min_frames=1))
    changes = [(level, changed) for _, level, changed in run(smoother, [0.1, 0.95, 0.95])]
    assert changes == [(Level.CLEAR, False), (Level.ALERT, True), (Level.ALERT, False)]


def test_min_frames_holds_a_new_track_at_clear() -> None:
    smoother = TrackSmoother(SmoothingSettings(alpha=1.0, min_frames=3))
    levels = [level for _, level, _ in run(smoother, [0.99, 0.99, 0.99])]
    assert levels == [Level.CLEAR, Level.CLEAR, Level.ALERT]


def test_track_summary_mean_top_k_and_highest_level() -> None:
    summary = TrackSummary("s", 1)
    for i, (p, level) in enumerate([(0.1, Level.CLEAR), (0.9, Level.ALERT), (0.5, Level.SUSPICIOUS), (0.3, Level.CLEAR)]):
        summary.add(i / 10, p, p, level)
    assert summary.mean == pytest.approx(0.45)
    assert summary.top_k_mean(2) == pytest.approx(0.7)
    assert summary.highest_level == Level.ALERT
