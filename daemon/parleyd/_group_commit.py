"""Group commit: the store writes of every live response, a few SQLite transactions a second.

Each live response asks to be written when it has new events; every ``FLUSH_INTERVAL``
the group writes the new events of all that asked as one row of the store's journal
(``_store._journal``), in one transaction: a thousand streams cost twenty rows and twenty
commits a second, not twenty thousand. A response's event log is written whole when it
ends; a response that runs for long has its journaled events moved to its event log now
and then (``SPILL_AFTER``), so the journal keeps only the last few seconds.

How a response ended is written at once, with its events, inside a transaction that stays
open for the rest of the event loop's turn, and so are a prompt's input, its conversation
and its running response: the prompts that start and the responses that end in one turn
(and any other write meanwhile, each a savepoint of it) commit together, at the end of the
turn or at the ``barrier`` every transport passes before it writes a byte, whichever is
first. So by the time a client can read a ``done``, its record is committed, and a crash
before that loses only what no one was told of.

Crash safety is as before: a response's events reach the disk at most ``FLUSH_INTERVAL``
after they were sent. A write of events that fails (a daemon bug, logged) leaves them
pending; they are written at the next tick, or when the response ends.
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
SPILL_AFTER = 200  # ticks (10 s) a response's events stay only in the journal


class Pending(Protocol):
    """What the group writes of a live response."""

    id: str
    bodies: list[bytes]  # every event's body so far: seq n at [n - 1]


class _Written:
    """Where a live response's events are: the first ``logged`` in its event log, up to
    ``journaled`` in the journal, from row ``first_row`` on (None: none only there)."""

    __slots__ = ("response", "logged", "journaled", "first_row")

    def __init__(self, response: Pending) -> None:
        self.response = response
        self.logged = 0
        self.journaled = 0
        self.first_row: int | None = None


class GroupCommit:
    def __init__(self, store: Store, interval: float = FLUSH_INTERVAL) -> None:
        self._store = store
        self._interval = interval
        self._dirty: dict[int, Pending] = {}
        self._written: dict[int, _Written] = {}  # by id(response), while it runs
        # journal row -> the responses whose events only the journal holds from that row on;
        # the rows in the order they were written, so the first is the oldest one needed
        self._rows: dict[int, dict[int, _Written]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._open = False  # this turn's transaction, committed at the barrier
        self._needed: int | None = None  # the oldest journal row still needed, as of the last delete

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

    def join(self) -> None:
        """Make the store writes that follow, until the turn's barrier, savepoints of this
        turn's transaction (opened now if none is): a prompt's writes, a response's ending."""
        if not self._open:
            self._begin()
            asyncio.get_running_loop().call_soon(self.barrier)

    def finish(self, response: Pending, ending: Callable[..., None]) -> None:
        """Write how ``response`` ended in this turn's transaction: ``ending(stored=n)`` writes
        it and the events after the first ``n``, which its event log holds already."""
        key = id(response)
        self._dirty.pop(key, None)
        written = self._written.get(key)
        self.join()
        try:
            ending(stored=written.logged if written else 0)  # a savepoint of the transaction: undone alone if it raises
        except Exception:
            log.exception("a write to the store failed")
            self.mark(response)  # its events, at least, at the next tick
            return
        if written is not None:
            del self._written[key]
            if written.first_row is not None:
                self._release(written.first_row, key)

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
        dirty, self._dirty = self._dirty, {}
        fresh: list[_Written] = []
        for key, response in dirty.items():
            written = self._written.get(key)
            if written is None:
                written = self._written[key] = _Written(response)
            if len(response.bodies) > written.journaled:
                fresh.append(written)
        try:
            if fresh:
                self._journal(fresh)
            self._forget()
        except Exception:
            log.exception("a write to the store failed")
            self._dirty.update(dirty)  # tried again at the next tick
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._interval, self.flush)

    def _journal(self, fresh: list[_Written]) -> None:
        """One journal row of the new events of ``fresh``; then the spill that is due."""
        batches = [EventBatch(w.response.id, w.journaled + 1, w.response.bodies[w.journaled :]) for w in fresh]
        row = self._store.journal_events(batches)
        starting: dict[int, _Written] = {}
        for written, batch in zip(fresh, batches):
            written.journaled += len(batch.bodies)
            if written.first_row is None:
                written.first_row = row
                starting[id(written.response)] = written
        if starting:
            self._rows[row] = starting
        while self._rows and row - (oldest := next(iter(self._rows))) >= SPILL_AFTER:
            self._spill(oldest)

    def _spill(self, row: int) -> None:
        """Move the journaled events of the responses in the journal since ``row`` (``SPILL_AFTER``
        ticks ago) to their event logs: the journal keeps only recent rows."""
        spilled = list(self._rows[row].values())
        self._store.append_event_batches([EventBatch(w.response.id, w.logged + 1, w.response.bodies[w.logged : w.journaled]) for w in spilled])
        del self._rows[row]
        for written in spilled:
            written.logged, written.first_row = written.journaled, None

    def _release(self, row: int, key: int) -> None:
        """The response ``key`` no longer needs the journal from ``row`` on."""
        starting = self._rows[row]
        del starting[key]
        if not starting:
            del self._rows[row]

    def _forget(self) -> None:
        """Delete the journal rows that no running response needs any more."""
        needed = next(iter(self._rows), None)
        if needed != self._needed:
            self._store.forget_journal(before=needed)
            self._needed = needed
