import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score  # type: ignore[import-untyped]

from training.metrics import binary_metrics, equal_error_rate, frame_and_video_metrics, video_level


def test_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    m = binary_metrics(labels, probs, threshold=0.5)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs))
    assert m["ap"] == pytest.approx(average_precision_score(labels, probs))
    assert m["acc"] == pytest.approx(accuracy_score(labels, probs >= 0.5))
    assert m["n"] == 200 and m["fakes"] == labels.sum()


def test_equal_error_rate_known_answers() -> None:
    # One negative above and one positive below the threshold 0.65: FPR = FNR = 1/4.
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.8, 0.9, 0.95])
    assert equal_error_rate(labels, scores) == pytest.approx(0.25)
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(1.0)
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])) == pytest.approx(0.5)


def test_one_class_gives_nan_ranking_metrics() -> None:
    m = binary_metrics([0, 0, 0], [0.1, 0.7, 0.2])
    assert math.isnan(m["auc"]) and math.isnan(m["ap"]) and math.isnan(m["eer"])
    assert m["acc"] == pytest.approx(2 / 3)


def test_video_level_averages_frame_probabilities_per_video() -> None:
    videos = ["a", "b", "a", "c", "b", "a"]
    labels = [0, 1, 0, 1, 1, 0]
    probs = [0.1, 0.9, 0.4, 0.2, 0.5, 0.4]
    ids, y, p = video_level(videos, labels, probs)
    assert ids == ["a", "b", "c"]
    assert y.tolist() == [0, 1, 1]
    assert p == pytest.approx([0.3, 0.7, 0.2])
    both = frame_and_video_metrics(videos, labels, probs)
    assert both["video"]["n"] == 3 and both["frame"]["n"] == 6
    assert both["video"]["auc"] == pytest.approx(roc_auc_score([0, 1, 1], [0.3, 0.7, 0.2]))
    with pytest.raises(ValueError, match="both real and fake"):
        video_level(["a", "a"], [0, 1], [0.1, 0.2])
