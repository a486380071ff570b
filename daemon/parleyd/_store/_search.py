"""Full-text search over the text parts of the messages of conversations.

``message_text`` is a contentless FTS5 table, so the text lives only in the
message nodes. A node shared by two conversations gets one
``conversation_messages`` row per conversation, and that row's id is the FTS
rowid, so a match leads to every conversation that holds the node. A
contentless table can only forget a row when given its text again, which
``unindex_conversation`` recomputes from the node.
"""

from __future__ import annotations

import sqlite3

from parley._types import TextPart

from ._graph import decode

__all__ = ["MATCHING_CONVERSATIONS", "index_chain", "match_expression", "unindex_conversation"]

#: The ids of the conversations whose text matches the parameter, a ``match_expression``.
MATCHING_CONVERSATIONS = (
    "SELECT conversation_messages.conversation_id FROM message_text "
    "JOIN conversation_messages ON conversation_messages.id = message_text.rowid "
    "WHERE message_text MATCH ?"
)


def index_chain(conn: sqlite3.Connection, conversation_id: str, tip: str | None) -> None:
    """Record that ``conversation_id`` reaches the chain ending at ``tip``, indexing its new nodes.

    Chains are always recorded whole, so the walk from ``tip`` stops at the
    first node the conversation already holds: all of its ancestors are held too.
    """
    new: list[tuple[str, bytes]] = []
    while tip is not None and not _holds(conn, conversation_id, tip):
        parent, data = conn.execute("SELECT parent, data FROM messages WHERE hash = ?", (tip,)).fetchone()
        new.append((tip, data))
        tip = parent
    for node, data in reversed(new):
        row = conn.execute(
            "INSERT INTO conversation_messages (conversation_id, hash) VALUES (?, ?)", (conversation_id, node)
        )
        if text := _text(data):
            conn.execute("INSERT INTO message_text (rowid, text) VALUES (?, ?)", (row.lastrowid, text))


def unindex_conversation(conn: sqlite3.Connection, conversation_id: str) -> None:
    """Remove the conversation's text from the index (its map rows stay until the conversation goes)."""
    rows = conn.execute(
        "SELECT conversation_messages.id, messages.data FROM conversation_messages "
        "JOIN messages ON messages.hash = conversation_messages.hash "
        "WHERE conversation_messages.conversation_id = ?",
        (conversation_id,),
    )
    for rowid, data in rows.fetchall():
        if text := _text(data):
            conn.execute(
                "INSERT INTO message_text (message_text, rowid, text) VALUES ('delete', ?, ?)", (rowid, text)
            )


def match_expression(query: str) -> str | None:
    """An FTS5 query matching every whitespace-separated term of ``query``.

    Each term is quoted, so FTS syntax in it (``OR``, ``(``, ``"``, ``*``)
    is searched for as text instead of raising. Terms without a letter or
    digit hold nothing the tokenizer indexes and are dropped; None when no
    term is left.
    """
    terms = [term for term in query.split() if any(char.isalnum() for char in term)]
    if not terms:
        return None
    return " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _holds(conn: sqlite3.Connection, conversation_id: str, node: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM conversation_messages WHERE conversation_id = ? AND hash = ?", (conversation_id, node)
    )
    return row.fetchone() is not None


def _text(data: bytes) -> str:
    return "\n".join(part.text for part in decode(data).parts if isinstance(part, TextPart))
