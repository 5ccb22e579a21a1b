"""Training targets derived from a sample's blend mask (LAA-Net) and from its image quality (DeepFidelity).

LAA-Net (maps at the model's heatmap resolution, input / 8):

- blending boundary ``B = 4 * M * (1 - M)``: 1 where source and target are mixed half and half, 0 where either
  one is alone;
- vulnerable points: the pixels where ``B`` is largest (the most blended ones). With a full blend (ratio 1) they lie
  on the mask's soft edge; with a partial blend (ratio <= 0.5) the whole inside of the face is equally blended
  and is all vulnerable;
- heatmap: a Gaussian of peak 1 around every vulnerable point (the maximum over them), cut at radius ``r`` with
  ``sigma = r / 3``. ``r`` is CenterNet's object-size radius (``gaussian_radius``, min overlap 0.7) of the blended
  region's bounding box (where ``B`` exceeds 1% of its maximum), so a larger blended face gets wider peaks;
- self-consistency (eq. 7): ``C(q) = 1 - |B(p) - B(q)|`` for one chosen vulnerable point ``p``, so ``C(p) = 1``.

Real faces (and fakes whose mask vanishes at this resolution) get an all-zero heatmap and all-ones consistency.

DeepFidelity: a no-reference quality score ``q`` in [0, 1] = sharpness x exposure, where sharpness is the variance
of the grey image's Laplacian (grey in [0, 1], at the model's input size) squashed by ``v / (v + 0.0015)`` (0.0015
is about the typical value of sharp face crops at 224 px, which then score 0.5) and exposure ``1 - |mean - 0.5|``
(a mild penalty, 0.5 at worst for an all-black or all-white image). Real faces map to ``0.6 + 0.4 q`` in [0.6, 1],
fakes to ``0.4 q`` in [0, 0.4]: a sharper, better exposed fake is more convincing, so it is placed higher in its band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SHARPNESS_SCALE = 0.0015
REAL_BAND = (0.6, 1.0)
FAKE_BAND = (0.0, 0.4)


def heatmap_size(input_size: int) -> int:
    """Side of LAA-Net's heatmap and consistency maps: the stride-8 feature grid."""
    return -(-input_size // 8)


@dataclass(frozen=True)
class LAATargets:
    heatmap: np.ndarray  # (h, w) float32 in [0, 1]
    consistency: np.ndarray  # (h, w) float32 in [0, 1]
    boundary: np.ndarray  # (h, w) float32 B
    points: np.ndarray  # (K, 2) int (row, col) vulnerable points; K = 0 for real faces
    chosen: tuple[int, int] | None  # the vulnerable point p of the consistency map


def blend_boundary(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, np.float32)
    return 4 * mask * (1 - mask)


def vulnerable_points(boundary: np.ndarray, rel_tol: float = 1e-3) -> np.ndarray:
    """(row, col) of the pixels within ``rel_tol`` of the largest B (ties are common: flat blends); empty when B is 0."""
    peak = float(boundary.max(initial=0.0))
    if peak <= 1e-6:
        return np.zeros((0, 2), np.int64)
    return np.argwhere(boundary >= peak * (1 - rel_tol))


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: the largest corner shift keeping IoU >= ``min_overlap`` with a ``height`` x ``width`` box."""
    a1, b1 = 1, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def boundary_radius(boundary: np.ndarray) -> int:
    """Gaussian radius ``r`` (>= 1) from the bounding box of the blended region (B above 1% of its maximum)."""
    rows, cols = np.nonzero(boundary > 0.01 * float(boundary.max(initial=0.0)))
    if rows.size == 0:
        return 1
    return max(1, int(gaussian_radius(float(np.ptp(rows)) + 1, float(np.ptp(cols)) + 1)))


def gaussian_heatmap(shape: tuple[int, int], points: np.ndarray, radius: int) -> np.ndarray:
    """Maximum of Gaussians (peak 1, ``sigma = radius / 3``, cut beyond ``radius``) centred on ``points``."""
    heatmap = np.zeros(shape, np.float32)
    if len(points) == 0:
        return heatmap
    sigma = radius / 3
    span = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(span, span, indexing="ij")
    kernel = np.exp(-(dx**2 + dy**2) / (2 * sigma**2)).astype(np.float32)
    kernel[dx**2 + dy**2 > radius**2] = 0
    h, w = shape
    padded = np.zeros((h + 2 * radius, w + 2 * radius), np.float32)
    for r, c in points:
        window = padded[r : r + 2 * radius + 1, c : c + 2 * radius + 1]
        np.maximum(window, kernel, out=window)
    return padded[radius : radius + h, radius : radius + w].copy()


def laa_targets(mask: np.ndarray | None, size: int, rng: np.random.Generator | None = None) -> LAATargets:
    """LAA-Net targets at ``size`` x ``size`` from a blend mask at image resolution (None or all-zero: a real face).
    ``rng`` picks the consistency map's vulnerable point among ties; without it the first in raster order."""
    if mask is None or not np.any(mask > 0):
        return real_laa_targets(size)
    small = cv2.resize(np.asarray(mask, np.float32), (size, size), interpolation=cv2.INTER_AREA)
    boundary = blend_boundary(np.clip(small, 0, 1))
    points = vulnerable_points(boundary)
    if len(points) == 0:
        return real_laa_targets(size)
    heatmap = gaussian_heatmap((size, size), points, boundary_radius(boundary))
    index = int(rng.integers(len(points))) if rng is not None else 0
    r, c = (int(v) for v in points[index])
    consistency = (1 - np.abs(boundary[r, c] - boundary)).astype(np.float32)
    return LAATargets(heatmap, consistency, boundary, points, (r, c))


def real_laa_targets(size: int) -> LAATargets:
    zeros = np.zeros((size, size), np.float32)
    return LAATargets(zeros, np.ones((size, size), np.float32), zeros.copy(), np.zeros((0, 2), np.int64), None)


def quality_score(image: np.ndarray) -> float:
    """No-reference quality in [0, 1]: squashed Laplacian-variance sharpness times a mild exposure term."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255 if image.ndim == 3 else image.astype(np.float32) / 255
    variance = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    sharpness = variance / (variance + SHARPNESS_SCALE)
    exposure = 1 - abs(float(grey.mean()) - 0.5)
    return float(np.clip(sharpness * exposure, 0.0, 1.0))


def fidelity_target(image: np.ndarray, fake: bool) -> float:
    """DeepFidelity's regression target: quality mapped into [0.6, 1] for real faces and [0, 0.4] for fakes."""
    low, high = FAKE_BAND if fake else REAL_BAND
    return low + (high - low) * quality_score(image)
