"""WebRTC ingest against a real aiortc publisher over loopback and a real aiohttp server (no mocks).

Both peers run in this test process, so making aioice gather 127.0.0.1 (it leaves loopback out of its host
candidates) affects exactly these two peers; see DESIGN.md, "WebRTC / WHIP with aiortc on loopback".
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import numpy as np
import pytest
from aiohttp import web
from aiortc import RTCSessionDescription

from streamguard.assets import AssetMissing, sample_video
from streamguard.contracts import Frame
from streamguard.ingest.base import LatestFrame
from streamguard.ingest.webrtc import WebRtcIngest
from tests.support import make_publisher

FRAME_TIMEOUT_S = 8.0  # first frame arrives in ~0.1 s on an idle machine; the CPU here is shared


@pytest.fixture
def video_path() -> Path:
    try:
        return sample_video()
    except AssetMissing as exc:
        pytest.skip(f"sample media missing: {exc}")


@dataclass
class Streams:
    """What the service would do with the callbacks: remember the slots, record the ends."""

    slots: dict[str, LatestFrame] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)

    def on_stream(self, stream_id: str, slot: LatestFrame) -> None:
        self.slots[stream_id] = slot

    def on_stream_end(self, stream_id: str) -> None:
        self.ended.append(stream_id)


@asynccontextmanager
async def serving(ingest: WebRtcIngest, prefix: str = "") -> AsyncIterator[str]:
    app = web.Application()
    ingest.add_routes(app, prefix)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}{prefix}"
    finally:
        await runner.cleanup()  # runs on_shutdown, which closes the ingest


async def next_frame(slot: LatestFrame) -> Frame:
    frame = await asyncio.wait_for(slot.get(), FRAME_TIMEOUT_S)
    assert frame is not None
    return frame


async def eventually(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def error_body(response: aiohttp.ClientResponse) -> dict[str, Any]:
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error", "detail"}
    return body


def test_whip_publish_delivers_frames_and_data_channel_events(loopback_ice: None, video_path: Path) -> None:
    async def main() -> None:
        streams = Streams()
        ingest = WebRtcIngest(streams.on_stream, streams.on_stream_end)
        async with serving(ingest, "/ingest") as base, aiohttp.ClientSession() as http:
            client = await make_publisher(video_path)
            t0 = time.time()
            async with http.post(f"{base}/whip", data=client.pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}) as r:
                t_answer = time.time()
                assert r.status == 201
                assert r.headers["Content-Type"] == "application/sdp"
                location = r.headers["Location"]
                answer = await r.text()
            session_id = location.rsplit("/", 1)[1]
            assert location == f"/ingest/whip/{session_id}"
            await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

            (stream_id,) = streams.slots
            assert stream_id == session_id  # no ?stream_id: the session id names the stream
            slot = streams.slots[stream_id]
            frame = await next_frame(slot)
            print(f"\nWHIP POST round trip {t_answer - t0:.3f} s, first frame {frame.received_ts - t0:.3f} s after the POST")
            assert frame.image.shape == (360, 640, 3) and frame.image.dtype == np.uint8
            assert frame.stream_id == stream_id and frame.capture_ts is None and frame.pts is not None
            assert frame.image.std() > 5  # real picture, not a blank frame
            later = await next_frame(slot)
            assert later.seq > frame.seq and later.received_ts >= frame.received_ts

            (row,) = ingest.sessions
            assert row["stream_id"] == stream_id and row["state"] == "connected" and row["codec"] == "video/VP8"
            assert row["frames_received"] >= 2

            event = {"stream_id": stream_id, "track_id": 1, "level": "alert", "score": 0.97}
            await eventually(lambda: ingest.send_event(stream_id, event))  # False until the SCTP channel is open
            assert json.loads(await asyncio.wait_for(client.messages.get(), 5.0)) == event
            assert not ingest.send_event("no-such-stream", event)

            server_pc = ingest._by_session[session_id].pc
            origin = base.removesuffix("/ingest")
            async with http.delete(origin + location) as r:
                assert r.status == 200
            assert ingest.sessions == [] and streams.ended == [stream_id]
            assert server_pc.connectionState == "closed"
            assert not ingest.send_event(stream_id, event)
            while await asyncio.wait_for(slot.get(), 1.0) is not None:  # the slot is closed: drains, then None
                pass
            async with http.delete(origin + location) as r:
                assert r.status == 404
                await error_body(r)
            await client.close()
        assert streams.ended == [stream_id]  # shutdown does not end it twice

    asyncio.run(main())


def test_whip_publish_with_h264_delivers_frames(loopback_ice: None, video_path: Path) -> None:
    async def main() -> None:
        streams = Streams()
        ingest = WebRtcIngest(streams.on_stream, streams.on_stream_end)
        async with serving(ingest) as base, aiohttp.ClientSession() as http:
            client = await make_publisher(video_path, codec="video/H264")
            assert "H264" in client.pc.localDescription.sdp and "VP8" not in client.pc.localDescription.sdp
            url = f"{base}/whip?stream_id=cam-h264"
            async with http.post(url, data=client.pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}) as r:
                assert r.status == 201
                answer = await r.text()
            await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            frame = await next_frame(streams.slots["cam-h264"])
            assert frame.stream_id == "cam-h264" and frame.image.shape == (360, 640, 3)
            assert ingest.sessions[0]["codec"] == "video/H264"
            await client.close()
        assert streams.ended == ["cam-h264"]
        assert ingest.sessions == []

    asyncio.run(main())


def test_json_offer_delivers_frames_and_peer_close_ends_session(loopback_ice: None, video_path: Path) -> None:
    async def main() -> None:
        streams = Streams()
        ingest = WebRtcIngest(streams.on_stream, streams.on_stream_end, max_fps=6.0)
        async with serving(ingest) as base, aiohttp.ClientSession() as http:
            client = await make_publisher(video_path)
            offer = {"sdp": client.pc.localDescription.sdp, "type": "offer"}
            async with http.post(f"{base}/offer", json=offer) as r:
                assert r.status == 200
                body = await r.json()
            assert body["type"] == "answer" and body["session_id"] in streams.slots
            await client.pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))
            slot = streams.slots[body["session_id"]]
            first = await next_frame(slot)
            await asyncio.sleep(2.0)
            n = slot.stats.frames_received
            # the source sends 24 fps; the cap admits 6 per second (+1 for the first frame, + slack for jitter)
            assert 1 <= n - 1 <= 6 * (time.time() - first.received_ts) + 2

            await client.close()  # no DELETE: the peer's DTLS close makes the server side "closed"
            await eventually(lambda: streams.ended == [body["session_id"]], timeout_s=10.0)
            assert ingest.sessions == []

    asyncio.run(main())


def test_bad_requests_get_json_errors_and_service_keeps_serving(loopback_ice: None, video_path: Path) -> None:
    async def main() -> None:
        streams = Streams()
        ingest = WebRtcIngest(streams.on_stream, streams.on_stream_end)
        sdp = {"Content-Type": "application/sdp"}
        async with serving(ingest) as base, aiohttp.ClientSession() as http:
            for data in ("this is not SDP", "", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video"):
                async with http.post(f"{base}/whip", data=data, headers=sdp) as r:
                    assert r.status == 400, data
                    await error_body(r)
            async with http.post(f"{base}/whip", data="v=0", headers={"Content-Type": "text/plain"}) as r:
                assert r.status == 415
                assert "application/sdp" in (await error_body(r))["detail"]
            async with http.post(f"{base}/offer", data="{not json", headers={"Content-Type": "application/json"}) as r:
                assert r.status == 400
                assert (await error_body(r))["error"] == "bad JSON"
            async with http.post(f"{base}/offer", json={"sdp": 3, "type": "offer"}) as r:
                assert r.status == 400
                await error_body(r)
            async with http.delete(f"{base}/whip/unknown-session") as r:
                assert r.status == 404
                await error_body(r)
            assert ingest.sessions == [] and streams.slots == {}

            client = await make_publisher(video_path)
            async with http.post(f"{base}/whip?stream_id=cam1", data=client.pc.localDescription.sdp, headers=sdp) as r:
                assert r.status == 201
                location, answer = r.headers["Location"], await r.text()
            await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            frame = await next_frame(streams.slots["cam1"])
            assert frame.image.shape == (360, 640, 3)

            async with http.patch(f"{base}{location}", data="a=ice-ufrag:x", headers=sdp) as r:
                assert r.status == 405
                await error_body(r)
            other = await make_publisher(None)
            async with http.post(f"{base}/whip?stream_id=cam1", data=other.pc.localDescription.sdp, headers=sdp) as r:
                assert r.status == 409  # one publisher per stream id
                await error_body(r)
            async with http.post(f"{base}/whip?stream_id=bad/id", data=other.pc.localDescription.sdp, headers=sdp) as r:
                assert r.status == 400
                await error_body(r)
            await other.close()
            assert len(ingest.sessions) == 1 and ingest.sessions[0]["state"] == "connected"
            await next_frame(streams.slots["cam1"])  # still flowing after all that
            await client.close()

    asyncio.run(main())


def test_reaper_closes_session_that_never_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    # No host addresses at all (as in a namespace with only `lo`): neither peer has a candidate, the server's
    # connection stays "new" and never reports "failed", so only the reaper can end it.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [])

    async def main() -> None:
        streams = Streams()
        ingest = WebRtcIngest(streams.on_stream, streams.on_stream_end, connect_timeout_s=1.0)
        async with serving(ingest) as base, aiohttp.ClientSession() as http:
            client = await make_publisher(None)
            t0 = time.monotonic()
            sdp = {"Content-Type": "application/sdp"}
            async with http.post(f"{base}/whip", data=client.pc.localDescription.sdp, headers=sdp) as r:
                assert r.status == 201
                session_id = r.headers["Location"].rsplit("/", 1)[1]
            server_pc = ingest._by_session[session_id].pc
            await asyncio.sleep(0.5)
            assert [s["state"] for s in ingest.sessions] == ["new"] and streams.ended == []
            await eventually(lambda: streams.ended == [session_id], timeout_s=5.0)
            assert time.monotonic() - t0 >= 1.0
            assert ingest.sessions == []
            await eventually(lambda: server_pc.connectionState == "closed")  # on_stream_end comes first, then the close
            assert await asyncio.wait_for(streams.slots[session_id].get(), 1.0) is None
            await client.close()

    asyncio.run(main())
