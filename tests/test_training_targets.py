import cv2
import numpy as np
import pytest

from training.sbi import self_blend
from training.synthetic import synthetic_face
from training.targets import (
    blend_boundary,
    fidelity_target,
    heatmap_size,
    laa_targets,
    quality_score,
    real_laa_targets,
    vulnerable_points,
)


def soft_disk(size: int = 64, radius: int = 18, blur: int = 9, ratio: float = 1.0) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    cv2.circle(mask, (size // 2, size // 2), radius, 1.0, -1)
    return cv2.GaussianBlur(mask, (blur, blur), 0) * ratio


def test_heatmap_size_is_the_stride_8_grid() -> None:
    assert heatmap_size(224) == 28 and heatmap_size(384) == 48


def test_boundary_peaks_on_the_mask_edge_not_inside_or_outside() -> None:
    mask = soft_disk()
    boundary = blend_boundary(mask)
    points = vulnerable_points(boundary)
    assert len(points) > 0
    values = mask[points[:, 0], points[:, 1]]
    assert np.all((values > 0.35) & (values < 0.65))  # the half-blended ring
    assert boundary[32, 32] < 0.05 and boundary[0, 0] == 0.0  # fully inside, fully outside
    assert boundary.max() == pytest.approx(4 * values[0] * (1 - values[0]))


def test_heatmap_maximum_sits_on_a_vulnerable_point_and_consistency_is_one_there() -> None:
    image, landmarks = synthetic_face(224, seed=4)
    for seed in range(3):
        _, mask = self_blend(image, landmarks, np.random.default_rng(seed))
        t = laa_targets(mask, 28, np.random.default_rng(seed))
        assert t.heatmap.shape == t.consistency.shape == (28, 28)
        assert t.heatmap.max() == pytest.approx(1.0)
        peak = np.unravel_index(int(np.argmax(t.heatmap)), t.heatmap.shape)
        assert any((p == peak).all() for p in t.points)
        assert np.all(t.heatmap[t.points[:, 0], t.points[:, 1]] == pytest.approx(1.0))
        assert t.chosen is not None and t.consistency[t.chosen] == pytest.approx(1.0)
        assert t.consistency.min() >= 0.0 and t.consistency.max() <= 1.0 + 1e-6
        assert t.heatmap.min() >= 0.0 and (t.heatmap < 0.01).mean() > 0.3  # peaked, not everywhere


def test_consistency_follows_equation_7() -> None:
    t = laa_targets(soft_disk(224, 60, 31), 28)
    assert t.chosen is not None
    expected = 1 - np.abs(t.boundary[t.chosen] - t.boundary)
    assert np.allclose(t.consistency, expected)


def test_real_faces_get_zero_heatmap_and_all_ones_consistency() -> None:
    for t in (real_laa_targets(28), laa_targets(None, 28), laa_targets(np.zeros((224, 224), np.float32), 28)):
        assert np.all(t.heatmap == 0) and np.all(t.consistency == 1) and t.chosen is None and len(t.points) == 0


def test_fidelity_targets_fall_in_their_bands() -> None:
    face, _ = synthetic_face(224, seed=5)
    images = [
        face,
        cv2.GaussianBlur(face, (15, 15), 0),
        np.zeros_like(face),
        np.full_like(face, 255),
        np.random.default_rng(0).integers(0, 256, face.shape, dtype=np.uint8),
    ]
    for image in images:
        assert 0.0 <= quality_score(image) <= 1.0
        assert 0.6 <= fidelity_target(image, fake=False) <= 1.0
        assert 0.0 <= fidelity_target(image, fake=True) <= 0.4
    assert quality_score(face) > quality_score(images[1])  # blur lowers quality
