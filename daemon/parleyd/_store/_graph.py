"""The message graph: content-addressed nodes, each chained to its parent.

A node's hash covers its parent's hash and its own canonical JSON, so equal
histories share every node and a history that is sent again adds only the
messages after the point where it departs from what is stored. The stored
JSON is compressed: message text is most of the file.
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib

import msgspec
from parley._types import Message

__all__ = ["decode", "put_chain", "read_chain"]

_decoder = msgspec.json.Decoder(Message)

# Walks parent links from :tip towards the root, stopping before :base.
_CHAIN = """
WITH RECURSIVE chain (depth, hash, parent, data) AS (
    SELECT 0, hash, parent, data FROM messages WHERE hash = :tip AND hash IS NOT :base
    UNION ALL
    SELECT chain.depth + 1, messages.hash, messages.parent, messages.data
    FROM chain JOIN messages ON messages.hash = chain.parent
    WHERE chain.parent IS NOT :base
)
SELECT data FROM chain ORDER BY depth DESC
"""


def _encode(message: Message) -> bytes:
    """The canonical JSON of a message: wire names, keys sorted at every level."""
    return msgspec.json.encode(message, order="sorted")


def decode(data: bytes) -> Message:
    """The message of a stored node's ``data``."""
    return _decoder.decode(zlib.decompress(data))


def put_chain(conn: sqlite3.Connection, messages: list[Message], parent: str | None) -> str | None:
    """Store ``messages`` as a chain after ``parent``; return the hash of the last one."""
    rows = []
    for message in messages:
        data = _encode(message)
        node = hashlib.sha256((parent or "").encode() + data).hexdigest()
        rows.append((node, parent, zlib.compress(data, 1)))
        parent = node
    conn.executemany("INSERT OR IGNORE INTO messages (hash, parent, data) VALUES (?, ?, ?)", rows)
    return parent


def read_chain(conn: sqlite3.Connection, tip: str | None, base: str | None = None) -> list[Message]:
    """The messages after ``base`` (the root when None) up to ``tip``, oldest first."""
    if tip is None:
        return []
    return [decode(data) for (data,) in conn.execute(_CHAIN, {"tip": tip, "base": base})]
