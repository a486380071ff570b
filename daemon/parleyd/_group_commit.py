"""Group commit: the store writes of every live response, one SQLite transaction per tick.

Each live response keeps the events it has not stored yet and asks to be flushed; every
``FLUSH_INTERVAL`` the group flushes all that asked, in one transaction, so a thousand streams
cost twenty commits a second, not twenty thousand. How a response ended is written at once,
in a transaction that takes every pending event with it: by the time a client has read its
``done``, the record is stored, as before.

Crash safety is as before: a response's events reach the disk at most ``FLUSH_INTERVAL``
after they were sent, and each write is its own savepoint, so one that fails (a daemon bug,
logged) loses nothing of the others'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from ._store import Store

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05  # seconds between a response's first unstored event and its write


class Flushable(Protocol):
    def flush(self) -> None:
        """Write what is not stored yet (inside the group's transaction)."""


class GroupCommit:
    def __init__(self, store: Store, interval: float = FLUSH_INTERVAL) -> None:
        self._store = store
        self._interval = interval
        self._dirty: dict[int, Flushable] = {}
        self._timer: asyncio.TimerHandle | None = None

    def mark(self, response: Flushable) -> None:
        """``response`` has events to store: at the next tick."""
        self._dirty[id(response)] = response
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.commit)

    def commit(self, *writes: Callable[[], None]) -> None:
        """Every pending event, then ``writes`` (how responses ended), in one transaction."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dirty, self._dirty = list(self._dirty.values()), {}
        if not dirty and not writes:
            return
        with self._store.batch():
            for write in [r.flush for r in dirty] + list(writes):
                try:
                    write()  # a savepoint of the batch's transaction: undone alone if it raises
                except Exception:
                    log.exception("a write to the store failed")
