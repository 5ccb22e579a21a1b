"""Image augmentations on uint8 RGB arrays, every random choice drawn from a numpy Generator (so a seed fixes them).

Two uses: the colour/frequency jitter that makes an SBI source differ from its target (the statistical
inconsistency the detector must learn), and the ordinary crop/flip/colour/JPEG augmentation of training samples.
"""

from __future__ import annotations

import cv2
import numpy as np


def _clip(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


def hsv_jitter(image: np.ndarray, rng: np.random.Generator, hue: float = 0.3, sat: float = 0.3, val: float = 0.3) -> np.ndarray:
    """Shift hue (fraction of a half turn) and scale saturation and value, each by up to the given amounts."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue) * 18) % 180  # OpenCV hue spans 0..180
    hsv[..., 1] *= 1 + rng.uniform(-sat, sat)
    hsv[..., 2] *= 1 + rng.uniform(-val, val)
    return cv2.cvtColor(_clip(hsv), cv2.COLOR_HSV2RGB)


def rgb_shift(image: np.ndarray, rng: np.random.Generator, limit: float = 20.0) -> np.ndarray:
    return _clip(image.astype(np.float32) + rng.uniform(-limit, limit, 3).astype(np.float32))


def brightness_contrast(image: np.ndarray, rng: np.random.Generator, brightness: float = 0.1, contrast: float = 0.1) -> np.ndarray:
    alpha = 1 + rng.uniform(-contrast, contrast)
    beta = rng.uniform(-brightness, brightness) * 255
    return _clip(image.astype(np.float32) * alpha + beta)


def gaussian_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.choice([3, 5]))
    return cv2.GaussianBlur(image, (k, k), 0)


def sharpen(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unsharp mask of random strength."""
    amount = rng.uniform(0.2, 0.8)
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0).astype(np.float32)
    return _clip(image.astype(np.float32) * (1 + amount) - blurred * amount)


def downscale(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down- then up-sample: loses high frequencies the way a lower-resolution source does."""
    h, w = image.shape[:2]
    f = rng.uniform(0.4, 0.8)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def random_jpeg(image: np.ndarray, rng: np.random.Generator, low: int = 40, high: int = 95) -> np.ndarray:
    return jpeg(image, int(rng.integers(low, high + 1)))


def colour_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's colour transforms: one of RGB shift / HSV jitter, then brightness-contrast."""
    image = rgb_shift(image, rng) if rng.random() < 0.5 else hsv_jitter(image, rng)
    return brightness_contrast(image, rng)


def frequency_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's frequency transforms: one of blur, sharpen, down-up sampling or JPEG."""
    ops = (gaussian_blur, sharpen, downscale, random_jpeg)
    return ops[int(rng.integers(len(ops)))](image, rng)


def source_target_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What makes an SBI source differ from its target: colour jitter, then (half the time) frequency jitter."""
    image = colour_jitter(image, rng)
    return frequency_jitter(image, rng) if rng.random() < 0.5 else image


def random_square(side: int, rng: np.random.Generator, scale: tuple[float, float] = (0.88, 1.0)) -> tuple[int, int, int]:
    """A random square window (x0, y0, crop side) inside a ``side`` x ``side`` image, its side a random fraction."""
    crop = max(1, round(side * rng.uniform(*scale)))
    x0, y0 = (int(v) for v in rng.integers(0, side - crop + 1, 2))
    return x0, y0, crop


def crop_resize(image: np.ndarray, window: tuple[int, int, int], size: int, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    x0, y0, crop = window
    patch = image[y0 : y0 + crop, x0 : x0 + crop]
    if patch.shape[0] == size and patch.shape[1] == size:
        return np.ascontiguousarray(patch)
    return cv2.resize(patch, (size, size), interpolation=interpolation if crop > size else cv2.INTER_LINEAR)


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Training-time colour and compression augmentation, each applied with probability 0.5."""
    if rng.random() < 0.5:
        image = hsv_jitter(image, rng, hue=0.1, sat=0.2, val=0.2)
    if rng.random() < 0.5:
        image = brightness_contrast(image, rng)
    if rng.random() < 0.5:
        image = random_jpeg(image, rng, 60, 100)
    return image
