"""The live service end to end: a real file stream through real face detection and the ONNX Runtime engine,
verdicts over SSE and WebSocket, stats and metrics, auth, and clear 4xx errors that leave other streams running."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiortc import RTCSessionDescription

from streamguard import assets
from tests.service_support import read_sse_events, running_service
from tests.support import RtspServer, free_port, gst_rtsp_problem, make_publisher, mp4_to_mpegts

pytestmark = pytest.mark.skipif(bool(assets.missing()), reason="assets missing: run `streamguard assets fetch`")
EVENT_KEYS = {"stream_id", "track_id", "level", "score", "smoothed", "timestamp_ms", "seq", "box", "latency_ms", "changed"}


def config(**server: object) -> dict:
    return {
        "streams": [{"id": "cam", "url": str(assets.sample_video()), "fps": 5}],
        "scheduler": {"max_delay_ms": 5},
        "server": server,
    }


def test_file_stream_yields_verdict_events_stats_and_metrics() -> None:
    async def main() -> None:
        async with running_service(config()) as (url, _service), aiohttp.ClientSession() as session:
            events = await read_sse_events(session, f"{url}/api/events", 3)
            assert all(set(e) == EVENT_KEYS and e["stream_id"] == "cam" for e in events)
            assert all(e["level"] in ("clear", "suspicious", "alert") and 0 <= e["score"] <= 1 for e in events)
            assert all(e["latency_ms"]["total"] >= e["latency_ms"]["inference"] > 0 for e in events)
            async with session.get(f"{url}/api/stats") as r:
                stats = await r.json()
            cam = stats["streams"]["cam"]
            assert cam["frames_processed"] > 0 and cam["faces_detected"] > 0 and cam["verdicts"] >= 3
            assert stats["engine"]["backend"] == "onnxruntime" and stats["engine"]["batch_size_last"] >= 1
            async with session.get(f"{url}/metrics") as r:
                text = await r.text()
            assert 'streamguard_frames_processed_total{stream="cam"}' in text
            assert "streamguard_verdict_latency_seconds_bucket" in text
            async with session.ws_connect(f"{url}/api/events?stream_id=cam") as ws:
                event = await asyncio.wait_for(ws.receive_json(), 20)
            assert set(event) == EVENT_KEYS

    asyncio.run(main())


def test_bearer_token_guards_everything_but_healthz() -> None:
    async def main() -> None:
        async with running_service(config(auth_token="s3cret")) as (url, _), aiohttp.ClientSession() as session:
            async with session.get(f"{url}/healthz") as r:
                assert r.status == 200
            for path in ("/api/stats", "/metrics", "/api/streams"):
                async with session.get(f"{url}{path}") as r:
                    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
            async with session.get(f"{url}/api/stats", headers={"Authorization": "Bearer s3cret"}) as r:
                assert r.status == 200

    asyncio.run(main())


def test_bad_requests_get_json_4xx_and_other_streams_keep_running() -> None:
    async def main() -> None:
        async with running_service(config()) as (url, service), aiohttp.ClientSession() as session:
            cases = [
                ("POST", "/api/streams", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid JSON"),
                ("POST", "/api/streams", {"json": {"id": "x", "urll": "rtsp://h/s"}}, 400, "urll: unknown key"),
                ("POST", "/api/streams", {"json": {"id": "cam", "url": "rtsp://127.0.0.1:9/s"}}, 409, "already exists"),
                ("DELETE", "/api/streams/nope", {}, 404, "unknown stream"),
                ("GET", "/no/such/path", {}, 404, "Not Found"),
            ]
            for method, path, kwargs, status, text in cases:
                async with session.request(method, f"{url}{path}", **kwargs) as r:
                    body = await r.json()
                    assert r.status == status, (path, body)
                    assert text in body["error"] + body["detail"], body
            before = service.pipeline.streams["cam"].processed
            await asyncio.sleep(1.5)
            assert service.pipeline.streams["cam"].processed > before

    asyncio.run(main())


def test_streams_can_be_added_and_removed_at_run_time() -> None:
    async def main() -> None:
        async with running_service({"scheduler": {"max_delay_ms": 5}}) as (url, service), aiohttp.ClientSession() as session:
            body = {"id": "late", "url": str(assets.asset_path("media/single_face.mp4")), "fps": 5}
            async with session.post(f"{url}/api/streams", json=body) as r:
                assert r.status == 201
            async with session.get(f"{url}/api/streams") as r:
                assert [s["id"] for s in (await r.json())["streams"]] == ["late"]
            events = await read_sse_events(session, f"{url}/api/events?stream_id=late", 1)
            assert events[0]["stream_id"] == "late"
            async with session.delete(f"{url}/api/streams/late") as r:
                assert r.status == 204
            assert service.pipeline.streams == {}

    asyncio.run(main())


def test_rtsp_stream_is_ingested_and_reconnects_after_the_server_restarts(tmp_path) -> None:
    problem = gst_rtsp_problem()
    if problem:
        pytest.skip(problem)
    server = RtspServer(mp4_to_mpegts(assets.sample_video(), tmp_path / "clip.ts"), free_port())
    server.start()

    async def stats(session: aiohttp.ClientSession, url: str) -> dict:
        async with session.get(f"{url}/api/stats") as r:
            return (await r.json())["streams"]["door"]

    async def main() -> None:
        data = {"streams": [{"id": "door", "url": server.url, "fps": 5}], "scheduler": {"max_delay_ms": 5}}
        async with running_service(data) as (url, _), aiohttp.ClientSession() as session:
            events = await read_sse_events(session, f"{url}/api/events", 2)
            assert {e["stream_id"] for e in events} == {"door"}
            server.kill()
            await asyncio.sleep(2.0)
            server.start()
            async with asyncio.timeout(30):
                while (door := await stats(session, url))["reconnects"] < 1:
                    await asyncio.sleep(0.25)
            processed = door["frames_processed"]
            await read_sse_events(session, f"{url}/api/events", 2)  # verdicts flow again
            door = await stats(session, url)
            assert door["reconnects"] == 1 and door["frames_processed"] > processed
            async with session.get(f"{url}/metrics") as r:
                assert 'streamguard_reconnects_total{stream="door"} 1.0' in await r.text()

    try:
        asyncio.run(main())
    finally:
        server.close()


def test_whip_publisher_gets_verdicts_on_its_data_channel_and_on_api_events(loopback_ice: None) -> None:
    async def main() -> None:
        async with running_service({"scheduler": {"max_delay_ms": 5}}) as (url, service), aiohttp.ClientSession() as session:
            publisher = await make_publisher(assets.sample_video())
            try:
                offer = publisher.pc.localDescription.sdp
                async with session.post(f"{url}/whip?stream_id=call", data=offer, headers={"Content-Type": "application/sdp"}) as r:
                    assert r.status == 201 and r.headers["Content-Type"] == "application/sdp"
                    location, answer = r.headers["Location"], await r.text()
                await publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
                sse = await read_sse_events(session, f"{url}/api/events?stream_id=call", 2)
                assert all(e["stream_id"] == "call" and set(e) == EVENT_KEYS for e in sse)
                on_channel = json.loads(await asyncio.wait_for(publisher.messages.get(), 20))
                assert on_channel["stream_id"] == "call" and set(on_channel) == EVENT_KEYS
                async with session.get(f"{url}/api/stats") as r:
                    assert (await r.json())["streams"]["call"]["source"] == "webrtc"
                async with session.delete(f"{url}{location}") as r:
                    assert r.status in (200, 204)
                async with asyncio.timeout(10):
                    while "call" in service.pipeline.streams or service.webrtc.sessions:
                        await asyncio.sleep(0.05)
            finally:
                await publisher.close()

    asyncio.run(main())
