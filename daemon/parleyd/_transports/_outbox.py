"""The stream transports' writes of one event-loop turn, made together at its end.

Under many streams most turns send an event or two to each of dozens of connections: one
callback for all of them costs less than a callback each.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Flushable(Protocol):
    def flush(self) -> None:
        """Write what was gathered."""


class Outbox:
    def __init__(self) -> None:
        self._waiting: list[Flushable] = []

    def want(self, transport: Flushable) -> None:
        """``transport`` has gathered sends: flush it at the end of this turn (once per turn)."""
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._flush)
        self._waiting.append(transport)

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for transport in waiting:
            transport.flush()
