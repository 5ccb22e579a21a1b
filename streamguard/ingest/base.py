"""What every ingest source shares: latest-frame-wins delivery and counters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from streamguard.contracts import Frame


@dataclass
class SourceStats:
    frames_received: int = 0
    frames_dropped: int = 0  # overwritten in the latest-frame slot before anyone took them
    reconnects: int = 0
    stalls: int = 0  # read timeouts / frozen feeds noticed by a watchdog


class LatestFrame:
    """A one-frame slot per stream: a new frame overwrites an untaken one (counted as dropped), so a slow
    consumer never makes latency grow. ``put`` never blocks; ``get`` waits for the next frame."""

    def __init__(self, stats: SourceStats) -> None:
        self.stats = stats
        self._frame: Frame | None = None
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, frame: Frame) -> None:
        """Call from the event loop's thread (use ``loop.call_soon_threadsafe`` from decoder threads)."""
        if self._frame is not None:
            self.stats.frames_dropped += 1
        self._frame = frame
        self.stats.frames_received += 1
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def get(self) -> Frame | None:
        """The newest frame, or None once the slot is closed and empty."""
        while self._frame is None:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame, self._frame = self._frame, None
        return frame
