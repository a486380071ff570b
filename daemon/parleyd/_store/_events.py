"""The event log of responses, stored as batches: one row per appended batch.

A row holds the events ``first_seq..last_seq`` joined by newlines (JSON text
never holds a raw newline) and compressed at zlib level 1, which keeps up with
a busy daemon while the envelope that every event repeats still shrinks to a
few bytes. A slow stream is appended a few events at a time, and such small
rows compress poorly and cost a row each, so ``compact`` merges them once the
response has finished.
"""

from __future__ import annotations

import sqlite3
import zlib

__all__ = ["append", "compact", "last_seq", "read"]

#: Rows whose compressed data is smaller than this are merged by ``compact``,
#: up to about this size.
ROW_TARGET = 16 * 1024


def append(conn: sqlite3.Connection, response_id: str, first_seq: int, events: list[bytes]) -> None:
    conn.execute(
        "INSERT INTO event_batches (response_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)",
        (response_id, first_seq, first_seq + len(events) - 1, zlib.compress(b"\n".join(events), 1)),
    )


def read(conn: sqlite3.Connection, response_id: str, after_seq: int) -> list[bytes]:
    """The events numbered after ``after_seq``, in order."""
    rows = conn.execute(
        "SELECT first_seq, data FROM event_batches WHERE response_id = ? AND last_seq > ? ORDER BY last_seq",
        (response_id, after_seq),
    )
    events: list[bytes] = []
    for first_seq, data in rows:
        events += _unpack(data)[max(0, after_seq - first_seq + 1) :]
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
    append(conn, response_id, run[0][1], [event for _, _, data in run for event in _unpack(data)])


def _unpack(data: bytes) -> list[bytes]:
    return zlib.decompress(data).split(b"\n")
