"""One batcher for face crops from every stream: fair across streams, bounded per track, engine off the loop."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from streamguard.config import SchedulerSettings
from streamguard.contracts import FaceCrop
from streamguard.runtime import Detector, DetectorOutput


@dataclass
class BatchTiming:
    started_ts: float  # wall clock when the engine call began
    inference_s: float
    size: int


ACTIVE_S = 0.5  # a face that sent a crop this recently is expected to send another soon

ResultHandler = Callable[[list[FaceCrop], DetectorOutput, BatchTiming], None]
DropHandler = Callable[[FaceCrop], None]


class BatchScheduler:
    """Collects crops; flushes a batch when ``max_batch`` crops wait, when every recently active face has a crop
    waiting (waiting longer would only add latency), or when the oldest has waited ``max_delay_ms``.

    Each track keeps at most ``max_pending_per_track`` crops (older ones are dropped and reported), and a batch
    takes crops round-robin across streams, so a crowded stream cannot starve a quiet one. The engine runs in
    one worker thread; the event loop only moves small objects.
    """

    def __init__(self, engine: Detector, settings: SchedulerSettings, on_results: ResultHandler, on_drop: DropHandler) -> None:
        self.engine = engine
        self.settings = settings
        self.on_results = on_results
        self.on_drop = on_drop
        self._pending: OrderedDict[str, OrderedDict[int, deque[tuple[float, FaceCrop]]]] = OrderedDict()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="streamguard-engine")
        self._last_seen: dict[tuple[str, int], float] = {}  # (stream, track) -> monotonic time of its last crop
        self.last_batch: BatchTiming | None = None

    @property
    def depth(self) -> int:
        return sum(len(q) for tracks in self._pending.values() for q in tracks.values())

    def submit(self, crop: FaceCrop) -> None:
        tracks = self._pending.setdefault(crop.stream_id, OrderedDict())
        queue = tracks.setdefault(crop.track_id, deque())
        if len(queue) >= self.settings.max_pending_per_track:
            self.on_drop(queue.popleft()[1])
        t = time.monotonic()
        queue.append((t, crop))
        self._last_seen[(crop.stream_id, crop.track_id)] = t
        self._wake.set()

    def forget(self, stream_id: str) -> None:
        self._pending.pop(stream_id, None)
        for key in [k for k in self._last_seen if k[0] == stream_id]:
            del self._last_seen[key]

    def _batch_target(self) -> int:
        """How many crops to wait for: one per face seen in the last ACTIVE_S, capped at ``max_batch``."""
        horizon = time.monotonic() - ACTIVE_S
        for key in [k for k, t in self._last_seen.items() if t < horizon]:
            del self._last_seen[key]
        return max(1, min(self.settings.max_batch, len(self._last_seen)))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_for_batch()
            batch = self._take_batch()
            if not batch:
                continue
            crops = np.stack([c.crop for c in batch])
            started = time.time()
            t0 = time.perf_counter()
            output = await loop.run_in_executor(self._executor, self.engine.run, crops)
            self.last_batch = BatchTiming(started, time.perf_counter() - t0, len(batch))
            self.on_results(batch, output, self.last_batch)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _wait_for_batch(self) -> None:
        while self.depth == 0:
            self._wake.clear()
            await self._wake.wait()
        deadline = self._oldest() + self.settings.max_delay_ms / 1e3
        while self.depth < self._batch_target():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _oldest(self) -> float:
        return min(q[0][0] for tracks in self._pending.values() for q in tracks.values() if q)

    def _take_batch(self) -> list[FaceCrop]:
        """Round-robin over streams (one crop each per round, oldest track first); rotate so the next batch starts elsewhere."""
        batch: list[FaceCrop] = []
        while len(batch) < self.settings.max_batch and self.depth:
            for stream_id in list(self._pending):
                tracks = self._pending[stream_id]
                track_id = next((t for t, q in tracks.items() if q), None)
                if track_id is None:
                    continue
                batch.append(tracks[track_id].popleft()[1])
                tracks.move_to_end(track_id)  # this stream's next crop comes from another face
                if len(batch) == self.settings.max_batch:
                    break
        for tracks in self._pending.values():  # tracks that left the picture must not accumulate
            for track_id in [t for t, q in tracks.items() if not q]:
                del tracks[track_id]
        if self._pending:
            self._pending.move_to_end(next(iter(self._pending)))
        return batch
