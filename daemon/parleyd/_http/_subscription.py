"""A front door's subscription to one live response: its events, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from parley._types import AnyEvent, DoneEvent


class Subscription:
    """Subscribed to a live response (``Daemon.prompt(subscription, …)``), it queues what the
    response emits; ``events()`` yields them until ``done``. The queue is unbounded: an HTTP
    response is read by one client, at its own pace."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[AnyEvent] = asyncio.Queue()

    def send_event(self, response_id: str, seq: int, message: bytes, event: AnyEvent) -> bool:
        self._queue.put_nowait(event)
        return True

    async def events(self) -> AsyncIterator[AnyEvent]:
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, DoneEvent):
                return
