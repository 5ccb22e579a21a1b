"""WebRTC ingest: WHIP (RFC 9725) and the JSON ``/offer`` of aiortc's examples, one peer connection per published stream.

Each session's video track is read through ``MediaRelay(buffered=False)`` (aiortc's receive queues are unbounded, so a
slow reader would lag further and further behind) into a ``LatestFrame`` slot. Verdicts go back on the peer's data
channel. Sessions end on DELETE, on connection state "failed" or "closed" (a vanished peer reads "closed" about 30 s
later), on a connect timeout (a peer that never connects stays "new" forever), and on ``close()``.
See DESIGN.md, "WebRTC / WHIP with aiortc on loopback".
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription

from streamguard.contracts import Frame, now
from streamguard.ingest.base import LatestFrame, SourceStats

log = logging.getLogger(__name__)

OnStream = Callable[[str, LatestFrame], None]
OnStreamEnd = Callable[[str], None]

_STREAM_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # stream ids become metric labels and URL parts: keep them tame
_INLINE_RGB_PIXELS = 640 * 480  # below this, converting on the loop is cheaper than a thread hop (0.45 ms at 640x360)
_MAX_CHANNEL_BUFFER_BYTES = 1 << 20  # a peer that stops reading its data channel loses events instead of growing memory


@dataclass(eq=False)
class _Session:
    session_id: str
    stream_id: str
    pc: RTCPeerConnection
    stats: SourceStats
    slot: LatestFrame
    created_ts: float
    codec: str | None = None
    video: MediaStreamTrack | None = None
    channel: RTCDataChannel | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    announced: bool = False  # on_stream was called, so on_stream_end is owed
    ended: bool = False
    end_reason: str | None = None
    seq: int = 0


class _FpsCap:
    """Admits frames at no more than ``max_fps`` on average, without drifting below it when arrivals jitter."""

    def __init__(self, max_fps: float | None) -> None:
        self._interval = 1.0 / max_fps if max_fps else 0.0
        self._next = 0.0

    def admit(self, t: float) -> bool:
        if t < self._next:
            return False
        self._next = max(self._next + self._interval, t)
        return True


class _HttpError(Exception):
    """A 4xx/5xx answer with the JSON body ``{"error", "detail"}``: bad input is a value, not a traceback."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail

    def response(self) -> web.Response:
        return web.json_response({"error": self.error, "detail": self.detail}, status=self.status)


class WebRtcIngest:
    """Accepts published WebRTC video (WHIP or JSON offer) and hands each stream's frames to the pipeline.

    ``on_stream(stream_id, slot)`` is called once a session is accepted (before its answer is sent) and
    ``on_stream_end(stream_id)`` exactly once when it ends, whatever the reason.
    """

    def __init__(
        self,
        on_stream: OnStream,
        on_stream_end: OnStreamEnd,
        ice_servers: Sequence[str | RTCIceServer] = (),
        connect_timeout_s: float = 20.0,
        max_fps: float | None = None,
        max_sessions: int = 32,
    ) -> None:
        if max_fps is not None and max_fps <= 0:
            raise ValueError(f"max_fps must be positive or None, got {max_fps}")
        self._on_stream = on_stream
        self._on_stream_end = on_stream_end
        self._ice_servers = [s if isinstance(s, RTCIceServer) else RTCIceServer(urls=s) for s in ice_servers]
        self.connect_timeout_s = connect_timeout_s
        self.max_fps = max_fps
        self.max_sessions = max_sessions
        self._relay = MediaRelay()
        self._by_session: dict[str, _Session] = {}
        self._by_stream: dict[str, _Session] = {}
        self._closing: set[asyncio.Task[None]] = set()  # strong references to peer-connection closes in flight
        self._closed = False

    # ---- HTTP -------------------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application, prefix: str = "") -> None:
        """WHIP at ``{prefix}/whip`` and ``{prefix}/whip/{session_id}``, JSON offers at ``{prefix}/offer``.
        Also closes every session on the app's shutdown."""
        app.router.add_post(f"{prefix}/whip", self._handle_whip_post)
        app.router.add_delete(f"{prefix}/whip/{{session_id}}", self._handle_whip_delete)
        app.router.add_patch(f"{prefix}/whip/{{session_id}}", self._handle_whip_patch)
        app.router.add_post(f"{prefix}/offer", self._handle_json_offer)
        app.on_shutdown.append(self._on_app_shutdown)

    async def _handle_whip_post(self, request: web.Request) -> web.Response:
        try:
            if request.content_type != "application/sdp":
                raise _HttpError(415, "unsupported media type", f"a WHIP offer is application/sdp, got {request.content_type!r}")
            offer = _decode_utf8(await request.read())
            session, answer = await self._accept(offer, request.query.get("stream_id"))
        except _HttpError as exc:
            return exc.response()
        headers = {"Location": f"{request.path.rstrip('/')}/{session.session_id}"}
        links = _ice_server_links(self._ice_servers)
        response = web.Response(status=201, body=answer.encode(), content_type="application/sdp", headers=headers)
        for link in links:  # RFC 9725 section 4.6: tell the client which STUN/TURN servers to use
            response.headers.add("Link", link)
        return response

    async def _handle_json_offer(self, request: web.Request) -> web.Response:
        try:
            if request.content_type != "application/json":
                raise _HttpError(415, "unsupported media type", f"expected application/json, got {request.content_type!r}")
            body = _parse_json_offer(await request.read())
            stream_id = body.get("stream_id") or request.query.get("stream_id")
            if stream_id is not None and not isinstance(stream_id, str):
                raise _HttpError(400, "bad stream id", "stream_id must be a string")
            session, answer = await self._accept(body["sdp"], stream_id)
        except _HttpError as exc:
            return exc.response()
        return web.json_response({"sdp": answer, "type": "answer", "session_id": session.session_id, "stream_id": session.stream_id})

    async def _handle_whip_delete(self, request: web.Request) -> web.Response:
        session = self._by_session.get(request.match_info["session_id"])
        if session is None:
            return _HttpError(404, "no such session", f"session {request.match_info['session_id']!r} is unknown or has ended").response()
        await self._end(session, "deleted")
        return web.Response(status=200)

    async def _handle_whip_patch(self, request: web.Request) -> web.Response:
        """No trickle ICE and no ICE restarts: the answer already carries every candidate (RFC 9725 allows 405)."""
        if request.match_info["session_id"] not in self._by_session:
            return _HttpError(404, "no such session", f"session {request.match_info['session_id']!r} is unknown or has ended").response()
        response = _HttpError(405, "method not allowed", "trickle ICE and ICE restarts are not supported").response()
        response.headers["Allow"] = "DELETE"
        return response

    async def _on_app_shutdown(self, app: web.Application) -> None:
        await self.close()

    # ---- sessions ---------------------------------------------------------------------------------------------

    async def _accept(self, offer_sdp: str, stream_id: str | None) -> tuple[_Session, str]:
        """Negotiate one offer; returns the session and the answer SDP, or raises _HttpError with nothing left behind."""
        _check_offer(offer_sdp)
        session_id = secrets.token_urlsafe(12)
        stream_id = self._check_admission(stream_id or session_id)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self._ice_servers)))
        stats = SourceStats()
        session = _Session(session_id, stream_id, pc, stats, LatestFrame(stats), created_ts=now())
        self._by_session[session_id] = session  # registered before the first await: a racing POST gets its 409
        self._by_stream[stream_id] = session
        self._wire(session)
        try:
            answer = await self._negotiate(session, offer_sdp)
        except BaseException as exc:  # a cancelled request too: nothing may stay registered
            await self._end(session, "negotiation failed")
            if not isinstance(exc, Exception):
                raise
            # aiortc raises many kinds (ValueError, OperationError, KeyError, ...) on odd but parseable SDP
            raise _HttpError(400, "offer rejected", _describe(exc)) from exc
        try:
            self._on_stream(stream_id, session.slot)
            session.announced = True
        except Exception as exc:
            log.exception("on_stream(%s) failed", stream_id)
            await self._end(session, "registration failed")
            raise _HttpError(503, "stream not registered", _describe(exc)) from exc
        self._spawn(session, self._reap_if_unconnected(session))
        log.info("webrtc session %s: stream %s accepted (%s)", session_id, stream_id, session.codec)
        return session, answer

    def _check_admission(self, stream_id: str) -> str:
        if self._closed:
            raise _HttpError(503, "shutting down", "the ingest is closing")
        if not _STREAM_ID.fullmatch(stream_id):
            raise _HttpError(400, "bad stream id", "use 1-64 characters from A-Z a-z 0-9 _ . -")
        if stream_id in self._by_stream:
            raise _HttpError(409, "stream id in use", f"stream {stream_id!r} is already being published")
        if len(self._by_session) >= self.max_sessions:
            raise _HttpError(503, "too many sessions", f"at most {self.max_sessions} sessions at once")
        return stream_id

    def _wire(self, session: _Session) -> None:
        """Peer-connection events: the first video track feeds the slot, a peer-opened data channel carries verdicts."""
        pc = session.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and session.video is None:
                session.video = track
                self._spawn(session, self._read_video(session, track))

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            session.channel = channel

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected":
                session.connected.set()
            elif state in ("failed", "closed"):
                await self._end(session, state)

    async def _negotiate(self, session: _Session, offer_sdp: str) -> str:
        pc = session.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        if session.video is None:
            raise ValueError("the offer sends no video")
        for transceiver in pc.getTransceivers():  # audio and extra video: ask the peer not to send (saves decoding)
            if transceiver.receiver.track is not session.video:
                transceiver.direction = "inactive"
        await pc.setLocalDescription(await pc.createAnswer())  # returns after ICE gathering: no trickle needed
        answer = pc.localDescription.sdp
        session.codec = _negotiated_video_codec(answer)
        return answer

    async def _read_video(self, session: _Session, track: MediaStreamTrack) -> None:
        """Newest decoded frame -> RGB ``Frame`` -> slot, capped at max_fps.

        Waits for "connected" first: the relay's reader of a never-started receiver would wait forever."""
        await session.connected.wait()
        relayed = self._relay.subscribe(track, buffered=False)
        cap = _FpsCap(self.max_fps)
        try:
            while True:
                try:
                    frame = await relayed.recv()
                except MediaStreamError:
                    break
                received_ts = now()
                if not isinstance(frame, av.VideoFrame) or not cap.admit(received_ts):
                    continue
                image = await _to_rgb(frame)
                session.slot.put(Frame(session.stream_id, session.seq, frame.time, None, received_ts, image))
                session.seq += 1
        finally:
            relayed.stop()
        await self._end(session, "track ended")

    async def _reap_if_unconnected(self, session: _Session) -> None:
        await asyncio.sleep(self.connect_timeout_s)
        if not session.connected.is_set():
            log.info("webrtc session %s: not connected after %.1f s, closing", session.session_id, self.connect_timeout_s)
            await self._end(session, "connect timeout")

    def _spawn(self, session: _Session, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    async def _end(self, session: _Session, reason: str) -> None:
        """Idempotent teardown. The bookkeeping is synchronous, so a cancelled caller cannot leave it half done."""
        if session.ended:
            return
        session.ended, session.end_reason = True, reason
        self._by_session.pop(session.session_id, None)
        if self._by_stream.get(session.stream_id) is session:
            del self._by_stream[session.stream_id]
        current = asyncio.current_task()
        for task in list(session.tasks):
            if task is not current:
                task.cancel()
        session.slot.close()
        if session.announced:
            try:
                self._on_stream_end(session.stream_id)
            except Exception:
                log.exception("on_stream_end(%s) failed", session.stream_id)
        log.info("webrtc session %s: stream %s ended (%s)", session.session_id, session.stream_id, reason)
        closing = asyncio.ensure_future(session.pc.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        await asyncio.shield(closing)

    # ---- public -----------------------------------------------------------------------------------------------

    def send_event(self, stream_id: str, event: dict[str, Any]) -> bool:
        """Send ``event`` as JSON text on the stream's data channel; False when there is none open (or it is backed up)."""
        session = self._by_stream.get(stream_id)
        channel = session.channel if session is not None else None
        if channel is None or channel.readyState != "open" or channel.bufferedAmount > _MAX_CHANNEL_BUFFER_BYTES:
            return False
        channel.send(json.dumps(event, default=str))
        return True

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """One JSON-ready row per live session, for /api/stats."""
        t = now()
        return [
            {
                "session_id": s.session_id,
                "stream_id": s.stream_id,
                "state": s.pc.connectionState,
                "codec": s.codec,
                "frames_received": s.stats.frames_received,
                "frames_dropped": s.stats.frames_dropped,
                "data_channel": s.channel is not None and s.channel.readyState == "open",
                "age_s": round(t - s.created_ts, 3),
            }
            for s in self._by_session.values()
        ]

    async def close(self) -> None:
        """End every session and refuse new ones; safe to call more than once."""
        self._closed = True
        await asyncio.gather(*(self._end(s, "ingest closed") for s in list(self._by_session.values())))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


# ---- helpers ------------------------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _HttpError(400, "malformed offer", "the body is not UTF-8 text") from exc


def _parse_json_offer(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _HttpError(400, "bad JSON", str(exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("sdp"), str) or data.get("type") != "offer":
        raise _HttpError(400, "bad offer", 'expected {"sdp": "<offer SDP>", "type": "offer"}')
    return data


def _check_offer(offer_sdp: str) -> None:
    """Cheap checks before a peer connection is spent on the offer."""
    if not offer_sdp.strip():
        raise _HttpError(400, "malformed offer", "the offer is empty")
    try:
        description = SessionDescription.parse(offer_sdp)
    except Exception as exc:  # the SDP parser raises whatever its string handling hits
        raise _HttpError(400, "malformed offer", f"the SDP parser rejected it ({_describe(exc)})") from exc
    if not any(m.kind == "video" for m in description.media):
        raise _HttpError(400, "malformed offer", "the offer has no video m-line")


def _negotiated_video_codec(answer_sdp: str) -> str | None:
    for media in SessionDescription.parse(answer_sdp).media:
        if media.kind == "video" and media.direction != "inactive" and media.rtp.codecs:
            return media.rtp.codecs[0].mimeType
    return None


async def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    if frame.width * frame.height <= _INLINE_RGB_PIXELS:
        return frame.to_ndarray(format="rgb24")
    return await asyncio.to_thread(frame.to_ndarray, format="rgb24")  # 2-5 ms at 720p-1080p: keep the loop free


def _ice_server_links(servers: Sequence[RTCIceServer]) -> list[str]:
    links = []
    for server in servers:
        for url in [server.urls] if isinstance(server.urls, str) else server.urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username is not None and server.credential is not None:
                link += f'; username="{server.username}"; credential="{server.credential}"; credential-type="password"'
            links.append(link)
    return links
