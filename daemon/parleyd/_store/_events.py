"""The event log of responses, stored as batches: one row per appended batch.

A row holds the events ``first_seq..last_seq`` joined by newlines (JSON text
never holds a raw newline) and compressed at zlib level 1, which keeps up with
a busy daemon. Events are stored as their bodies, without the envelope that ends
them on the wire (see ``_envelope``): the row knows the response and the seqs, and
the ever-changing seq was most of what was left after compression. Reading puts
the envelopes back, byte for byte. Such a row starts with a mark; the rows of
schema 1 hold whole events, unmarked, and are read as they are. A slow stream is
appended a few events at a time, and such small rows compress poorly and cost a
row each, so ``compact`` merges them once the response has finished.
"""

from __future__ import annotations

import sqlite3
import zlib
from typing import NamedTuple

from .._envelope import opening, sealed

__all__ = ["EventBatch", "append", "compact", "finish", "last_seq", "read"]

#: The first byte of a row whose events are stored without their envelopes (JSON never starts so).
_STRIPPED = b"\x00"

#: Rows whose compressed data is smaller than this are merged by ``compact``,
#: up to about this size.
ROW_TARGET = 16 * 1024

#: A response whose event bodies take up to this many bytes is stored as one row when it ends.
_REWRITE_LIMIT = 1024 * 1024


class EventBatch(NamedTuple):
    """Event bodies (events without their envelope) of one response, numbered ``first_seq`` onwards."""

    response_id: str
    first_seq: int
    bodies: list[bytes]


def append(conn: sqlite3.Connection, batches: list[EventBatch]) -> None:
    """Store each batch as a row, in one statement."""
    conn.executemany(
        "INSERT INTO event_batches (response_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)",
        [(b.response_id, b.first_seq, b.first_seq + len(b.bodies) - 1, _pack(b.bodies)) for b in batches],
    )


def _pack(bodies: list[bytes]) -> bytes:
    return zlib.compress(_STRIPPED + b"\n".join(bodies), 1)


def read(conn: sqlite3.Connection, response_id: str, after_seq: int) -> list[bytes]:
    """The events numbered after ``after_seq``, in order."""
    rows = conn.execute(
        "SELECT first_seq, data FROM event_batches WHERE response_id = ? AND last_seq > ? ORDER BY last_seq",
        (response_id, after_seq),
    )
    events: list[bytes] = []
    for first_seq, data in rows:
        events += _unpack(data, response_id, first_seq)[max(0, after_seq - first_seq + 1) :]
    return events


def last_seq(conn: sqlite3.Connection, response_id: str) -> int:
    row = conn.execute("SELECT max(last_seq) FROM event_batches WHERE response_id = ?", (response_id,))
    return row.fetchone()[0] or 0


def finish(conn: sqlite3.Connection, response_id: str, bodies: list[bytes], stored: int) -> None:
    """Store the last events of a response that ended, given all its event bodies, of which
    the first ``stored`` are stored already: a small response's rows are replaced by one
    made of them, with nothing read back; a large one's are appended and compacted."""
    if sum(map(len, bodies)) <= _REWRITE_LIMIT:
        if stored:
            conn.execute("DELETE FROM event_batches WHERE response_id = ?", (response_id,))
        append(conn, [EventBatch(response_id, 1, bodies)])
        return
    if stored < len(bodies):
        append(conn, [EventBatch(response_id, stored + 1, bodies[stored:])])
    compact(conn, response_id)


def compact(conn: sqlite3.Connection, response_id: str) -> None:
    """Merge each run of consecutive small rows of the response into one row.

    Rows that are already large are left alone, so a response streamed at a
    high rate is not compressed twice.
    """
    rows = conn.execute(
        "SELECT rowid, first_seq, data FROM event_batches WHERE response_id = ? ORDER BY last_seq", (response_id,)
    )
    run: list[tuple[int, int, bytes]] = []
    size = 0
    for row in rows.fetchall():
        small = len(row[2]) < ROW_TARGET
        if small:
            run.append(row)
            size += len(row[2])
        if not small or size >= ROW_TARGET:
            _merge(conn, response_id, run)
            run, size = [], 0
    _merge(conn, response_id, run)


def _merge(conn: sqlite3.Connection, response_id: str, run: list[tuple[int, int, bytes]]) -> None:
    if len(run) < 2:
        return
    conn.executemany("DELETE FROM event_batches WHERE rowid = ?", [(rowid,) for rowid, _, _ in run])
    append(conn, [EventBatch(response_id, run[0][1], [body for _, _, data in run for body in _bodies(data)])])


def _unpack(data: bytes, response_id: str, first_seq: int) -> list[bytes]:
    """A row's events as they were sent."""
    blob = zlib.decompress(data)
    if not blob.startswith(_STRIPPED):  # a row of schema 1: whole events
        return blob.split(b"\n")
    start = opening(response_id)
    return [sealed(body, start, seq) for seq, body in enumerate(blob[1:].split(b"\n"), start=first_seq)]


def _bodies(data: bytes) -> list[bytes]:
    """A row's event bodies (a row of schema 1 holds whole events: their envelopes are cut off)."""
    blob = zlib.decompress(data)
    if blob.startswith(_STRIPPED):
        return blob[1:].split(b"\n")
    return [event[: event.rindex(b',"responseId":')] + b"}" for event in blob.split(b"\n")]
