"""The live pipeline: per-stream consumers (latest frame -> faces -> crops) feeding one batch scheduler,
whose scores are smoothed per track into verdicts for the alert hub and the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from streamguard.alerts import AlertHub
from streamguard.config import Config, StreamSettings
from streamguard.contracts import FaceCrop, Verdict, now
from streamguard.faces import FaceStage
from streamguard.ingest.base import LatestFrame, SourceStats
from streamguard.metrics import Metrics
from streamguard.runtime import Detector, DetectorOutput
from streamguard.scheduler import BatchScheduler, BatchTiming
from streamguard.smoothing import TrackSmoother

log = logging.getLogger("streamguard.pipeline")
RATE_WINDOW_S = 5.0
TRACK_IDLE_S = 10.0  # a track with no verdict for this long is forgotten

SourceRunner = Callable[[LatestFrame], Coroutine[Any, Any, None]]


class StreamError(ValueError):
    """A stream id is unknown or already taken, or its URL cannot be used."""


@dataclass
class StreamState:
    stream_id: str
    source: str  # rtsp | file | webrtc
    url: str | None
    fps_cap: float
    slot: LatestFrame
    processed: int = 0
    skipped: int = 0  # frames above the fps cap
    faces: int = 0
    crops_dropped: int = 0  # backpressure in the scheduler
    verdicts: int = 0
    next_due: float = 0.0  # wall clock from which the next frame may be processed (the fps cap)
    smoothers: dict[int, tuple[TrackSmoother, float]] = field(default_factory=dict)  # track -> (smoother, last verdict ts)
    samples: deque[tuple[float, int, int, int]] = field(default_factory=lambda: deque(maxlen=int(RATE_WINDOW_S) + 1))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def stats(self) -> SourceStats:
        return self.slot.stats

    def rates(self) -> dict[str, float]:
        """Frames per second over the last few seconds: input (received), processed, skipped."""
        if len(self.samples) < 2:
            return {"input_fps": 0.0, "processed_fps": 0.0, "skipped_fps": 0.0}
        (t0, r0, p0, s0), (t1, r1, p1, s1) = self.samples[0], self.samples[-1]
        span = max(t1 - t0, 1e-6)
        return {"input_fps": (r1 - r0) / span, "processed_fps": (p1 - p0) / span, "skipped_fps": (s1 - s0) / span}


class Pipeline:
    def __init__(self, config: Config, engine: Detector, faces: FaceStage, alerts: AlertHub, metrics: Metrics) -> None:
        self.config = config
        self.engine = engine
        self.faces = faces
        self.alerts = alerts
        self.metrics = metrics
        self.streams: dict[str, StreamState] = {}
        self.scheduler = BatchScheduler(engine, config.scheduler, self._on_results, self._on_drop)
        self._face_executor = ThreadPoolExecutor(1, thread_name_prefix="streamguard-faces")
        self._tasks: list[asyncio.Task[None]] = []
        metrics.watch(self)
        metrics.engine.info({"detector": engine.info.detector, "backend": engine.info.backend, "device": engine.info.device})

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self.scheduler.run()), asyncio.create_task(self._sample_rates())]

    async def close(self) -> None:
        for stream_id in list(self.streams):
            await self.remove_stream(stream_id)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.scheduler.close()
        self._face_executor.shutdown(wait=False, cancel_futures=True)

    def add_stream(
        self, stream_id: str, source: str, url: str | None, fps: float | None, slot: LatestFrame, runner: SourceRunner | None = None
    ) -> StreamState:
        """Watch frames arriving in ``slot``; ``runner`` (if given) is the source task that fills it."""
        if stream_id in self.streams:
            raise StreamError(f"stream {stream_id!r} already exists")
        state = StreamState(stream_id, source, url, fps or self.config.scheduler.stream_fps, slot)
        if runner is not None:
            state.tasks.append(asyncio.create_task(runner(slot)))
        state.tasks.append(asyncio.create_task(self._consume(state)))
        self.streams[stream_id] = state
        log.info("watching stream %s (%s)", stream_id, source)
        return state

    def add_configured(self, settings: StreamSettings) -> StreamState:
        """A stream from config or the API: rtsp(s):// URLs or video files (played at real time, looped)."""
        from streamguard.ingest.file import FileSource
        from streamguard.ingest.rtsp import RtspSource

        if settings.id in self.streams:
            raise StreamError(f"stream {settings.id!r} already exists")
        if settings.url.startswith(("rtsp://", "rtsps://")):
            source = RtspSource(settings.id, settings.url)  # counts reconnects and stalls in its own stats
            return self.add_stream(settings.id, "rtsp", settings.url, settings.fps, LatestFrame(source.stats), source.run)
        file_source = FileSource(settings.url.removeprefix("file://"), stream_id=settings.id, loop=True)
        return self.add_stream(settings.id, "file", settings.url, settings.fps, LatestFrame(SourceStats()), file_source.run)

    async def remove_stream(self, stream_id: str) -> None:
        state = self.streams.pop(stream_id, None)
        if state is None:
            raise StreamError(f"unknown stream {stream_id!r}")
        state.slot.close()
        for task in state.tasks:
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        self.scheduler.forget(stream_id)
        self.faces.forget(stream_id)
        log.info("stopped watching stream %s", stream_id)

    async def _consume(self, state: StreamState) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / state.fps_cap
        while (frame := await state.slot.get()) is not None:
            if frame.received_ts < state.next_due:
                state.skipped += 1
                continue
            # Due times advance by the interval, not from the last frame, so arrival jitter does not lower the rate;
            # after a gap they restart from now instead of letting a burst through.
            state.next_due = max(state.next_due + interval, frame.received_ts + interval / 2)
            started = time.perf_counter()
            crops = await loop.run_in_executor(self._face_executor, self.faces.process, frame)
            self.metrics.face_detection.observe(time.perf_counter() - started)
            state.processed += 1
            state.faces += len(crops)
            for crop in crops:
                self.scheduler.submit(crop)

    def _on_drop(self, crop: FaceCrop) -> None:
        if (state := self.streams.get(crop.stream_id)) is not None:
            state.crops_dropped += 1

    def _on_results(self, crops: list[FaceCrop], output: DetectorOutput, timing: BatchTiming) -> None:
        self.metrics.inference.observe(timing.inference_s)
        done = now()
        for crop, prob in zip(crops, output.prob.tolist(), strict=True):
            state = self.streams.get(crop.stream_id)
            if state is None:  # the stream was removed while its crops were in the engine
                continue
            known = state.smoothers.get(crop.track_id)
            smoother = known[0] if known else TrackSmoother(self.config.smoothing)
            state.smoothers[crop.track_id] = (smoother, done)
            smoothed, level, changed = smoother.update(prob)
            latency = {
                "detect": (crop.detected_ts - crop.received_ts) * 1e3,
                "queue": max(timing.started_ts - crop.detected_ts, 0.0) * 1e3,
                "inference": timing.inference_s * 1e3,
                "total": (done - crop.received_ts) * 1e3,
            }
            box = crop.box
            verdict = Verdict(
                crop.stream_id,
                crop.track_id,
                level,
                prob,
                smoothed,
                int(done * 1e3),
                crop.seq,
                (box.x0, box.y0, box.x1, box.y1),
                latency,
                changed,
            )
            state.verdicts += 1
            self.metrics.queue_wait.observe(latency["queue"] / 1e3)
            self.metrics.verdict_latency.labels(crop.stream_id).observe(latency["total"] / 1e3)
            if changed:
                self.metrics.alerts.labels(crop.stream_id, level.value).inc()
            self.alerts.publish(verdict)

    async def _sample_rates(self) -> None:
        while True:
            t = now()
            for state in self.streams.values():
                state.samples.append((t, state.stats.frames_received, state.processed, state.skipped))
                for track_id in [k for k, (_, last) in state.smoothers.items() if t - last > TRACK_IDLE_S]:
                    del state.smoothers[track_id]
            await asyncio.sleep(1.0)

    def stats(self) -> dict:
        last = self.scheduler.last_batch
        return {
            "engine": {
                **self.engine.info.to_dict(),
                "batch_size_last": last.size if last else 0,
                "inference_ms_last": round(last.inference_s * 1e3, 2) if last else None,
                "queue_depth": self.scheduler.depth,
            },
            "streams": {s.stream_id: stream_stats(s) for s in self.streams.values()},
        }


def stream_stats(s: StreamState) -> dict:
    return {
        "source": s.source,
        "url": s.url,
        "fps_cap": s.fps_cap,
        **{k: round(v, 2) for k, v in s.rates().items()},
        "frames_received": s.stats.frames_received,
        "frames_processed": s.processed,
        "frames_skipped": s.skipped,
        "frames_overwritten": s.stats.frames_dropped,
        "crops_dropped": s.crops_dropped,
        "faces_detected": s.faces,
        "tracks": len(s.smoothers),
        "verdicts": s.verdicts,
        "reconnects": s.stats.reconnects,
        "stalls": s.stats.stalls,
        "done": all(t.done() for t in s.tasks),
    }
