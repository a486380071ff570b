"""The event log of responses, stored as batches: one row per appended batch.

A row holds the events ``first_seq..last_seq`` joined by newlines (JSON text
never holds a raw newline) and compressed at zlib level 1, which keeps up with
a busy daemon. Each event is stored without the envelope that ends it on the
wire, ``,"responseId":"…","seq":N}``: the row knows both, and the ever-changing
seq was most of what was left after compression. Reading puts the envelope back,
byte for byte; an event that did not end with its envelope is stored whole, and
read back as it is. A slow stream is appended a few events at a time, and such
small rows compress poorly and cost a row each, so ``compact`` merges them once
the response has finished.
"""

from __future__ import annotations

import sqlite3
import zlib

__all__ = ["append", "compact", "last_seq", "read"]

#: Rows whose compressed data is smaller than this are merged by ``compact``,
#: up to about this size.
ROW_TARGET = 16 * 1024


def append(conn: sqlite3.Connection, response_id: str, first_seq: int, events: list[bytes]) -> None:
    stored = []
    for seq, event in enumerate(events, start=first_seq):
        envelope = _envelope(response_id, seq)
        stored.append(event[: -len(envelope)] + b"}" if event.endswith(envelope) else event)
    conn.execute(
        "INSERT INTO event_batches (response_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)",
        (response_id, first_seq, first_seq + len(events) - 1, zlib.compress(b"\n".join(stored), 1)),
    )


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
    append(conn, response_id, run[0][1], [event for _, first_seq, data in run for event in _unpack(data, response_id, first_seq)])


def _envelope(response_id: str, seq: int) -> bytes:
    return b',"responseId":"%s","seq":%d}' % (response_id.encode(), seq)


def _unpack(data: bytes, response_id: str, first_seq: int) -> list[bytes]:
    """A row's events as sent, the envelope put back where it was taken off."""
    events = zlib.decompress(data).split(b"\n")
    for i, event in enumerate(events):
        seq = first_seq + i
        if not event.endswith(b'"seq":%d}' % seq):  # stored without its envelope
            events[i] = event[:-1] + _envelope(response_id, seq)
    return events
