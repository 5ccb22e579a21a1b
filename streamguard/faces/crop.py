"""Square, eye-levelled face crops at the detector's input size, in one warp.

One similarity transform (rotate about the box centre, scale to ``size``, translate) does cropping, levelling and
resizing together: one interpolation pass, no intermediate arrays, and ``BORDER_REPLICATE`` fills whatever part of
the square lies outside the frame, so faces at the frame edges need no special case.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamguard.contracts import FaceBox

RIGHT_EYE, LEFT_EYE = 0, 1  # BlazeFace keypoint order: the subject's right eye is on the image's left


def eye_angle(box: FaceBox) -> float:
    """Angle in radians of the line from the right eye to the left eye (image axes, y down); 0 without keypoints."""
    kp = box.keypoints
    if kp is None or len(kp) <= LEFT_EYE:
        return 0.0
    dx, dy = (kp[LEFT_EYE] - kp[RIGHT_EYE]).tolist()
    if dx == 0.0 and dy == 0.0:
        return 0.0
    return math.atan2(dy, dx)


def crop_transform(box: FaceBox, size: int, margin: float = 1.3, angle: float = 0.0) -> np.ndarray:
    """The 2x3 matrix taking frame pixels to crop pixels: the square of side ``margin * max(w, h)`` centred on the
    box, turned by ``-angle`` (so a line at ``angle`` becomes horizontal), scaled to ``size``.

    Box coordinates are pixel edges (pixel i spans [i, i + 1)); OpenCV addresses pixel centres, hence the half pixel.
    """
    side = max(margin * max(box.x1 - box.x0, box.y1 - box.y0), 1.0)
    scale = size / side
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    cx, cy = (box.x0 + box.x1) / 2 - 0.5, (box.y0 + box.y1) / 2 - 0.5
    out_c = (size - 1) / 2
    return np.array(
        [[cos, sin, out_c - cos * cx - sin * cy], [-sin, cos, out_c + sin * cx - cos * cy]],
        dtype=np.float64,
    )


def aligned_crop(image: np.ndarray, box: FaceBox, size: int, margin: float = 1.3) -> np.ndarray:
    """``size`` x ``size`` x 3 uint8 crop of ``box``, rotated so the eyes are level when the box has keypoints."""
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    matrix = crop_transform(box, size, margin, eye_angle(box))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Frame-pixel points (N, 2) (edge convention, like FaceBox) -> crop pixels under ``crop_transform``'s matrix."""
    centres = np.asarray(points, dtype=np.float64) - 0.5
    return centres @ matrix[:, :2].T + matrix[:, 2] + 0.5
