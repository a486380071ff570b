"""The message graph: content-addressed nodes, each chained to its parent.

A node's hash covers its parent's hash and its message's canonical form, so equal
histories share every node and a history that is sent again adds only the
messages after the point where it departs from what is stored. The canonical
form is what a client can be expected to send back of a message: its role and
its visible parts, with adjacent text joined and empty text dropped (a string vs
a list of text parts, ``null`` vs ``""``), tool arguments as parsed JSON with
sorted keys, and without reasoning or ``providerMetadata``, which clients drop
on replay. A node stores the message as it was first given, compressed (message
text is most of the file): a response's output is kept as the model produced it.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import zlib

import msgspec
from parley._types import Message, ReasoningPart, TextPart

__all__ = ["chain_hashes", "decode", "node_hash", "put_chain", "read_chain"]

_decoder = msgspec.json.Decoder(Message)
_REMEMBERED_TEXT = 8192  # characters: longer texts are hashed anew each time (bounding the memory kept)
_canonical_encode = msgspec.json.Encoder(order="sorted").encode

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
    """The JSON a node stores: the message as given, keys sorted at every level."""
    return msgspec.json.encode(message, order="sorted")


def canonical(message: Message) -> bytes:
    """The form a node's hash covers (see the module's docstring)."""
    parts: list[dict] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if not part.text:
                continue
            if parts and parts[-1]["type"] == "text":
                parts[-1]["text"] += part.text
            else:
                parts.append({"text": part.text, "type": "text"})
        elif not isinstance(part, ReasoningPart):
            wire = msgspec.to_builtins(part)
            wire.pop("providerMetadata", None)
            parts.append(wire)
    return _canonical_encode({"parts": parts, "role": message.role})


def node_hash(parent: str | None, message: Message) -> str:
    if message.provider_metadata is None and len(message.parts) == 1:
        (part,) = message.parts
        if type(part) is TextPart and part.provider_metadata is None and len(part.text) <= _REMEMBERED_TEXT:
            return _text_node_hash(parent, message.role, part.text)
    return _digest(parent, message)


def _digest(parent: str | None, message: Message) -> str:
    return hashlib.sha256((parent or "").encode() + canonical(message)).hexdigest()


@functools.lru_cache(maxsize=2048)
def _text_node_hash(parent: str | None, role: str, text: str) -> str:
    """The hash of a message of one text part, remembered: a client that re-sends its whole
    history each turn has most of it hashed already."""
    return _digest(parent, Message(role=role, parts=[TextPart(text=text)]))  # type: ignore[arg-type]


def chain_hashes(messages: list[Message], parent: str | None = None) -> list[str]:
    """The hash of each message's node, were ``messages`` a chain after ``parent``."""
    hashes = []
    for message in messages:
        parent = node_hash(parent, message)
        hashes.append(parent)
    return hashes


def decode(data: bytes) -> Message:
    """The message of a stored node's ``data``."""
    return _decoder.decode(zlib.decompress(data))


def put_chain(conn: sqlite3.Connection, messages: list[Message], parent: str | None) -> tuple[str | None, list[tuple[int, Message]]]:
    """Store ``messages`` as a chain after ``parent``: the hash of the last one, and the
    ``(id, message)`` of each node that was not stored yet."""
    new = []
    for message, node in zip(messages, chain_hashes(messages, parent)):
        inserted = conn.execute(
            "INSERT OR IGNORE INTO messages (hash, parent, data) VALUES (?, ?, ?)",
            (node, parent, zlib.compress(_encode(message), 1)),
        )
        if inserted.rowcount:
            new.append((inserted.lastrowid, message))
        parent = node
    return parent, new


def read_chain(conn: sqlite3.Connection, tip: str | None, base: str | None = None) -> list[Message]:
    """The messages after ``base`` (the root when None) up to ``tip``, oldest first."""
    if tip is None:
        return []
    return [decode(data) for (data,) in conn.execute(_CHAIN, {"tip": tip, "base": base})]
