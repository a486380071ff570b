"""A front door's subscription to one live response: its events, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from parley._types import AnyEvent, DoneEvent


class Subscription:
    """Subscribed to a live response (``Daemon.prompt(subscription, …)``), it queues what the
    response emits; ``events()`` yields them until ``done``. The queue is unbounded: an HTTP
    response is read by one client, at its own pace. ``barrier``: the group commit's, passed
    before ``done`` is handed on, so that its record is committed by the time a client sees it."""

    def __init__(self, barrier: Callable[[], None]) -> None:
        self._queue: asyncio.Queue[AnyEvent] = asyncio.Queue()
        self._barrier = barrier

    def send_event(self, response_id: str, seq: int, message: bytes, event: AnyEvent) -> bool:
        self._queue.put_nowait(event)
        return True

    async def events(self) -> AsyncIterator[AnyEvent]:
        while True:
            event = await self._queue.get()
            if isinstance(event, DoneEvent):
                self._barrier()
                yield event
                return
            yield event
