"""Group commit: the store writes of every live response, a few SQLite transactions a second.

Each live response keeps the events it has not stored yet and asks to be written; every
``FLUSH_INTERVAL`` the group writes the events of all that asked, in one statement of one
transaction, so a thousand streams cost twenty commits a second, not twenty thousand.

How a response ended is written at once, with its pending events, inside a transaction
that stays open for the rest of the event loop's turn: the responses that end in one turn
(and any other write meanwhile, each a savepoint of it) commit together, at the end of the
turn or at the ``barrier`` every transport passes before it writes a byte, whichever is
first. So by the time a client can read a ``done``, its record is committed, and a crash
before that loses only what no one was told of.

Crash safety is as before: a response's events reach the disk at most ``FLUSH_INTERVAL``
after they were sent. A write of events that fails (a daemon bug, logged) leaves them
pending; they are written when the response ends.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from typing import Protocol

from ._store import EventBatch, Store

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05  # seconds between a response's first unstored event and its write


class Pending(Protocol):
    def unstored(self) -> EventBatch | None:
        """The events not stored yet, as one batch."""

    def stored(self, count: int) -> None:
        """The first ``count`` of those are written."""


class GroupCommit:
    def __init__(self, store: Store, interval: float = FLUSH_INTERVAL) -> None:
        self._store = store
        self._interval = interval
        self._dirty: dict[int, Pending] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._open = False  # this turn's transaction, committed at the barrier

    def mark(self, response: Pending) -> None:
        """``response`` has events to store: at the next tick."""
        self._dirty[id(response)] = response
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.flush)

    def flush(self) -> None:
        """Every pending event, committed now (the tick; the daemon's stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._dirty and not self._open:
            self._begin()
        self._write_events()
        self.barrier()

    def finish(self, response: Pending, ending: Callable[[], None]) -> None:
        """Write how ``response`` ended, which stores its pending events too, in this turn's transaction."""
        self._dirty.pop(id(response), None)
        if not self._open:
            self._begin()
            asyncio.get_running_loop().call_soon(self.barrier)
        batch = response.unstored()
        try:
            ending()  # a savepoint of the transaction: undone alone if it raises
        except Exception:
            log.exception("a write to the store failed")
            self.mark(response)  # its events, at least, at the next tick
            return
        if batch is not None:
            response.stored(len(batch.bodies))

    def barrier(self) -> None:
        """Commit this turn's transaction, if one is open: a transport calls it before it writes."""
        if not self._open:
            return
        self._open = False
        try:
            self._store.commit()
        except sqlite3.Error:
            log.exception("a commit to the store failed")

    def _begin(self) -> None:
        self._store.begin()
        self._open = True

    def _write_events(self) -> None:
        dirty, self._dirty = self._dirty.values(), {}
        batches = [(response, batch) for response in dirty if (batch := response.unstored()) is not None]
        if not batches:
            return
        try:
            self._store.append_event_batches([batch for _, batch in batches])
        except Exception:
            log.exception("a write to the store failed")
            return
        for response, batch in batches:
            response.stored(len(batch.bodies))
