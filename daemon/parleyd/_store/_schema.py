"""Opening the database, and the versioned migrations of its schema.

``PRAGMA user_version`` holds the number of migrations applied. A file written
by a newer parleyd (a version beyond ``MIGRATIONS``) is refused rather than
guessed at.
"""

from __future__ import annotations

import pathlib
import sqlite3

__all__ = ["MIGRATIONS", "SchemaError", "connect"]


class SchemaError(Exception):
    """The database file was written by a newer parleyd."""


MIGRATIONS: list[str] = [
    # 1: the message graph, conversations, responses, their events, and search.
    """
    -- A message is a node keyed by sha256(parent hash + canonical JSON), so a
    -- history that is sent again maps onto the nodes it already has; data is
    -- the canonical JSON, zlib-compressed.
    CREATE TABLE messages (
        hash TEXT PRIMARY KEY,
        parent TEXT,
        data BLOB NOT NULL
    );

    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        response_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX conversations_by_updated_at ON conversations (updated_at);

    -- The history a response saw is the chain ending at input_tip; its output
    -- is the chain from input_tip to output_tip (NULL while running).
    CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        input_tip TEXT,
        output_tip TEXT,
        system TEXT,
        options BLOB,
        usage BLOB,
        error BLOB,
        duration_ms INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE INDEX responses_by_conversation ON responses (conversation_id);
    CREATE INDEX running_responses ON responses (status) WHERE status = 'running';

    -- One row per appended batch (small ones are merged when the response
    -- finishes): the events first_seq..last_seq, joined by newlines and
    -- zlib-compressed.
    CREATE TABLE event_batches (
        response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX event_batches_by_response ON event_batches (response_id, last_seq);

    -- Every node a conversation's responses reach, once per conversation; the
    -- id is the rowid of the node's text in the contentless index below.
    CREATE TABLE conversation_messages (
        id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        hash TEXT NOT NULL,
        UNIQUE (conversation_id, hash)
    );
    CREATE INDEX conversation_messages_by_hash ON conversation_messages (hash);

    CREATE VIRTUAL TABLE message_text USING fts5 (text, content = '');
    """,
]


def connect(path: pathlib.Path) -> sqlite3.Connection:
    """Open (or create) the database at ``path`` and bring its schema up to date.

    The connection is in autocommit mode: the store opens its own transactions.
    """
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)  # timeout: the busy timeout
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: pathlib.Path) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise SchemaError(
            f"{path} has schema version {version}, but this parleyd knows only up to "
            f"{len(MIGRATIONS)}: it was written by a newer parleyd"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
