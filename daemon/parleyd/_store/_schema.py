"""Opening the database, and the versioned migrations of its schema.

``PRAGMA user_version`` holds the number of migrations applied. A file written
by a newer parleyd (a version beyond ``MIGRATIONS``) is refused rather than
guessed at. A migration is a SQL script, or a function for what SQL alone
cannot do (re-hashing nodes); each runs in one transaction with its version.
"""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import Callable

from . import _search
from ._graph import decode, node_hash

__all__ = ["MIGRATIONS", "SchemaError", "connect"]


class SchemaError(Exception):
    """The database file was written by a newer parleyd."""


def _graph_native(conn: sqlite3.Connection) -> None:
    """2: nodes hashed by their canonical form, their text indexed once, and each conversation's tip.

    Every node is re-hashed, parents first (a node is always stored after its parent,
    so rowid order will do); two nodes that only differed in what the canonical form
    leaves out become one, the first kept. The tips of responses and the
    conversations' membership follow the new hashes."""
    conn.execute("CREATE TABLE nodes (id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, parent TEXT, data BLOB NOT NULL)")
    conn.execute("CREATE TEMP TABLE rehash (old TEXT PRIMARY KEY, new TEXT NOT NULL)")
    new: dict[str, str] = {}
    for old, parent, data in conn.execute("SELECT hash, parent, data FROM messages ORDER BY rowid").fetchall():
        new_parent = None if parent is None else new[parent]
        new[old] = node_hash(new_parent, decode(data))
        conn.execute("INSERT OR IGNORE INTO nodes (hash, parent, data) VALUES (?, ?, ?)", (new[old], new_parent, data))
    conn.executemany("INSERT INTO rehash (old, new) VALUES (?, ?)", new.items())
    for statement in (
        "DROP TABLE messages",
        "ALTER TABLE nodes RENAME TO messages",
        "UPDATE responses SET input_tip = (SELECT new FROM rehash WHERE old = input_tip) WHERE input_tip IS NOT NULL",
        "UPDATE responses SET output_tip = (SELECT new FROM rehash WHERE old = output_tip) WHERE output_tip IS NOT NULL",
        "CREATE TABLE members (conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE, "
        "hash TEXT NOT NULL, PRIMARY KEY (conversation_id, hash)) WITHOUT ROWID",
        "INSERT OR IGNORE INTO members SELECT conversation_id, (SELECT new FROM rehash WHERE old = hash) FROM conversation_messages",
        "DROP TABLE conversation_messages",
        "ALTER TABLE members RENAME TO conversation_messages",
        "CREATE INDEX conversation_messages_by_hash ON conversation_messages (hash)",
        "ALTER TABLE conversations ADD COLUMN tip TEXT",
        "UPDATE conversations SET tip = (SELECT coalesce(output_tip, input_tip) FROM responses "
        "WHERE conversation_id = conversations.id ORDER BY rowid DESC LIMIT 1)",
        "CREATE INDEX conversations_by_tip ON conversations (tip)",
        "DROP TABLE message_text",
        "CREATE VIRTUAL TABLE node_text USING fts5 (text, content = '')",
        "DROP TABLE rehash",
    ):
        conn.execute(statement)
    _search.index_nodes(conn, [(node_id, decode(data)) for node_id, data in conn.execute("SELECT id, data FROM messages")])


MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
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
    # 2: see _graph_native. The schema after it: messages (id INTEGER PRIMARY KEY, hash
    # UNIQUE, parent, data); conversation_messages (conversation_id, hash) without the id;
    # conversations.tip, the history a new prompt continues; node_text, one row per node.
    _graph_native,
    # 3: the session a front door's client named (a header such as X-Claude-Code-Session-Id):
    # it picks among conversations that a replayed history could continue; responses by their
    # input, to find the failed response that a client's retry repeats; and the tools a
    # response was given, which the next prompt in its conversation inherits.
    """
    ALTER TABLE conversations ADD COLUMN session_key TEXT;
    ALTER TABLE responses ADD COLUMN tools BLOB;
    CREATE INDEX conversations_by_session_key ON conversations (session_key) WHERE session_key IS NOT NULL;
    CREATE INDEX responses_by_input_tip ON responses (input_tip);
    """,
    # 4: a conversation's working directory, and the settings it was created with (before any
    # response: conversations/create), which its first prompt inherits; why each response ended,
    # known from its status for those that did not complete.
    """
    ALTER TABLE conversations ADD COLUMN cwd TEXT;
    ALTER TABLE conversations ADD COLUMN system TEXT;
    ALTER TABLE conversations ADD COLUMN options BLOB;
    ALTER TABLE conversations ADD COLUMN tools BLOB;
    CREATE INDEX conversations_by_cwd ON conversations (cwd, updated_at) WHERE cwd IS NOT NULL;
    ALTER TABLE responses ADD COLUMN finish_reason TEXT;
    UPDATE responses SET finish_reason = status WHERE status IN ('cancelled', 'error', 'interrupted');
    """,
    # 5: the journal of running responses' events, one row per group-commit tick (see _journal).
    """
    CREATE TABLE event_journal (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
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
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the store checkpoints on a thread (_checkpoint)
        conn.execute(f"PRAGMA journal_size_limit = {4 * 1024 * 1024}")  # a WAL that grew is cut back when reused
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
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        try:
            if isinstance(migration, str):
                conn.executescript(f"BEGIN IMMEDIATE;\n{migration}\nPRAGMA user_version = {number};\nCOMMIT;")
            else:
                conn.execute("BEGIN IMMEDIATE")
                migration(conn)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
