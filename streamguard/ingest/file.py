"""Video files as frame sources: as fast as decoding goes (``read_frames``, for scans and tests) or paced at real
time into a latest-frame slot (``FileSource``, a file standing in for a live camera).

Errors about the file itself are raised where the file is opened, as one line naming it: a missing file is a
``FileNotFoundError``, anything FFmpeg cannot read as video is a ``ValueError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
import av.video.stream
import numpy as np

from streamguard.contracts import Frame, now
from streamguard.ingest.base import LatestFrame

_PTS_EPS_S = 1e-6  # pts are exact fractions turned into floats: tolerate their rounding when comparing to a grid


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    fps: float  # average frame rate (0.0 when the container does not say)
    duration_s: float | None  # None when the container does not say
    frames: int | None  # frame count from the container header (None when absent); decoding may give a few fewer


def _reason(exc: av.FFmpegError) -> str:
    return str(exc.strerror or exc).splitlines()[0]


def _open(path: str | Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open a file's first video stream, turning every way that fails into a one-line error naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: not a readable video file ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path}: has no video stream")
    return container, container.streams.video[0]


def _fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else 0.0


def probe(path: str | Path) -> VideoInfo:
    """Size, frame rate, duration and frame count from the container header, without decoding."""
    container, stream = _open(path)
    with container:
        if stream.duration is not None and stream.time_base is not None:
            duration_s: float | None = float(stream.duration * stream.time_base)
        else:
            duration_s = container.duration / av.time_base if container.duration else None
        width, height = stream.codec_context.width, stream.codec_context.height
        return VideoInfo(width, height, _fps(stream), duration_s, stream.frames or None)


def _check_max_fps(max_fps: float | None) -> None:
    if max_fps is not None and not max_fps > 0:  # also rejects nan
        raise ValueError(f"max_fps must be positive, got {max_fps}")


class PtsSampler:
    """Keeps at most ``max_fps`` frames per second of video time, chosen by pts (None: keeps every frame).

    Slots lie on a grid of ``1 / max_fps``, each scheduled from the previous slot rather than from the kept frame, so
    24 fps capped at 10 gives 10 frames per second, not 8. A jump in pts (a seek, a loop, a gap) restarts the grid at
    the new pts instead of bursting. Frames without a pts are always kept: there is nothing to decide on.
    """

    def __init__(self, max_fps: float | None) -> None:
        _check_max_fps(max_fps)
        self.period_s = 1.0 / max_fps if max_fps else 0.0
        self._next: float | None = None

    def keep(self, pts: float | None) -> bool:
        if pts is None or not self.period_s:
            return True
        nxt = self._next
        if nxt is None or pts < nxt - self.period_s - _PTS_EPS_S or pts >= nxt + self.period_s:
            self._next = pts + self.period_s
            return True
        if pts < nxt - _PTS_EPS_S:
            return False
        self._next = nxt + self.period_s
        return True


def _decode(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path, max_fps: float | None
) -> Generator[tuple[float | None, np.ndarray], None, None]:
    """(pts seconds, RGB uint8 image) for the kept frames; closes the container when done or abandoned."""
    sampler = PtsSampler(max_fps)
    decoded = 0
    try:
        for frame in container.decode(stream):
            decoded += 1
            if sampler.keep(frame.time):
                yield frame.time, frame.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: decoding failed after {decoded} frames ({_reason(exc)})") from None
    finally:
        container.close()


def read_frames(path: str | Path, stream_id: str = "file", max_fps: float | None = None) -> Iterator[Frame]:
    """Decode every frame of a video (or at most ``max_fps`` per second of video time) as RGB ``Frame`` objects.

    Not a generator itself: the file is opened, and its errors raised, at the call, not at the first ``next``.
    """
    _check_max_fps(max_fps)
    container, stream = _open(path)
    return _frames(_decode(container, stream, Path(path), max_fps), stream_id)


def _frames(decoded: Iterator[tuple[float | None, np.ndarray]], stream_id: str) -> Iterator[Frame]:
    for seq, (pts, image) in enumerate(decoded):
        yield Frame(stream_id, seq, pts, None, now(), image)


class _Timeline:
    """Stream time that keeps increasing over looped passes, and the wall-clock moment each frame is due.

    Each pass after the first is shifted to start one frame interval after the previous pass's last frame; a frame
    without a pts is placed one interval after the previous one.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._origin: float | None = None  # stream time of the first frame played, due the moment it was decoded
        self._start_mono = self._start_wall = 0.0
        self._shift: float | None = None  # this pass's pts -> stream time; None until the pass's first frame
        self._last: float | None = None  # stream time of the previous frame
        self._last_pts: float | None = None  # pts of the previous frame of this pass

    def new_pass(self) -> None:
        self._shift = self._last_pts = None

    def stream_time(self, pts: float | None) -> float:
        if pts is None:
            pts = self._last_pts + self.interval_s if self._last_pts is not None else 0.0
        if self._shift is None:
            self._shift = 0.0 if self._last is None else self._last + self.interval_s - pts
        self._last_pts, self._last = pts, pts + self._shift
        if self._origin is None:
            self._origin, self._start_mono, self._start_wall = self._last, time.monotonic(), now()
        return self._last

    def due(self, t: float) -> tuple[float, float]:
        """(monotonic, wall-clock) time at which stream time ``t`` is due."""
        offset = t - (self._origin if self._origin is not None else t)  # before the first frame: due now
        return self._start_mono + offset, self._start_wall + offset


class FileSource:
    """Plays a video file into a :class:`LatestFrame` slot at real time, as a camera would deliver it.

    Decoding and pacing run in a worker thread; frames cross to the event loop with ``call_soon_threadsafe``, so the
    loop never blocks. ``pts`` is stream time (increasing across loops), ``capture_ts`` the wall-clock moment a frame
    was due, ``received_ts`` the moment it was handed over: a decoder that cannot keep up shows as the gap between the
    two (and as drops in the slot's ``SourceStats``). A source plays once: after ``stop()``, ``run`` returns at once.
    """

    def __init__(self, path: str | Path, stream_id: str = "file", *, loop: bool = False, max_fps: float | None = None) -> None:
        _check_max_fps(max_fps)
        self.path = Path(path)
        self.stream_id = stream_id
        self.loop = loop
        self.max_fps = max_fps
        self.info = probe(self.path)  # fails here, when the source is configured, for a missing or unreadable file
        self.passes = 0  # passes over the file started so far
        self._seq = 0
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to return (within one frame interval); thread-safe."""
        self._stopping.set()

    async def run(self, slot: LatestFrame) -> None:
        """Play until the end (forever with ``loop``), ``stop()`` or cancellation; closes the slot when it returns.

        A file that fails mid-way raises its ``ValueError`` here. On cancellation the worker is stopped and waited for
        (up to a second), so no decoder thread outlives the task.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        worker = threading.Thread(target=self._play, args=(loop, slot, done), name=f"file-{self.stream_id}", daemon=True)
        worker.start()
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            self._stopping.set()
            await asyncio.wait({done}, timeout=1.0)
            raise
        finally:
            self._stopping.set()
            slot.close()

    # --- worker thread ---

    def _play(self, loop: asyncio.AbstractEventLoop, slot: LatestFrame, done: asyncio.Future[None]) -> None:
        def post(fn: Callable[..., None], *args: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed while the worker was winding down
                loop.call_soon_threadsafe(fn, *args)

        error: BaseException | None = None
        try:
            self._play_passes(lambda frame: post(self._put_unless_stopped, slot, frame))
        except BaseException as exc:  # handed over to run(), which raises it in its task
            error = exc
        post(_settle, done, error)

    def _play_passes(self, deliver: Callable[[Frame], None]) -> None:
        timeline = _Timeline(1.0 / min(self.info.fps or 30.0, self.max_fps or float("inf")))
        while not self._stopping.is_set():
            self.passes += 1
            timeline.new_pass()
            container, stream = _open(self.path)
            played = 0
            with contextlib.closing(_decode(container, stream, self.path, self.max_fps)) as frames:
                for pts, image in frames:
                    t = timeline.stream_time(pts)
                    due_mono, due_wall = timeline.due(t)
                    if self._stopping.wait(max(0.0, due_mono - time.monotonic())):
                        return
                    deliver(Frame(self.stream_id, self._seq, t, due_wall, now(), image))
                    self._seq += 1
                    played += 1
            if not self.loop or played == 0:
                return

    # --- event loop thread ---

    def _put_unless_stopped(self, slot: LatestFrame, frame: Frame) -> None:
        if not self._stopping.is_set():
            slot.put(frame)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
