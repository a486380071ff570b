"""The journal: the events of running responses, one row per group-commit tick for all of them.

A running response's events must reach the disk soon after they are sent (crash safety),
but its event log is written whole when it ends (``_events.finish``). So while it runs its
events go to the journal: each tick, the new events of every running response, packed
(msgpack, zlib level 1) into one row, one insert for a thousand streams. A journal row is
deleted once every response with events in it has ended, or has had those events written
to its event log (a long response is, now and then: the group commit's ``spill``).

After a crash, ``settle`` appends to the event log of each response still marked running
what the journal holds of it past what its log holds, and empties the journal; the
daemon's recovery then ends those responses as ``interrupted``.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections import defaultdict

import msgspec

from ._events import EventBatch, append, last_seq

__all__ = ["forget", "settle", "write"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[EventBatch]).decode


def write(conn: sqlite3.Connection, batches: list[EventBatch]) -> int:
    """Store the batches as one row; its id (ids grow while older rows are kept)."""
    data = zlib.compress(_encode(batches), 1)
    cursor = conn.execute("INSERT INTO event_journal (data) VALUES (?)", (data,))
    return cursor.lastrowid  # type: ignore[return-value]


def forget(conn: sqlite3.Connection, before: int | None) -> None:
    """Delete the rows older than ``before`` (every row: None): no running response needs them."""
    if before is None:
        conn.execute("DELETE FROM event_journal")
    else:
        conn.execute("DELETE FROM event_journal WHERE id < ?", (before,))


def settle(conn: sqlite3.Connection, running: list[str]) -> None:
    """Move what the journal holds of the ``running`` responses (cut off by a crash) to their
    event logs, in seq order after what each log holds; then empty the journal."""
    wanted = set(running)
    found: dict[str, list[EventBatch]] = defaultdict(list)
    for (data,) in conn.execute("SELECT data FROM event_journal ORDER BY id"):
        for batch in _decode(zlib.decompress(data)):
            if batch.response_id in wanted:
                found[batch.response_id].append(batch)
    for response_id, batches in found.items():
        held = last_seq(conn, response_id)
        bodies: list[bytes] = []
        for batch in batches:  # written tick by tick: in seq order, each from where the last ended
            skip = held + len(bodies) + 1 - batch.first_seq  # what the log (or an earlier batch) holds
            if skip < 0:
                break  # a gap cannot happen; if it did, what follows it is not the response's next events
            bodies += batch.bodies[skip:]
        if bodies:
            append(conn, [EventBatch(response_id, held + 1, bodies)])
    forget(conn, None)
