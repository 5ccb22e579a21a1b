"""Stable track ids for face boxes across frames: greedy IoU matching, no motion model.

Scores are smoothed per track downstream, so an id must follow one face for as long as it stays in view and must
never jump to another face. At video frame rates a face moves little between frames, so overlap with the track's
last box is enough; a motion model (Kalman, as in SORT) would only pay off at low detection rates.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from streamguard.contracts import FaceBox


def iou_matrix(a: list[FaceBox], b: list[FaceBox]) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``: shape (len(a), len(b))."""
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    pa = np.array([(x.x0, x.y0, x.x1, x.y1) for x in a], dtype=np.float64)[:, None, :]
    pb = np.array([(x.x0, x.y0, x.x1, x.y1) for x in b], dtype=np.float64)[None, :, :]
    iw = np.clip(np.minimum(pa[..., 2], pb[..., 2]) - np.maximum(pa[..., 0], pb[..., 0]), 0.0, None)
    ih = np.clip(np.minimum(pa[..., 3], pb[..., 3]) - np.maximum(pa[..., 1], pb[..., 1]), 0.0, None)
    inter = iw * ih
    area_a = (pa[..., 2] - pa[..., 0]) * (pa[..., 3] - pa[..., 1])
    area_b = (pb[..., 2] - pb[..., 0]) * (pb[..., 3] - pb[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs, highest IoU first, each row and column used once, only pairs with IoU >= threshold.

    Ties are broken by row then column, so the result never depends on sort stability or input noise.
    """
    rows, cols = np.nonzero(iou >= threshold)
    order = sorted(zip(rows.tolist(), cols.tolist(), strict=True), key=lambda rc: (-iou[rc], rc[0], rc[1]))
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for r, c in order:
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            pairs.append((r, c))
    return pairs


@dataclass(slots=True)
class _Track:
    track_id: int
    box: FaceBox
    missed: int = 0  # consecutive updates without a match


class FaceTracker:
    """Assigns track ids to one stream's face boxes, frame after frame.

    A track that finds no box keeps its last box and stays matchable for ``max_missed`` more updates (a face hidden
    for a moment, or a missed detection, keeps its id); on the update after that it is dropped, and the face gets a
    new id if it comes back. Ids count up from 1 and are never reused; trackers given one shared ``ids`` iterator
    hand out ids unique among all of them.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 15, ids: Iterator[int] | None = None) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self._tracks: list[_Track] = []
        self._ids = ids if ids is not None else itertools.count(1)

    @property
    def active_tracks(self) -> int:
        """Tracks still alive, including those missed for up to ``max_missed`` updates."""
        return len(self._tracks)

    def update(self, boxes: list[FaceBox]) -> list[tuple[int, FaceBox]]:
        """This frame's boxes with their track ids, in the order given."""
        pairs = greedy_match(iou_matrix([t.box for t in self._tracks], boxes), self.iou_threshold)
        ids: dict[int, int] = {}  # box index -> track id
        for t, b in pairs:
            track = self._tracks[t]
            track.box, track.missed = boxes[b], 0
            ids[b] = track.track_id
        self._age_unmatched({t for t, _ in pairs})
        for b, box in enumerate(boxes):
            if b not in ids:
                track = _Track(next(self._ids), box)
                self._tracks.append(track)
                ids[b] = track.track_id
        return [(ids[b], box) for b, box in enumerate(boxes)]

    def _age_unmatched(self, matched: set[int]) -> None:
        for i, track in enumerate(self._tracks):
            if i not in matched:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]

    def reset(self) -> None:
        """Forget every track (ids keep counting up, so old ids are never handed out again)."""
        self._tracks.clear()
