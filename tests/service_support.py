"""Run a real ``streamguard serve`` service in-process on a free loopback port, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from streamguard.config import Config, parse_config
from streamguard.engine import open_engine
from streamguard.faces import BlazeFaceDetector, FaceStage
from streamguard.server import Service, create_app
from tests.support import free_port


@contextlib.asynccontextmanager
async def running_service(data: dict) -> AsyncIterator[tuple[str, Service]]:
    """Start the service from a config dict; yield its base URL and the Service; stop it afterwards."""
    config: Config = parse_config(data)
    engine = open_engine(config.detector)
    with BlazeFaceDetector() as detector:
        service = Service(config, engine, FaceStage(engine.info.input_size, detector))
        runner = web.AppRunner(create_app(service))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}", service
        finally:
            await runner.cleanup()


async def read_sse_events(session: aiohttp.ClientSession, url: str, count: int, timeout_s: float = 30.0, **kw: object) -> list[dict]:
    """Read ``count`` verdict events from an SSE endpoint."""
    import json

    events: list[dict] = []
    async with asyncio.timeout(timeout_s), session.get(url, **kw) as response:  # type: ignore[arg-type]
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        async for line in response.content:
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
                if len(events) >= count:
                    break
    return events
