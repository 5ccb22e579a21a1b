"""Faces stage: detect (BlazeFace), track (stable ids per stream), crop (eye-levelled squares at model size).

``FaceStage`` turns a ``Frame`` into ``FaceCrop`` objects and keeps one tracker per stream, so one detector can
serve every stream. It is synchronous and CPU-bound (a few ms per frame): run it off the event loop.
"""

from __future__ import annotations

import itertools

from streamguard.contracts import FaceCrop, Frame, now
from streamguard.faces.crop import aligned_crop, crop_transform, eye_angle, transform_points
from streamguard.faces.detector import MODEL_ASSETS, BlazeFaceDetector
from streamguard.faces.tracker import FaceTracker, greedy_match, iou_matrix

__all__ = [
    "MODEL_ASSETS",
    "BlazeFaceDetector",
    "FaceStage",
    "FaceTracker",
    "aligned_crop",
    "crop_transform",
    "eye_angle",
    "greedy_match",
    "iou_matrix",
    "transform_points",
]


class FaceStage:
    """Frame -> face crops with track ids, unique across the stage's streams (so per-track state downstream never
    mixes two faces). The detector is shared and owned by the caller, who closes it."""

    def __init__(
        self,
        size: int,
        detector: BlazeFaceDetector,
        margin: float = 1.3,
        iou_threshold: float = 0.3,
        max_missed: int = 15,
    ) -> None:
        self.size = size
        self.detector = detector
        self.margin = margin
        self._tracker_args = (iou_threshold, max_missed)
        self._trackers: dict[str, FaceTracker] = {}
        self._ids = itertools.count(1)  # shared: a track id names one face of one stream for the stage's lifetime

    def process(self, frame: Frame) -> list[FaceCrop]:
        """Detect, track and crop every face of one frame; an empty list when there is none."""
        tracker = self._trackers.get(frame.stream_id)
        if tracker is None:
            tracker = self._trackers[frame.stream_id] = FaceTracker(*self._tracker_args, ids=self._ids)
        tracked = tracker.update(self.detector.detect(frame.image))
        crops = [(track_id, box, aligned_crop(frame.image, box, self.size, self.margin)) for track_id, box in tracked]
        detected_ts = now()
        return [
            FaceCrop(frame.stream_id, track_id, frame.seq, box, crop, frame.received_ts, detected_ts, frame.pts)
            for track_id, box, crop in crops
        ]

    def forget(self, stream_id: str) -> None:
        """Drop a finished stream's tracker; if the stream id comes back, its faces get fresh ids."""
        self._trackers.pop(stream_id, None)

    @property
    def streams(self) -> list[str]:
        return list(self._trackers)
