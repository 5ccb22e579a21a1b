"""Video files as frame sources: decoding, subsampling, clear errors, and real-time playback into a LatestFrame."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from streamguard import assets
from streamguard.contracts import Frame, now
from streamguard.ingest.base import LatestFrame, SourceStats
from streamguard.ingest.file import FileSource, PtsSampler, probe, read_frames

pytestmark = pytest.mark.skipif(bool(assets.missing()), reason="sample assets missing: run `streamguard assets fetch`")


@pytest.fixture(scope="module")
def video() -> Path:
    return assets.asset_path("media/single_face.mp4")  # 640x360, 30 fps, 72 frames, 2.4 s


@pytest.fixture(scope="module")
def short_clip(video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 9 frames of the sample (0.3 s at 30 fps), re-encoded: short enough to play through, and to loop."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for frame in itertools.islice(read_frames(video), 9):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def file_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("file-")]


# --- read_frames / probe ---


def test_probe_reports_size_rate_duration_and_frames(video: Path) -> None:
    info = probe(video)
    assert (info.width, info.height, info.fps, info.frames) == (640, 360, 30.0, 72)
    assert info.duration_s == pytest.approx(2.4, abs=0.05)


def test_reads_every_frame_as_rgb_with_increasing_pts(video: Path) -> None:
    start = now()
    frames = list(read_frames(video, stream_id="cam"))
    assert len(frames) == 72
    assert [f.seq for f in frames] == list(range(72))
    assert all(f.stream_id == "cam" and f.capture_ts is None for f in frames)
    assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    pts = [f.pts for f in frames]
    assert pts[0] == 0.0 and all(p is not None for p in pts)
    assert all(b > a for a, b in itertools.pairwise(pts))  # type: ignore[operator]
    assert pts[-1] == pytest.approx(71 / 30)
    assert start <= frames[0].received_ts <= frames[-1].received_ts <= now()
    mean = frames[0].image.reshape(-1, 3).mean(axis=0)
    assert mean.min() > 20 and mean.max() < 235  # a real picture, not a blank or a mis-strided buffer


def test_max_fps_keeps_at_most_that_many_frames_per_second_of_video(video: Path) -> None:
    frames = list(read_frames(video, max_fps=10))
    assert len(frames) == 24
    pts = np.array([f.pts for f in frames])
    assert np.diff(pts).min() >= 0.1 - 1e-6
    assert [f.seq for f in frames] == list(range(24))  # seq counts frames given out, not frames decoded
    assert len(list(read_frames(video, max_fps=100))) == 72
    with pytest.raises(ValueError, match="max_fps"):
        read_frames(video, max_fps=0)


def test_pts_sampler_spreads_frames_and_restarts_after_a_jump() -> None:
    sampler = PtsSampler(10)
    kept = [k / 24 for k in range(48) if sampler.keep(k / 24)]
    assert len(kept) == 20  # 24 fps capped at 10 fps: 10 per second, not 8
    assert sampler.keep(0.0)  # pts jumped back (a loop): start again instead of waiting 2 s
    assert not sampler.keep(1 / 24)
    assert sampler.keep(None)  # no pts: nothing to decide on
    assert all(PtsSampler(None).keep(t) for t in (0.0, 0.001, 0.002))


def test_missing_file_raises_file_not_found_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    for call in (lambda: read_frames(missing), lambda: probe(missing), lambda: FileSource(missing)):
        with pytest.raises(FileNotFoundError) as err:
            call()
        assert str(missing) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_file_raises_value_error_naming_it(tmp_path: Path) -> None:
    corrupt = tmp_path / "x.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 64_000, dtype=np.uint8).tobytes())
    for call in (lambda: read_frames(corrupt), lambda: probe(corrupt), lambda: FileSource(corrupt)):
        with pytest.raises(ValueError) as err:
            call()
        assert str(corrupt) in str(err.value) and "\n" not in str(err.value)
    assert not isinstance(err.value, av.FFmpegError)  # wrapped, not PyAV's own error


def test_file_without_video_raises_value_error(tmp_path: Path) -> None:
    sound = tmp_path / "tone.wav"
    with wave.open(str(sound), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(os.urandom(1600))
    with pytest.raises(ValueError, match="no video stream"):
        read_frames(sound)


# --- FileSource: real-time playback ---


async def ticker(gaps: list[float], stop: asyncio.Event) -> None:
    """Measure how long the event loop goes without running this task: the loop must never block on decoding."""
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        gaps.append(time.monotonic() - last)
        last = time.monotonic()


def test_file_source_plays_the_first_second_at_real_time(video: Path) -> None:
    async def main() -> tuple[list[Frame], float, list[float], SourceStats]:
        slot = LatestFrame(SourceStats())
        source = FileSource(video, stream_id="cam")
        gaps: list[float] = []
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(gaps, stop))
        task = asyncio.create_task(source.run(slot))
        frames: list[Frame] = []
        while (frame := await slot.get()) is not None:
            frames.append(frame)
            if frame.pts is not None and frame.pts >= 1.0:
                break
        elapsed = frames[-1].received_ts - frames[0].received_ts
        source.stop()
        await asyncio.wait_for(task, 1.0)
        stop.set()
        await tick
        assert await slot.get() is None  # run() closed the slot
        return frames, elapsed, gaps, slot.stats

    frames, elapsed, gaps, stats = asyncio.run(main())
    last_pts = frames[-1].pts
    assert last_pts is not None and 1.0 <= last_pts < 1.1
    assert elapsed == pytest.approx(last_pts, abs=0.15)  # paced by pts, not as fast as decoding goes
    assert stats.frames_received >= 30 and len(frames) + stats.frames_dropped >= 30
    assert [f.seq for f in frames] == sorted(f.seq for f in frames)
    for f in frames:
        assert f.capture_ts is not None and 0 <= f.received_ts - f.capture_ts < 0.1
    assert max(gaps) < 0.2  # blocked by decoding, it would stall for the whole second
    assert not file_threads()


def test_file_source_closes_the_slot_after_the_last_frame(short_clip: Path) -> None:
    async def main() -> tuple[list[Frame], SourceStats]:
        slot = LatestFrame(SourceStats())
        task = asyncio.create_task(FileSource(short_clip).run(slot))
        frames: list[Frame] = []
        while (frame := await slot.get()) is not None:
            frames.append(frame)
        await asyncio.wait_for(task, 1.0)
        return frames, slot.stats

    start = time.monotonic()
    frames, stats = asyncio.run(main())
    assert 0.25 < time.monotonic() - start < 1.5
    assert stats.frames_received == 9 and len(frames) + stats.frames_dropped == 9
    assert frames[-1].seq == 8


def test_file_source_loops_with_increasing_pts_until_cancelled(short_clip: Path) -> None:
    async def main() -> tuple[list[Frame], int]:
        slot = LatestFrame(SourceStats())
        source = FileSource(short_clip, loop=True)
        task = asyncio.create_task(source.run(slot))
        frames: list[Frame] = []
        while len(frames) < 20:
            frame = await slot.get()
            assert frame is not None
            frames.append(frame)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return frames, source.passes

    frames, passes = asyncio.run(main())
    assert passes >= 3
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))  # type: ignore[operator]
    assert np.diff(np.array(pts)).max() < 0.1  # one frame interval at the seam, no jump back to 0
    assert [f.seq for f in frames] == list(range(frames[0].seq, frames[0].seq + 20))
    assert not file_threads()  # cancellation waited for the decoder thread


def test_file_source_run_raises_when_the_file_became_unreadable(tmp_path: Path, short_clip: Path) -> None:
    path = tmp_path / "changing.mp4"
    path.write_bytes(short_clip.read_bytes())
    source = FileSource(path, loop=True)  # fine when configured ...
    path.write_bytes(b"not a video any more" * 100)  # ... replaced before run() opens it

    async def main() -> None:
        await source.run(LatestFrame(SourceStats()))

    with pytest.raises(ValueError, match=r"changing\.mp4"):
        asyncio.run(main())
