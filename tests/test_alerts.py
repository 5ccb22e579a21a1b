"""Alert delivery against real HTTP receivers on loopback: retries with backoff, give-up counting, and
subscribers that never block the publisher."""

from __future__ import annotations

import asyncio

from aiohttp import web

from streamguard.alerts import SUBSCRIBER_QUEUE, AlertHub
from streamguard.config import AlertSettings, WebhookSettings
from streamguard.contracts import Level, Verdict
from tests.support import free_port


def verdict(level: Level, changed: bool = True, track: int = 1) -> Verdict:
    return Verdict("cam", track, level, 0.9, 0.8, 1_700_000_000_000, 7, (1.0, 2.0, 3.0, 4.0), {"total": 12.0}, changed)


def test_webhook_is_retried_until_delivered_and_a_dead_one_is_counted() -> None:
    received: list[dict] = []
    attempts = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            return web.Response(status=503)
        received.append(await request.json())
        return web.Response(status=204)

    async def main() -> int:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        failures = 0

        def count_failure() -> None:
            nonlocal failures
            failures += 1

        settings = AlertSettings(
            webhooks=[
                WebhookSettings(url=f"http://127.0.0.1:{port}/hook", levels=[Level.ALERT], max_retries=3),
                WebhookSettings(url=f"http://127.0.0.1:{free_port()}/nobody", levels=[Level.ALERT], max_retries=1, timeout_s=1),
            ]
        )
        hub = AlertHub(settings, on_webhook_failure=count_failure)
        hub.publish(verdict(Level.SUSPICIOUS))  # not a level either hook asked for
        hub.publish(verdict(Level.ALERT, changed=False))  # not a change: no webhook
        hub.publish(verdict(Level.ALERT))
        async with asyncio.timeout(20):
            while not (received and failures):
                await asyncio.sleep(0.05)
        await hub.close()
        await runner.cleanup()
        return failures

    failures = asyncio.run(main())
    assert attempts == 3 and len(received) == 1
    assert received[0]["level"] == "alert" and received[0]["stream_id"] == "cam" and received[0]["changed"] is True
    assert failures == 1


def test_a_slow_subscriber_loses_its_oldest_events_and_never_blocks() -> None:
    async def main() -> None:
        hub = AlertHub(AlertSettings(log_level_changes=False))
        slow = hub.subscribe()
        other_stream = hub.subscribe("elsewhere")
        for track in range(SUBSCRIBER_QUEUE + 10):
            hub.publish(verdict(Level.CLEAR, changed=False, track=track))
        assert slow.queue.qsize() == SUBSCRIBER_QUEUE and slow.dropped == 10
        assert (await slow.queue.get())["track_id"] == 10  # the oldest ten were dropped
        assert other_stream.queue.empty()

    asyncio.run(main())
