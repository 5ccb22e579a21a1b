"""The HTTP face of ``streamguard serve`` (aiohttp): streams API, stats, metrics, events, WHIP."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Middleware
from pydantic import ValidationError

from streamguard.alerts import AlertHub
from streamguard.config import Config, StreamSettings, describe
from streamguard.faces import FaceStage
from streamguard.ingest.base import LatestFrame
from streamguard.metrics import CONTENT_TYPE, Metrics
from streamguard.pipeline import Pipeline, StreamError
from streamguard.runtime import Detector

log = logging.getLogger("streamguard.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SERVICE: web.AppKey[Service] = web.AppKey("service")
WEB_DIR = Path(__file__).with_name("web")  # the browser client: index.html, streamguard.js, style.css
KEEPALIVE_S = 15.0
OPEN_PATHS = ("/healthz", "/")  # no token needed: the page and static files hold no secrets
OPEN_PREFIXES = ("/static/",)


def json_error(status: int, error: str, detail: str = "") -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


class Service:
    """Everything ``serve`` runs, wired together; ``start`` / ``close`` bracket its life."""

    def __init__(self, config: Config, engine: Detector, faces: FaceStage) -> None:
        from streamguard.ingest.webrtc import WebRtcIngest

        self.config = config
        self.metrics = Metrics()
        self.alerts = AlertHub(config.alerts, on_webhook_failure=self.metrics.webhook_failures.inc)
        self.pipeline = Pipeline(config, engine, faces, self.alerts, self.metrics)
        self.webrtc = WebRtcIngest(
            on_stream=self._on_webrtc_stream,
            on_stream_end=self._on_webrtc_end,
            ice_servers=list(config.server.ice_servers),
            max_fps=config.scheduler.stream_fps * 2,
        )
        self.alerts.peer_senders.append(self.webrtc.send_event)

    def _on_webrtc_stream(self, stream_id: str, slot: LatestFrame) -> None:
        self.pipeline.add_stream(stream_id, "webrtc", None, None, slot)

    def _on_webrtc_end(self, stream_id: str) -> None:
        if stream_id in self.pipeline.streams:
            asyncio.get_running_loop().create_task(self.pipeline.remove_stream(stream_id))

    async def start(self) -> None:
        await self.pipeline.start()
        for stream in self.config.streams:
            self.pipeline.add_configured(stream)

    async def close(self) -> None:
        await self.webrtc.close()
        await self.pipeline.close()
        await self.alerts.close()


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return json_error(exc.status, exc.reason, exc.text or "")
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return json_error(500, "internal error", "see the service log")


def bearer_auth(token: str | None) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and request.path not in OPEN_PATHS and not request.path.startswith(OPEN_PREFIXES):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return json_error(401, "unauthorized", "send Authorization: Bearer <token>")
        return await handler(request)

    return check


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[SERVICE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def stats(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response({**service.pipeline.stats(), "webrtc_sessions": service.webrtc.sessions})


async def list_streams(request: web.Request) -> web.Response:
    pipeline = request.app[SERVICE].pipeline
    return web.json_response({"streams": [{"id": s.stream_id, "source": s.source, "url": s.url} for s in pipeline.streams.values()]})


async def add_stream(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error(400, "invalid JSON", 'expected {"id": ..., "url": ..., "fps": ...}')
    try:
        settings = StreamSettings.model_validate(body)
    except ValidationError as exc:
        return json_error(400, "invalid stream", describe(exc))
    try:
        request.app[SERVICE].pipeline.add_configured(settings)
    except StreamError as exc:
        return json_error(409, "stream exists", str(exc))
    except (ValueError, FileNotFoundError) as exc:
        return json_error(400, "invalid stream", str(exc))
    return web.json_response({"id": settings.id, "url": settings.url}, status=201)


async def remove_stream(request: web.Request) -> web.Response:
    try:
        await request.app[SERVICE].pipeline.remove_stream(request.match_info["stream_id"])
    except StreamError as exc:
        return json_error(404, "unknown stream", str(exc))
    return web.Response(status=204)


async def events(request: web.Request) -> web.StreamResponse:
    """Verdict events as Server-Sent Events, or over a WebSocket when the client asks to upgrade. A quiet stream
    still sends an SSE comment every KEEPALIVE_S, which is how a vanished client is noticed."""
    hub = request.app[SERVICE].alerts
    subscription = hub.subscribe(request.query.get("stream_id"))
    try:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse(heartbeat=KEEPALIVE_S)
            await ws.prepare(request)
            reader = asyncio.create_task(_drain(ws))
            try:
                while not ws.closed and (event := await subscription.next(KEEPALIVE_S)) is not None:
                    if event != "idle":
                        await ws.send_json(event)
            finally:
                reader.cancel()
                await ws.close()
            return ws
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(b": connected\n\n")
        while (event := await subscription.next(KEEPALIVE_S)) is not None:
            await response.write(b": idle\n\n" if event == "idle" else f"event: verdict\ndata: {json.dumps(event)}\n\n".encode())
        return response
    except ConnectionResetError:  # the client went away: nothing to answer
        return web.Response(status=499)
    finally:
        hub.unsubscribe(subscription)


async def _drain(ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type == WSMsgType.ERROR:
            break


def create_app(service: Service) -> web.Application:
    app = web.Application(middlewares=[errors_as_json, bearer_auth(service.config.server.auth_token)])
    app[SERVICE] = service
    app.router.add_get("/", index)
    app.router.add_static("/static/", WEB_DIR)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/api/streams", list_streams)
    app.router.add_post("/api/streams", add_stream)
    app.router.add_delete("/api/streams/{stream_id}", remove_stream)
    app.router.add_get("/api/events", events)
    service.webrtc.add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.close()

    app.cleanup_ctx.append(lifecycle)

    async def end_event_streams(app: web.Application) -> None:  # before aiohttp waits for open handlers
        service.alerts.end_subscriptions()

    app.on_shutdown.append(end_event_streams)
    return app
