"""Verdict delivery: live subscribers (SSE, WebSocket, data channels), webhooks with retries, and the log.

Every verdict goes to live subscribers; level changes go to the log and to the webhooks whose levels
match. Nothing here may block the pipeline: subscriber queues are bounded (oldest dropped) and webhook
delivery runs in its own task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

import aiohttp

from streamguard.config import AlertSettings, WebhookSettings
from streamguard.contracts import Verdict

log = logging.getLogger("streamguard.alerts")
SUBSCRIBER_QUEUE = 256
WEBHOOK_QUEUE = 1024


class Subscription:
    """A bounded queue of event dicts for one live client, optionally filtered to one stream."""

    def __init__(self, stream_id: str | None) -> None:
        self.stream_id = stream_id
        self.queue: asyncio.Queue[dict | None] = asyncio.Queue(SUBSCRIBER_QUEUE)  # None: the service is stopping
        self.dropped = 0

    def offer(self, event: dict | None) -> None:
        if event is not None and self.stream_id is not None and event["stream_id"] != self.stream_id:
            return
        if self.queue.full():  # a slow client loses its oldest events, never blocks the pipeline
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def next(self, timeout_s: float) -> dict | Literal["idle"] | None:
        """The next event; None once the service stops; "idle" after ``timeout_s`` without one (time to check
        that the client is still there)."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return "idle"


class AlertHub:
    def __init__(self, settings: AlertSettings, on_webhook_failure: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.subscriptions: set[Subscription] = set()
        self.peer_senders: list[Callable[[str, dict], object]] = []  # e.g. WebRTC data channels, keyed by stream
        self.on_webhook_failure = on_webhook_failure
        self._webhook_queue: asyncio.Queue[tuple[WebhookSettings, dict]] = asyncio.Queue(WEBHOOK_QUEUE)
        self._webhook_task: asyncio.Task[None] | None = None

    def subscribe(self, stream_id: str | None = None) -> Subscription:
        subscription = Subscription(stream_id)
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    def end_subscriptions(self) -> None:
        """Tell every live client the service is stopping, so their handlers return at once."""
        for subscription in list(self.subscriptions):
            subscription.offer(None)

    def publish(self, verdict: Verdict) -> None:
        event = verdict.to_dict()
        for subscription in list(self.subscriptions):
            subscription.offer(event)
        for send in self.peer_senders:
            send(verdict.stream_id, event)
        if not verdict.changed:
            return
        if self.settings.log_level_changes:
            log.info("stream %s track %d -> %s (smoothed %.3f)", verdict.stream_id, verdict.track_id, verdict.level.value, verdict.smoothed)
        for hook in self.settings.webhooks:
            if verdict.level in hook.levels:
                self._enqueue_webhook(hook, event)

    def _enqueue_webhook(self, hook: WebhookSettings, event: dict) -> None:
        if self._webhook_task is None:
            self._webhook_task = asyncio.get_running_loop().create_task(self._deliver_webhooks())
        if self._webhook_queue.full():
            log.warning("webhook queue full: dropping an event for %s", hook.url)
            self.on_webhook_failure()
            return
        self._webhook_queue.put_nowait((hook, event))

    async def _deliver_webhooks(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                hook, event = await self._webhook_queue.get()
                await self._post_with_retries(session, hook, event)

    async def _post_with_retries(self, session: aiohttp.ClientSession, hook: WebhookSettings, event: dict) -> None:
        delay = 0.5
        for attempt in range(hook.max_retries + 1):
            try:
                timeout = aiohttp.ClientTimeout(total=hook.timeout_s)
                async with session.post(hook.url, json=event, timeout=timeout) as r:
                    if r.status < 500 and r.status != 429:
                        if r.status >= 400:
                            log.warning("webhook %s answered %d: not retrying", hook.url, r.status)
                            self.on_webhook_failure()
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("webhook %s attempt %d failed: %s", hook.url, attempt + 1, exc)
            if attempt < hook.max_retries:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        log.warning("webhook %s failed after %d attempts", hook.url, hook.max_retries + 1)
        self.on_webhook_failure()

    async def close(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            await asyncio.gather(self._webhook_task, return_exceptions=True)
