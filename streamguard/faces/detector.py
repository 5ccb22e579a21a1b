"""BlazeFace face detection through MediaPipe Tasks' FaceDetector (IMAGE mode), boxes and keypoints in pixels.

Two models, both from the ``mediapipe==0.10.21`` wheel and both verified to load and run under mediapipe 1.2.2:

- ``short`` (128x128 input, faces within about 2 m: video calls, webcams): about 2-3 ms per 640x360 frame on 2 cores.
- ``full`` (192x192 sparse, small and distant faces: RTSP cameras, group shots): about 3x slower; LiteRT logs
  "Sparsity tensors may not yet be fully supported" while loading it, and then detects correctly.

The cost per call is almost all fixed (model run plus MediaPipe's dispatch thread hop): an 8x8 image costs as much
as a 640x360 one, so shrinking frames before detection buys nothing (measured).

mediapipe is imported when a detector is built, not with this module, so the tracker and cropper stay usable
(and ``import streamguard.faces`` stays fast, about 0.8 s less) where face detection is not needed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Literal

import numpy as np

from streamguard.assets import asset_path
from streamguard.contracts import FaceBox

ModelName = Literal["short", "full"]

MODEL_ASSETS: dict[str, str] = {
    "short": "faces/face_detection_short_range.tflite",
    "full": "faces/face_detection_full_range_sparse.tflite",
}


def _check_image(image: np.ndarray) -> np.ndarray:
    """MediaPipe reads the raw buffer, so the array must be HxWx3 uint8 and C-contiguous."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
    return np.ascontiguousarray(image)


def _to_face_box(detection: Any, width: int, height: int) -> FaceBox | None:
    """One MediaPipe detection -> a FaceBox clipped to the image; None when nothing of it is inside.

    Keypoints are left unclipped: clipping an eye that lies outside the frame would tilt the alignment angle.
    """
    bb = detection.bounding_box
    x0, y0 = max(0.0, float(bb.origin_x)), max(0.0, float(bb.origin_y))
    x1, y1 = min(float(width), float(bb.origin_x + bb.width)), min(float(height), float(bb.origin_y + bb.height))
    if x1 <= x0 or y1 <= y0:
        return None
    score = float(detection.categories[0].score) if detection.categories else 0.0
    keypoints = None
    if detection.keypoints:
        keypoints = np.array([(kp.x * width, kp.y * height) for kp in detection.keypoints], dtype=np.float32)
    return FaceBox(x0, y0, x1, y1, score, keypoints)


@contextlib.contextmanager
def _native_logs_hidden() -> Iterator[None]:
    """LiteRT and glog write INFO/WARNING lines straight to file descriptor 2 when a detector is created, first runs
    and closes; users of ``scan`` should not see them. Python exceptions are unaffected (they are raised, not printed).
    The redirection is process-wide, so it is held only for those short moments."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class BlazeFaceDetector:
    """Finds faces in RGB frames. Use it as a context manager (or call ``close``): MediaPipe's native task must be
    shut down while its dispatcher thread still exists. One instance serves one thread at a time (a lock enforces it)."""

    def __init__(self, model: ModelName = "short", min_score: float = 0.5, min_suppression: float = 0.3) -> None:
        if model not in MODEL_ASSETS:
            raise ValueError(f"unknown BlazeFace model {model!r}: choose one of {sorted(MODEL_ASSETS)}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(asset_path(MODEL_ASSETS[model]))),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_score,
            min_suppression_threshold=min_suppression,
        )
        self.model = model
        self.min_score = min_score
        self._lock = threading.Lock()
        self._as_mp_image = functools.partial(mp.Image, image_format=mp.ImageFormat.SRGB)
        with _native_logs_hidden():  # creation and the first inference are where LiteRT logs
            self._task: Any = vision.FaceDetector.create_from_options(options)
            self.detect(np.zeros((64, 64, 3), dtype=np.uint8))

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Faces in one HxWx3 uint8 RGB image, best score first, in pixel coordinates."""
        image = _check_image(image)
        height, width = image.shape[:2]
        with self._lock:
            if self._task is None:
                raise RuntimeError("BlazeFaceDetector is closed")
            result = self._task.detect(self._as_mp_image(data=image))
        boxes = [box for det in result.detections if (box := _to_face_box(det, width, height)) is not None]
        return sorted(boxes, key=lambda b: -b.score)

    def close(self) -> None:
        """Shut the native task down; idempotent."""
        with self._lock:
            task, self._task = self._task, None
        if task is not None:
            with _native_logs_hidden():
                task.close()

    def __enter__(self) -> BlazeFaceDetector:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        # A detector dropped without close() is closed here; not during interpreter teardown, when MediaPipe's
        # dispatcher executor is already shut down and closing would raise.
        if not sys.is_finalizing() and getattr(self, "_task", None) is not None:
            with contextlib.suppress(RuntimeError):  # atexit already shut the executor down: nothing left to free
                self.close()
