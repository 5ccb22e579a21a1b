"""Self-blended images (SBI, Shiohara & Yamasaki, CVPR 2022) and blended images (BI, as in Face X-ray).

A fake is ``M * source + (1 - M) * target`` with ``M`` a soft face mask. SBI takes source and target from the same
face: one of them is jittered in colour and frequency, the source is shifted and scaled a little, so the fake
carries only generic blending artefacts (boundary, colour and resolution mismatches) and no identity change,
which makes detectors trained on it generalize across manipulation methods. BI takes the source from another
identity, aligned to the target's landmarks. Both return the fake and ``M``: LAA-Net's targets are built from it.

Every random choice comes from the numpy Generator passed in, so a seed fixes the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from training.augment import source_target_jitter

JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE_TOP = 27


@dataclass(frozen=True)
class BlendOptions:
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # SBI's set, full blends most often
    max_shift: tuple[float, float] = (0.03, 0.015)  # source translation, fraction of the side (x, y)
    scale_range: tuple[float, float] = (0.95, 1.05)  # source scale
    elastic_alpha: float = 0.03  # largest elastic displacement of the mask, fraction of the side
    blur_range: tuple[float, float] = (0.02, 0.10)  # mask blur kernel, fraction of the side


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator | None = None) -> np.ndarray:
    """Filled convex hull of the 68 landmarks as float32 {0, 1}. With ``rng``, one of SBI-like hull variants:
    all points, eyebrows raised (takes in part of the forehead), or the hull shrunk toward its centre."""
    points = np.asarray(landmarks, dtype=np.float32).copy()
    variant = int(rng.integers(3)) if rng is not None else 0
    if variant == 1 and rng is not None:  # raise the brows by up to their distance to the nose top
        lift = (points[NOSE_TOP, 1] - points[BROWS, 1].mean()) * rng.uniform(0.3, 1.0)
        points[BROWS, 1] -= lift
    elif variant == 2 and rng is not None:
        centre = points.mean(0)
        points = centre + (points - centre) * rng.uniform(0.85, 0.97)
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask.astype(np.float32)


def elastic(mask: np.ndarray, rng: np.random.Generator, alpha: float) -> np.ndarray:
    """Smooth random displacement of the mask (wavy outline instead of a polygon)."""
    h, w = mask.shape
    sigma = max(h, w) * 0.05
    field = rng.uniform(-1, 1, (2, h, w)).astype(np.float32)
    field = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in field])
    field *= alpha * max(h, w) / max(float(np.abs(field).max()), 1e-6) * rng.uniform(0.3, 1.0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(mask, xs + field[0], ys + field[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def random_affine_matrix(shape: tuple[int, int], rng: np.random.Generator, options: BlendOptions) -> np.ndarray:
    """Small scale about the centre plus a translation (2x3)."""
    h, w = shape
    scale = rng.uniform(*options.scale_range)
    tx = rng.uniform(-options.max_shift[0], options.max_shift[0]) * w
    ty = rng.uniform(-options.max_shift[1], options.max_shift[1]) * h
    cx, cy = (w - 1) / 2, (h - 1) / 2
    return np.array([[scale, 0, (1 - scale) * cx + tx], [0, scale, (1 - scale) * cy + ty]], np.float64)


def deform_mask(mask: np.ndarray, rng: np.random.Generator, options: BlendOptions) -> np.ndarray:
    """Elastic jitter, random erosion or dilation, then a blur of random size, twice with a threshold between
    (as SBI does), so the blend boundary varies from sharp to wide. Float32 in [0, 1]."""
    side = max(mask.shape)
    mask = elastic(mask, rng, options.elastic_alpha)
    k = int(rng.integers(1, max(2, side // 40) + 1)) * 2 + 1
    kernel = np.ones((k, k), np.uint8)
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    for step in range(2):
        k = round(side * rng.uniform(*options.blur_range)) // 2 * 2 + 1
        blurred = cv2.GaussianBlur(mask, (k, k), 0)
        if step == 0:
            core = (blurred >= 1 - 1e-3).astype(np.float32)  # keep the fully covered core only, then blur again
            blurred = core if core.sum() > 0.05 * mask.sum() else blurred
        mask = blurred
    return np.clip(mask, 0, 1).astype(np.float32)


def _warp(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    h, w = shape or image.shape[:2]
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    return np.clip(m * source.astype(np.float32) + (1 - m) * target.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def self_blend(
    image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, options: BlendOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """SBI: (fake HxWx3 uint8, blend mask M HxW float32 in [0, 1]) from one face and its 68 landmarks."""
    options = options or BlendOptions()
    shape = image.shape[:2]
    source, target = image.copy(), image.copy()
    if rng.random() < 0.5:
        source = source_target_jitter(source, rng)
    else:
        target = source_target_jitter(target, rng)
    affine = random_affine_matrix(shape, rng, options)
    source = _warp(source, affine)
    # The mask moves with the source (as in SBI), so the shifted face's own outline lands on the blend boundary.
    mask = cv2.warpAffine(hull_mask(landmarks, shape, rng), affine, shape[::-1], flags=cv2.INTER_LINEAR, borderValue=0)
    mask = deform_mask(mask, rng, options)
    mask = mask * float(rng.choice(options.blend_ratios))
    return _blend(source, target, mask), mask


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` points onto ``dst``
    (Umeyama 1991), as a 2x3 matrix. Closed form, so deterministic (OpenCV's estimator uses RANSAC)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sig) @ sign) / max(s.var(0).sum(), 1e-12))
    return np.hstack([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]])


def match_colours(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab, statistics taken inside the mask: the swapped face takes the target's tone."""
    inside = mask > 0.5
    if inside.sum() < 16:
        return source
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src[inside].mean(0), src[inside].std(0) + 1e-3
    t_mean, t_std = tgt[inside].mean(0), tgt[inside].std(0) + 1e-3
    out = (src - s_mean) / s_std * t_std + t_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def blend_images(
    target: np.ndarray,
    target_landmarks: np.ndarray,
    source: np.ndarray,
    source_landmarks: np.ndarray,
    rng: np.random.Generator,
    options: BlendOptions | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """BI: another identity's face (``source``) aligned onto ``target`` by a landmark similarity transform, colour
    matched, blended inside the target's deformed face hull. Returns (fake, M) like ``self_blend``."""
    options = options or BlendOptions()
    shape = target.shape[:2]
    aligned = _warp(source, similarity_transform(source_landmarks, target_landmarks), shape)
    hard = hull_mask(target_landmarks, shape, rng)
    aligned = match_colours(aligned, target, hard)
    if rng.random() < 0.5:
        aligned = source_target_jitter(aligned, rng)
    mask = deform_mask(hard, rng, options) * float(rng.choice(options.blend_ratios))
    return _blend(aligned, target, mask), mask


def choose_donor(identities: Sequence[str], target_identity: str, rng: np.random.Generator) -> int:
    """Index of a face of another identity (uniformly over faces), for BI. ValueError when there is none."""
    candidates = [i for i, identity in enumerate(identities) if identity != target_identity]
    if not candidates:
        raise ValueError(f"blended images need a second identity; all faces are {target_identity!r}")
    return candidates[int(rng.integers(len(candidates)))]
