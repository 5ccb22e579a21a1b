"""RtspSource against a real GstRtspServer on 127.0.0.1: frames, a killed server, a frozen server, nothing listening.

The server (tests/rtsp_server.py) runs under Debian's /usr/bin/python3, because ``gi`` cannot be imported from a
virtualenv; tests that need it are skipped, with the reason, where it or its GStreamer plugins are missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from streamguard.assets import AssetMissing, sample_video
from streamguard.contracts import Frame
from streamguard.ingest.base import LatestFrame
from streamguard.ingest.rtsp import RateCap, RtspSource
from tests.support import RtspServer, free_port, gst_rtsp_problem, mp4_to_mpegts

STOP_LIMIT_S = 1.0  # stop() must be prompt, even while a read is blocked


@pytest.fixture(scope="session")
def gst_rtsp() -> None:
    problem = gst_rtsp_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def ts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        video = sample_video()
    except AssetMissing as exc:
        pytest.skip(str(exc))
    return mp4_to_mpegts(video, tmp_path_factory.mktemp("rtsp") / "clip.ts")


@pytest.fixture
def rtsp_server(gst_rtsp: None, ts_file: Path) -> Iterator[RtspServer]:
    server = RtspServer(ts_file, free_port())
    server.start()
    try:
        yield server
    finally:
        server.close()


@contextlib.asynccontextmanager
async def running(source: RtspSource) -> AsyncIterator[LatestFrame]:
    """Run the source as a task; on exit stop it and insist that run() returns promptly."""
    slot = LatestFrame(source.stats)
    task = asyncio.create_task(source.run(slot))
    try:
        yield slot
    finally:
        source.stop()
        await asyncio.wait_for(task, STOP_LIMIT_S)


async def next_frame(slot: LatestFrame, timeout_s: float = 5.0, after_ts: float = 0.0) -> Frame:
    """The next frame received after wall-clock ``after_ts`` (older ones still in the slot are skipped)."""
    async with asyncio.timeout(timeout_s):
        while True:
            frame = await slot.get()
            assert frame is not None, "the slot closed"
            if frame.received_ts > after_ts:
                return frame


def test_rtsp_source_receives_frames(rtsp_server: RtspServer) -> None:
    async def scenario() -> tuple[list[Frame], float, RtspSource]:
        source = RtspSource("cam", rtsp_server.url)
        t0 = time.monotonic()
        async with running(source) as slot:
            frames = [await next_frame(slot)]
            first_s = time.monotonic() - t0
            assert source.connected
            frames += [await next_frame(slot) for _ in range(11)]
        return frames, first_s, source

    frames, first_s, source = asyncio.run(scenario())
    print(f"open to first frame: {first_s:.3f} s")
    assert first_s < 3.0
    for frame in frames:
        assert frame.stream_id == "cam"
        assert frame.image.shape == (360, 640, 3) and frame.image.dtype.name == "uint8"
    seqs = [f.seq for f in frames]
    assert seqs == sorted(set(seqs)) and seqs[0] == 0
    assert frames[-1].pts is not None and source.last_frame_ts is not None and source.last_frame_ts >= frames[-1].received_ts
    assert not source.connected and source.stats.reconnects == 0 and source.stats.stalls == 0


def test_rtsp_reconnects_after_server_restart(rtsp_server: RtspServer) -> None:
    async def scenario() -> tuple[float, RtspSource]:
        source = RtspSource("cam", rtsp_server.url, read_timeout_s=1.0, reconnect_initial_s=0.25, reconnect_max_s=1.0)
        async with running(source) as slot:
            before = await next_frame(slot)
            rtsp_server.kill()
            killed_at = time.monotonic()
            await asyncio.sleep(2.0)
            assert not source.connected
            await asyncio.to_thread(rtsp_server.start)
            after = await next_frame(slot, timeout_s=10.0, after_ts=time.time())
            assert after.seq > before.seq  # seq runs on across connections
            return time.monotonic() - killed_at, source

    resumed_s, source = asyncio.run(scenario())
    print(f"kill -> restart after 2 s -> first frame again {resumed_s:.2f} s after the kill")
    assert source.stats.reconnects == 1
    assert source.stats.stalls == 0  # a killed server closes the connection: a loss, not a stall


def test_rtsp_frozen_server_counts_a_stall_and_recovers(rtsp_server: RtspServer) -> None:
    async def scenario() -> tuple[float, RtspSource]:
        source = RtspSource("cam", rtsp_server.url, open_timeout_s=2.0, read_timeout_s=1.0, reconnect_initial_s=0.25, reconnect_max_s=1.0)
        async with running(source) as slot:
            await next_frame(slot)
            rtsp_server.signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(3.5)  # ~1 s of buffered frames still arrives, then read_timeout_s of silence
                assert source.stats.stalls == 1
            finally:
                rtsp_server.signal(signal.SIGCONT)
            thawed_at, thawed_ts = time.monotonic(), time.time()
            await next_frame(slot, timeout_s=8.0, after_ts=thawed_ts)
            return time.monotonic() - thawed_at, source

    resumed_s, source = asyncio.run(scenario())
    print(f"frozen 3.5 s -> first frame {resumed_s:.2f} s after SIGCONT")
    assert source.stats.stalls == 1 and source.stats.reconnects == 1


def test_stop_returns_promptly_while_a_read_is_blocked(rtsp_server: RtspServer) -> None:
    async def scenario() -> float:
        source = RtspSource("cam", rtsp_server.url, read_timeout_s=5.0)
        slot = LatestFrame(source.stats)
        task = asyncio.create_task(source.run(slot))
        await next_frame(slot)
        rtsp_server.signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(1.5)  # the buffered frames drain; the reader now waits on a silent socket
            assert source.connected
            t0 = time.monotonic()
            source.stop()
            await asyncio.wait_for(task, STOP_LIMIT_S)
            while await asyncio.wait_for(slot.get(), 0.1) is not None:  # run() closed the slot: it ends after what it holds
                pass
            return time.monotonic() - t0
        finally:
            rtsp_server.signal(signal.SIGCONT)

    stop_s = asyncio.run(scenario())
    assert stop_s < 0.5
    deadline = time.monotonic() + 6.0  # the abandoned reader thread ends by itself within its read timeout
    while any(t.name.startswith("rtsp-cam-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(t.name.startswith("rtsp-cam-") for t in threading.enumerate())


def test_unreachable_rtsp_url_keeps_retrying_without_hanging() -> None:
    async def scenario() -> tuple[float, RtspSource]:
        source = RtspSource("cam", f"rtsp://127.0.0.1:{free_port()}/stream", reconnect_initial_s=0.1, reconnect_max_s=0.4)
        async with running(source):
            await asyncio.sleep(2.0)
            assert not source.connected
            t0 = time.monotonic()
        return time.monotonic() - t0, source

    stop_s, source = asyncio.run(scenario())
    # Waits 0.1, 0.2, 0.4, 0.4, ...: about 5 attempts in 2 s; without backoff it would be 20 or more.
    assert 3 <= source.attempts <= 8
    assert source.backoff_s == 0.4
    assert source.stats.reconnects == 0 and source.stats.frames_received == 0
    assert stop_s < 0.5


@pytest.mark.parametrize("url", ["http://127.0.0.1/stream", "camera.mp4", "rtsp://", "udp://127.0.0.1:5000"])
def test_non_rtsp_url_is_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="not an RTSP URL"):
        RtspSource("cam", url)


@pytest.mark.parametrize("option", [{"max_fps": 0}, {"read_timeout_s": 0}, {"open_timeout_s": -1}])
def test_non_positive_limits_are_rejected(option: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RtspSource("cam", "rtsp://127.0.0.1/stream", **option)


def test_rtsps_and_uppercase_schemes_are_accepted() -> None:
    RtspSource("cam", "rtsps://camera.local:322/live")
    RtspSource("cam", "RTSP://user:pw@10.0.0.5/Streaming/Channels/101")


def test_rate_cap_spreads_frames_evenly() -> None:
    cap = RateCap(10.0)
    passed = [t / 24 for t in range(240) if cap.due(t / 24)]  # 10 s of a 24 fps feed
    assert 99 <= len(passed) <= 101
    gaps = [b - a for a, b in itertools.pairwise(passed)]
    assert max(gaps) < 0.13
    assert all(RateCap(None).due(t / 24) for t in range(48))
