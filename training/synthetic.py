"""Drawn faces with 68 dlib-ordered landmarks: smoke runs and tests of the training code without face data or dlib.

The drawing is crude (an ellipse with eyes, brows, nose and mouth on a textured background) but has what the
pipeline uses: a face region, landmarks in dlib's 68-point order, and texture so sharpness is not zero.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _ellipse_points(cx: float, cy: float, a: float, b: float, start: float, stop: float, n: int) -> np.ndarray:
    t = np.linspace(start, stop, n)
    return np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], 1)


def synthetic_landmarks(size: int = 256) -> np.ndarray:
    """68 x 2 float32 points of the drawn face, in dlib's order (jaw, brows, nose, eyes, mouth)."""
    s = size
    cx, cy, a, b = s / 2, s / 2, 0.3 * s, 0.38 * s
    jaw = _ellipse_points(cx, cy, a, b, math.pi, 0, 17)  # image-left (subject's right) at eye height, round the chin
    eye_y, eye_dx = cy - 0.08 * s, 0.12 * s
    brows = np.concatenate(
        [_ellipse_points(cx + d, eye_y - 0.03 * s, 0.06 * s, 0.04 * s, math.pi, 2 * math.pi, 5) for d in (-eye_dx, eye_dx)]
    )
    bridge = np.stack([np.full(4, cx), np.linspace(eye_y, cy + 0.06 * s, 4)], 1)
    nostrils = np.stack([np.linspace(cx - 0.05 * s, cx + 0.05 * s, 5), np.full(5, cy + 0.09 * s)], 1)
    eyes = np.concatenate([_ellipse_points(cx + d, eye_y, 0.05 * s, 0.022 * s, math.pi, -math.pi, 7)[:6] for d in (-eye_dx, eye_dx)])
    mouth_y = cy + 0.2 * s
    outer = _ellipse_points(cx, mouth_y, 0.1 * s, 0.045 * s, math.pi, -math.pi, 13)[:12]
    inner = _ellipse_points(cx, mouth_y, 0.07 * s, 0.02 * s, math.pi, -math.pi, 9)[:8]
    points = np.concatenate([jaw, brows, bridge, nostrils, eyes, outer, inner]).astype(np.float32)
    assert points.shape == (68, 2)
    return points


def synthetic_face(size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8 RGB face, 68 x 2 landmarks); the seed varies skin tone, background and texture."""
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 200, 3)
    image = np.clip(background + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    points = synthetic_landmarks(size)
    skin = tuple(int(v) for v in rng.integers(120, 230, 3))
    s = size
    cv2.ellipse(image, (s // 2, s // 2), (int(0.3 * s), int(0.38 * s)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    cv2.ellipse(image, (s // 2, s // 2 - int(0.38 * s)), (int(0.3 * s), int(0.12 * s)), 0, 180, 360, (40, 30, 20), -1)  # hair
    for group, colour in ((slice(36, 42), (30, 30, 30)), (slice(42, 48), (30, 30, 30)), (slice(48, 60), (150, 40, 50))):
        cv2.fillPoly(image, [np.round(points[group]).astype(np.int32)], colour, cv2.LINE_AA)
    for group in (slice(17, 22), slice(22, 27), slice(27, 31), slice(31, 36)):
        cv2.polylines(image, [np.round(points[group]).astype(np.int32)], False, (60, 40, 30), max(1, s // 100), cv2.LINE_AA)
    texture = rng.normal(0, 6, (size, size, 1))
    return np.clip(image + texture, 0, 255).astype(np.uint8), points
