"""Full-text search over the text parts of the messages of conversations.

``node_text`` is a contentless FTS5 table with one row per message node (its rowid
is the node's id), written when the node is first stored: a node's text is indexed
once, however many conversations reach it. ``conversation_messages`` records which
conversations reach which nodes, so a match leads to every conversation holding
the node. A contentless table can only forget a row when given its text again,
which ``forget_orphans`` recomputes from the node before deleting it.
"""

from __future__ import annotations

import sqlite3

from parley._types import Message, TextPart

from ._graph import decode

__all__ = ["MATCHING_CONVERSATIONS", "add_members", "forget_orphans", "index_nodes", "match_expression"]

#: The ids of the conversations whose text matches the parameter, a ``match_expression``.
MATCHING_CONVERSATIONS = (
    "SELECT conversation_messages.conversation_id FROM node_text "
    "JOIN messages ON messages.id = node_text.rowid "
    "JOIN conversation_messages ON conversation_messages.hash = messages.hash "
    "WHERE node_text MATCH ?"
)

# A conversation's nodes that no other conversation reaches.
_ORPHANS = """
SELECT messages.id, messages.data FROM conversation_messages AS mine
JOIN messages ON messages.hash = mine.hash
WHERE mine.conversation_id = :id AND NOT EXISTS (
    SELECT 1 FROM conversation_messages AS other
    WHERE other.hash = mine.hash AND other.conversation_id != :id
)
"""


def index_nodes(conn: sqlite3.Connection, nodes: list[tuple[int, Message]]) -> None:
    """Index the text of nodes just stored."""
    rows = [(node_id, text) for node_id, message in nodes if (text := _text(message))]
    conn.executemany("INSERT INTO node_text (rowid, text) VALUES (?, ?)", rows)


def add_members(conn: sqlite3.Connection, conversation_id: str, tip: str | None) -> None:
    """Record that ``conversation_id`` reaches the chain ending at ``tip``.

    Chains are always recorded whole, so the walk from ``tip`` stops at the first
    node the conversation already holds: all of its ancestors are held too. A turn
    that continues the conversation walks only its own new nodes."""
    new: list[tuple[str, str]] = []
    while tip is not None and not _holds(conn, conversation_id, tip):
        new.append((conversation_id, tip))
        (tip,) = conn.execute("SELECT parent FROM messages WHERE hash = ?", (tip,)).fetchone()
    conn.executemany("INSERT INTO conversation_messages (conversation_id, hash) VALUES (?, ?)", reversed(new))


def forget_orphans(conn: sqlite3.Connection, conversation_id: str) -> None:
    """Delete the nodes only this conversation reaches, and their text from the index."""
    orphans = conn.execute(_ORPHANS, {"id": conversation_id}).fetchall()
    for node_id, data in orphans:
        if text := _text(decode(data)):
            conn.execute("INSERT INTO node_text (node_text, rowid, text) VALUES ('delete', ?, ?)", (node_id, text))
    conn.executemany("DELETE FROM messages WHERE id = ?", [(node_id,) for node_id, _ in orphans])


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


def _text(message: Message) -> str:
    return "\n".join(part.text for part in message.parts if isinstance(part, TextPart))
