"""The event log of responses, stored as batches: one row per appended batch.

A row holds the events ``first_seq..last_seq`` joined by newlines (JSON text
never holds a raw newline) and compressed at zlib level 1, which keeps up with
a busy daemon. Each event is stored without the envelope that ends it on the
wire, ``,"responseId":"…","seq":N}``: the row knows both, and the ever-changing
seq was most of what was left after compression. Reading puts the envelope back,
byte for byte. A row so stored starts with a mark; a batch in which an event does
not end with its envelope is stored whole, unmarked, as all rows of schema 1 are. A slow stream is appended a few events at a time, and such
small rows compress poorly and cost a row each, so ``compact`` merges them once
the response has finished.
"""

from __future__ import annotations

import sqlite3
import zlib

__all__ = ["append", "compact", "last_seq", "read"]

#: The first byte of a row whose events are stored without their envelopes (JSON never starts so).
_STRIPPED = b"\x00"

#: Rows whose compressed data is smaller than this are merged by ``compact``,
#: up to about this size.
ROW_TARGET = 16 * 1024


def append(conn: sqlite3.Connection, response_id: str, first_seq: int, events: list[bytes]) -> None:
    conn.execute(
        "INSERT INTO event_batches (response_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)",
        (response_id, first_seq, first_seq + len(events) - 1, zlib.compress(_without_envelopes(response_id, first_seq, events), 1)),
    )


def _without_envelopes(response_id: str, first_seq: int, events: list[bytes]) -> bytes:
    """The events joined, each without its envelope, after the ``_STRIPPED`` mark; all of
    them whole, unmarked, if any lacks it."""
    prefix = b',"responseId":"%s","seq":' % response_id.encode()
    heads = []
    for seq, event in enumerate(events, start=first_seq):
        envelope = b"%b%d}" % (prefix, seq)
        if not event.endswith(envelope):
            return b"\n".join(events)
        heads.append(event[: -len(envelope)])
    return _STRIPPED + b"}\n".join(heads) + b"}"


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
    blobs = [zlib.decompress(data) for _, _, data in run]
    if all(blob.startswith(_STRIPPED) for blob in blobs):  # consecutive seqs: the bodies join as they are
        last_seq = run[0][1] + sum(blob.count(b"\n") + 1 for blob in blobs) - 1
        data = zlib.compress(_STRIPPED + b"\n".join(blob[1:] for blob in blobs), 1)
        conn.execute(
            "INSERT INTO event_batches (response_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)",
            (response_id, run[0][1], last_seq, data),
        )
    else:
        append(conn, response_id, run[0][1], [event for _, first_seq, data in run for event in _unpack(data, response_id, first_seq)])


def _unpack(data: bytes, response_id: str, first_seq: int) -> list[bytes]:
    """A row's events as sent, the envelopes put back where they were taken off."""
    blob = zlib.decompress(data)
    if not blob.startswith(_STRIPPED):
        return blob.split(b"\n")
    prefix = b',"responseId":"%s","seq":' % response_id.encode()
    return [b"%b%b%d}" % (head[:-1], prefix, seq) for seq, head in enumerate(blob[1:].split(b"\n"), start=first_seq)]
