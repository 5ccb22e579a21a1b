"""RTSP camera ingest: PyAV decodes in a worker thread, frames land in a latest-frame slot, a watchdog reconnects.

Live feeds fail in three ways, each seen on a real server (DESIGN.md, "PyAV reading RTSP"): a killed server just
ends the decode loop (or raises InvalidDataError), a frozen server leaves a read blocked until its timeout, an absent
one refuses at once. All three lead to the same answer: drop the connection and open a new one with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import av
import av.error
import numpy as np

from streamguard.contracts import Frame, now
from streamguard.ingest.base import LatestFrame, SourceStats

log = logging.getLogger(__name__)

# TCP: no lost packets, no UDP ports to open. A tiny probe: the SDP already says what the stream is, and the default
# probe (5 MB / 5 s) delays the first frame by ~1 s.
AV_OPTIONS = {"rtsp_transport": "tcp", "probesize": "32", "analyzeduration": "0"}
_TICK_S = 0.1  # how often the watchdog looks
_OPEN_GRACE_S = 1.0  # the watchdog gives PyAV's own open timeout this long to fire first


class _Outcome(enum.Enum):
    """How one connection attempt ended."""

    FAILED = "failed"  # never opened
    LOST = "lost"  # opened, then the stream ended or errored (server gone)
    STALL = "stall"  # opened, then no frame for read_timeout_s (server frozen)
    STOPPED = "stopped"


def validate_url(url: str) -> str:
    """An ``rtsp://`` or ``rtsps://`` URL with a host, else ValueError (checked before any connection is tried)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("rtsp", "rtsps") or not parts.hostname:
        raise ValueError(f"not an RTSP URL (want rtsp://host[:port]/path or rtsps://...): {url!r}")
    return url


class RateCap:
    """Lets through at most ``max_fps`` frames per second of wall clock, evenly spread (None: everything).

    Wall clock rather than pts: a live stream's pts can be missing, restart on reconnect or jump when a camera loops.
    """

    def __init__(self, max_fps: float | None) -> None:
        self.period_s = 1.0 / max_fps if max_fps else 0.0
        self._next_s = -float("inf")

    def due(self, t_s: float) -> bool:
        if t_s < self._next_s:
            return False
        # Schedule from the previous slot, not from now, so a 24 fps feed capped at 10 gives 10, not 8; a late frame
        # carries at most half a period of credit, so a gap (reconnect) is not followed by a burst.
        self._next_s = max(self._next_s, t_s - self.period_s / 2) + self.period_s
        return True


class _Reader:
    """One connection attempt, read in its own daemon thread.

    The event loop abandons a reader instead of joining it: a blocked FFmpeg read cannot be interrupted from outside,
    but it ends by itself within its timeout, and an abandoned reader's frames are thrown away."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.abandoned = threading.Event()
        self.alive_s = time.monotonic()  # the last sign of life (start, open, decoded frame); written by the thread
        self.frames = 0  # frames decoded; written by the thread
        self.opened = False
        self.outcome: _Outcome | None = None

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop's thread, unless the reader was abandoned or the loop is gone."""
        if self.abandoned.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while this thread was still winding down
            self.loop.call_soon_threadsafe(self._unless_abandoned, fn, args)

    def _unless_abandoned(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if not self.abandoned.is_set():
            fn(*args)


class RtspSource:
    """Reads one RTSP stream into a :class:`LatestFrame` slot until :meth:`stop` or cancellation, reconnecting forever."""

    def __init__(
        self,
        stream_id: str,
        url: str,
        *,
        max_fps: float | None = None,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 2.0,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 10.0,
    ) -> None:
        for name, value in (
            ("open_timeout_s", open_timeout_s),
            ("read_timeout_s", read_timeout_s),
            ("max_fps", 1 if max_fps is None else max_fps),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.stream_id = stream_id
        self.url = validate_url(url)
        self.max_fps = max_fps
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.stats = SourceStats()
        self.connected = False  # the stream is open and not yet lost
        self.last_frame_ts: float | None = None  # wall clock of the newest frame put into the slot
        self.attempts = 0  # connection attempts so far
        self.backoff_s = reconnect_initial_s  # the wait before the next attempt, if the current one gives no frame
        self._seq = 0
        self._has_connected = False
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to return (call from the event loop's thread). It returns at once, even while a read is
        blocked: the reader thread is abandoned and ends by itself within its timeout. A source runs once."""
        self._stopping.set()

    async def run(self, slot: LatestFrame) -> None:
        """Connect, read, and on any loss reconnect with exponential backoff. Closes the slot when it returns."""
        try:
            while not self._stopping.is_set():
                reader = self._start(slot)
                try:
                    outcome = await self._supervise(reader)
                finally:
                    reader.abandoned.set()
                    self.connected = False
                if outcome is _Outcome.STOPPED or await self._sleep_unless_stopped(self._after_loss(outcome, reader)):
                    break
        finally:
            self.connected = False
            slot.close()

    def _start(self, slot: LatestFrame) -> _Reader:
        self.attempts += 1
        reader = _Reader(asyncio.get_running_loop())
        name = f"rtsp-{self.stream_id}-{self.attempts}"
        threading.Thread(target=self._read, args=(reader, slot), name=name, daemon=True).start()
        return reader

    async def _supervise(self, reader: _Reader) -> _Outcome:
        """Wait for the reader's outcome; the watchdog decides for it when it goes quiet (a frozen feed whose read
        timeout did not fire, or an open that hangs)."""
        while reader.outcome is None:
            if await self._sleep_unless_stopped(_TICK_S):
                return _Outcome.STOPPED
            quiet_s = time.monotonic() - reader.alive_s
            if reader.opened and quiet_s > self.read_timeout_s:
                return _Outcome.STALL
            if not reader.opened and quiet_s > self.open_timeout_s + _OPEN_GRACE_S:
                return _Outcome.FAILED
        return reader.outcome

    def _after_loss(self, outcome: _Outcome, reader: _Reader) -> float:
        """Count the loss and return the wait before the next attempt: the initial one after a connection that gave
        frames, doubling (up to reconnect_max_s) while attempts give none, so a dead or broken camera is not hammered."""
        if outcome is _Outcome.STALL:
            self.stats.stalls += 1
        delay = self.reconnect_initial_s if reader.frames else self.backoff_s
        self.backoff_s = min(delay * 2, self.reconnect_max_s)
        level = logging.WARNING if reader.opened else logging.INFO
        log.log(level, "rtsp %s: %s; retrying in %.2f s", self.stream_id, outcome.value, delay)
        return delay

    async def _sleep_unless_stopped(self, seconds: float) -> bool:
        """Sleep, waking early on stop(); True when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    # --- worker thread ---

    def _read(self, reader: _Reader, slot: LatestFrame) -> None:
        """Open, decode, convert to RGB and post frames until the stream ends, fails, or the reader is abandoned."""
        outcome = _Outcome.FAILED
        try:
            with av.open(self.url, options=AV_OPTIONS, timeout=(self.open_timeout_s, self.read_timeout_s)) as container:
                outcome = _Outcome.LOST  # from here on, any end is a loss: a live stream does not end normally
                reader.alive_s = time.monotonic()
                reader.post(self._on_open, reader)
                cap = RateCap(self.max_fps)
                for frame in container.decode(video=0):
                    reader.alive_s = time.monotonic()
                    reader.frames += 1
                    if reader.abandoned.is_set():
                        return
                    if cap.due(reader.alive_s):
                        image = frame.to_ndarray(format="rgb24")
                        reader.post(self._deliver, slot, frame.time, now(), image)
        except (av.error.TimeoutError, av.error.ExitError) as exc:  # ExitError: PyAV's own timeout interrupted a read
            outcome = _Outcome.STALL if outcome is _Outcome.LOST else _Outcome.FAILED
            log.debug("rtsp %s: %s", self.stream_id, exc)
        except av.FFmpegError as exc:
            log.debug("rtsp %s: %s", self.stream_id, exc)
        except Exception:
            log.exception("rtsp %s: reader failed", self.stream_id)
        reader.post(self._on_end, reader, outcome)

    # --- event loop thread ---

    def _on_open(self, reader: _Reader) -> None:
        reader.opened = True
        self.connected = True
        if self._has_connected:
            self.stats.reconnects += 1
            log.info("rtsp %s: reconnected", self.stream_id)
        self._has_connected = True

    def _on_end(self, reader: _Reader, outcome: _Outcome) -> None:
        reader.outcome = outcome

    def _deliver(self, slot: LatestFrame, pts: float | None, received_ts: float, image: np.ndarray) -> None:
        frame = Frame(self.stream_id, self._seq, pts, None, received_ts, image)
        self._seq += 1
        self.last_frame_ts = received_ts
        slot.put(frame)
