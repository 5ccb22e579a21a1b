import asyncio
import time

import numpy as np

from streamguard.config import SchedulerSettings
from streamguard.contracts import FaceBox, FaceCrop
from streamguard.runtime import Detector, DetectorOutput, EngineInfo
from streamguard.scheduler import BatchScheduler


class BrightnessEngine(Detector):
    """A real (if trivial) engine: the score is the crop's mean brightness. Records each batch it runs."""

    def __init__(self) -> None:
        self.info = EngineInfo("brightness", "numpy", "cpu", 8, (0.0,) * 3, (1.0,) * 3, 0.5)
        self.batches: list[list[float]] = []

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def infer(self, prepared: np.ndarray) -> dict[str, np.ndarray]:
        prob = prepared.reshape(len(prepared), -1).mean(1).astype(np.float32) / 255
        self.batches.append(prob.tolist())
        return {"prob": prob}


def crop(stream: str, track: int, value: int) -> FaceCrop:
    image = np.full((8, 8, 3), value, dtype=np.uint8)
    return FaceCrop(stream, track, value, FaceBox(0, 0, 8, 8, 1.0), image, time.time(), time.time())


def run_scheduler(settings: SchedulerSettings, submit, until) -> tuple[BrightnessEngine, list, list]:  # type: ignore[no-untyped-def]
    engine = BrightnessEngine()
    results: list[tuple[list[FaceCrop], DetectorOutput]] = []
    dropped: list[FaceCrop] = []

    async def main() -> None:
        scheduler = BatchScheduler(engine, settings, lambda crops, out, timing: results.append((crops, out)), dropped.append)
        submit(scheduler)
        task = asyncio.create_task(scheduler.run())
        deadline = time.monotonic() + 5
        while not until(results) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        task.cancel()
        scheduler.close()

    asyncio.run(main())
    return engine, results, dropped


def test_full_batch_flushes_without_waiting_for_the_delay() -> None:
    settings = SchedulerSettings(max_batch=4, max_delay_ms=1000)
    start = time.monotonic()
    _, results, _ = run_scheduler(settings, lambda s: [s.submit(crop("a", t, 10 * t)) for t in range(4)], lambda r: r)
    assert time.monotonic() - start < 0.5
    assert [len(crops) for crops, _ in results] == [4]
    crops, out = results[0]
    assert np.allclose(out.prob, [c.crop.mean() / 255 for c in crops])


def test_a_lone_face_is_scored_without_waiting_for_the_delay() -> None:
    settings = SchedulerSettings(max_batch=8, max_delay_ms=1000)
    start = time.monotonic()
    _, results, _ = run_scheduler(settings, lambda s: s.submit(crop("a", 0, 1)), lambda r: r)
    assert [len(crops) for crops, _ in results] == [1]
    assert time.monotonic() - start < 0.5


def test_partial_batch_waits_up_to_max_delay_for_a_recently_active_face() -> None:
    engine = BrightnessEngine()
    batches: list[tuple[float, int]] = []

    async def main() -> None:
        settings = SchedulerSettings(max_batch=8, max_delay_ms=80)
        scheduler = BatchScheduler(engine, settings, lambda crops, out, t: batches.append((time.monotonic(), len(crops))), print)
        task = asyncio.create_task(scheduler.run())
        for track in range(3):  # three faces are active ...
            scheduler.submit(crop("a", track, 1))
        while not batches:
            await asyncio.sleep(0.001)
        submitted = time.monotonic()
        for track in range(2):  # ... then only two of them send a crop: the third is waited for, up to the delay
            scheduler.submit(crop("a", track, 2))
        while len(batches) < 2:
            await asyncio.sleep(0.001)
        task.cancel()
        scheduler.close()
        assert batches[1][1] == 2 and batches[1][0] - submitted >= 0.07

    asyncio.run(main())
    assert [n for _, n in batches] == [3, 2]


def test_batches_are_fair_across_streams() -> None:
    def submit(s: BatchScheduler) -> None:
        for track in range(6):
            s.submit(crop("busy", track, 1))
        s.submit(crop("quiet", 0, 2))

    settings = SchedulerSettings(max_batch=4, max_delay_ms=0)
    _, results, _ = run_scheduler(settings, submit, lambda r: sum(len(c) for c, _ in r) == 7)
    first = [c.stream_id for c in results[0][0]]
    assert "quiet" in first and len(first) == 4


def test_backpressure_drops_the_oldest_crops_of_a_track() -> None:
    settings = SchedulerSettings(max_batch=8, max_delay_ms=0, max_pending_per_track=2)
    _, results, dropped = run_scheduler(settings, lambda s: [s.submit(crop("a", 0, v)) for v in range(5)], lambda r: r)
    assert [c.seq for c in dropped] == [0, 1, 2]
    assert [c.seq for c in results[0][0]] == [3, 4]
