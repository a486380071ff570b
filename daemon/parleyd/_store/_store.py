"""The store the daemon keeps its conversations and responses in."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import Iterator
from typing import Any, TypeVar

import msgspec
from parley._types import (
    Conversation,
    ConversationSummary,
    ErrorInfo,
    Message,
    PromptRecord,
    ResponseRecord,
    ToolSpec,
    Usage,
)

from .._clock import now
from . import _events, _graph, _journal, _search
from ._checkpoint import Checkpointer
from ._events import EventBatch
from ._schema import connect

__all__ = ["EventBatch", "Store"]

_T = TypeVar("_T")

#: Hashes asked about in one query when a history is matched to a conversation.
_MAX_TIPS = 900

class Store:
    """Conversations, responses and the events of responses, in one SQLite file.

    Every method runs in its own transaction, or in the one of ``batch``.
    Messages are nodes of a graph (see ``_graph``), referred to by the hash of
    the last message of a chain: its tip.
    """

    def __init__(self, path: pathlib.Path) -> None:
        self._conn = connect(path)
        self._checkpointer = Checkpointer(path)

    def close(self) -> None:
        self._checkpointer.stop()
        self._conn.close()  # the last connection: SQLite checkpoints the rest and removes the WAL

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._conn.in_transaction:  # inside begin()'s transaction: a savepoint of it
            yield from _savepoint(self._conn)
            return
        self.begin()
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self.commit()

    def begin(self) -> None:
        """Open a transaction for the writes until ``commit`` (the daemon's group commit);
        each of them is a savepoint of it, undone alone if it raises."""
        # IMMEDIATE takes the write lock up front: a writer in another process
        # is waited for with the busy timeout, where a deferred transaction
        # that read first would fail at once when it tried to write.
        self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._checkpointer.poke()

    # ---- message graph ---------------------------------------------------------

    def put_chain(self, messages: list[Message], parent: str | None = None) -> str | None:
        """Store ``messages`` after ``parent`` and return the tip; nodes already stored are reused."""
        with self._write() as conn:
            return _put_chain(conn, messages, parent)

    def get_chain(self, tip: str | None) -> list[Message]:
        """The messages from the root up to ``tip``."""
        return _graph.read_chain(self._conn, tip)

    # ---- conversations -----------------------------------------------------------

    def create_conversation(
        self,
        conversation_id: str,
        *,
        title: str,
        model: str,
        created_at: str,
        session_key: str | None = None,
        cwd: str | None = None,
        settings: PromptRecord | None = None,
    ) -> None:
        """``settings``: the system prompt, options and tools of a conversation created before
        its first prompt, which that prompt inherits (a title of "" is then the first prompt's)."""
        base = settings or PromptRecord(messages=[])
        with self._write() as conn:
            conn.execute(
                "INSERT INTO conversations (id, title, model, created_at, updated_at, session_key, cwd, system, options, tools) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, title, model, created_at, created_at, session_key, cwd, base.system, _dump(base.options), _dump(base.tools or None)),
            )

    def conversation_exists(self, conversation_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,))
        return row.fetchone() is not None

    def conversation_settings(self, conversation_id: str) -> tuple[str, PromptRecord] | None:
        """The model, system prompt, options and tools (no messages) of the conversation's latest
        response, else those it was created with: what a prompt that names it inherits. None if
        there is no such conversation."""
        conversation = self._conn.execute(
            "SELECT model, system, options, tools FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if conversation is None:
            return None
        latest = self._conn.execute(
            "SELECT system, options, tools FROM responses WHERE conversation_id = ? ORDER BY rowid DESC LIMIT 1",
            (conversation_id,),
        ).fetchone()
        system, options, tools = latest or conversation[1:]
        return conversation[0], PromptRecord(messages=[], system=system, options=_load(options, dict), tools=_load(tools, list[ToolSpec]))

    def conversation_tip(self, conversation_id: str) -> str | None:
        """The history a new prompt continues: the output of the latest response, else its input."""
        row = self._conn.execute("SELECT tip FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return row[0] if row else None

    def continued_conversation(
        self, messages: list[Message], *, session_key: str | None = None
    ) -> tuple[str, str, int] | None:
        """The conversation a replayed history continues, its tip, and how many of ``messages`` it holds.

        That is the conversation whose whole history (up to its tip) ``messages`` begins
        with, followed by at least one new message; or whose latest response failed
        (error, cancelled, interrupted: the client may never have seen its output) when
        ``messages`` end where that response's input did: a client's retry, answered
        beside the failed one. The longest such; of several with the same tip, the most
        recently updated. Two indexed queries, whatever the history's length: hashing
        ``messages`` finds the tips. A ``session_key`` (a client's session) keeps only the
        conversation of that id or started with that key."""
        hashes = _graph.chain_hashes(messages)
        if not hashes:
            return None
        depth = {node: k for k, node in enumerate(hashes, start=1)}
        tips = hashes[:-1][-_MAX_TIPS:]  # a continued tip has at least one new message after it
        session, keys = ("", []) if session_key is None else (" AND (c.id = ? OR c.session_key = ?)", [session_key, session_key])
        rows = self._conn.execute(
            f"SELECT c.id, c.tip, c.updated_at FROM conversations c WHERE c.tip IN ({', '.join('?' * len(tips))}){session}",
            [*tips, *keys],
        ).fetchall()
        rows += self._conn.execute(  # a retry of the latest response, which failed
            "SELECT c.id, r.input_tip, c.updated_at FROM responses r JOIN conversations c ON c.id = r.conversation_id "
            "WHERE r.input_tip = ? AND r.status IN ('error', 'cancelled', 'interrupted') "
            f"AND r.rowid = (SELECT max(rowid) FROM responses WHERE conversation_id = c.id){session}",
            [hashes[-1], *keys],
        ).fetchall()
        if not rows:
            return None
        conversation_id, tip, _ = max(rows, key=lambda row: (depth[row[1]], row[2]))
        return conversation_id, tip, depth[tip]

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = self._conn.execute("SELECT title, cwd, model FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            return None
        response_ids = self._conn.execute(
            "SELECT id FROM responses WHERE conversation_id = ? ORDER BY rowid", (conversation_id,)
        )
        return Conversation(
            id=conversation_id,
            title=row[0],
            messages=self.get_chain(self.conversation_tip(conversation_id)),
            response_ids=[response_id for (response_id,) in response_ids],
            cwd=row[1],
            model=row[2],
        )

    def list_conversations(
        self, *, limit: int = 50, before: str | None = None, query: str | None = None, cwd: str | None = None
    ) -> list[ConversationSummary]:
        """The most recently updated conversations first.

        ``before`` keeps those updated before that timestamp (the cursor for
        the next page); ``query`` keeps those whose text holds every term
        (see ``_search.match_expression``); a blank query keeps all; ``cwd``
        keeps those with that working directory.
        """
        conditions: list[str] = []
        params: list[Any] = []
        if before is not None:
            conditions.append("updated_at < ?")
            params.append(before)
        if cwd is not None:
            conditions.append("cwd = ?")
            params.append(cwd)
        if query and not query.isspace():
            match = _search.match_expression(query)
            if match is None:
                return []
            conditions.append(f"id IN ({_search.MATCHING_CONVERSATIONS})")
            params.append(match)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._conn.execute(
            "SELECT id, title, model, created_at, updated_at, response_count, cwd FROM conversations "
            f"{where} ORDER BY updated_at DESC LIMIT ?",
            (*params, limit),
        )
        return [
            ConversationSummary(
                id=id, title=title, model=model, created_at=created_at, updated_at=updated_at, response_count=count, cwd=cwd
            )
            for id, title, model, created_at, updated_at, count, cwd in rows
        ]

    def delete_conversation(self, conversation_id: str) -> bool:
        """Delete the conversation, its responses and events, and the messages only it reached."""
        with self._write() as conn:
            if not self.conversation_exists(conversation_id):
                return False
            _drop_conversation(conn, conversation_id)
            return True

    # ---- responses -------------------------------------------------------------------

    def start_response(
        self,
        *,
        response_id: str,
        conversation_id: str,
        model: str,
        input_tip: str | None,
        system: str | None,
        options: dict[str, Any] | None,
        created_at: str,
        tools: list[ToolSpec] | None = None,
        title: str = "",
    ) -> None:
        """Record a running response to the chain ending at ``input_tip``, in its conversation.

        ``title``: the conversation's, if this is its first response and it has none yet (one
        created before its first prompt)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO responses (id, conversation_id, model, status, input_tip, system, options, tools, created_at) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (response_id, conversation_id, model, input_tip, system, _dump(options), _dump(tools or None), created_at),
            )
            conn.execute(
                "UPDATE conversations SET model = ?, tip = ?, updated_at = max(updated_at, ?), "
                "title = CASE WHEN response_count = 0 AND title = '' THEN ? ELSE title END, "
                "response_count = response_count + 1 WHERE id = ?",
                (model, input_tip, created_at, title, conversation_id),
            )
            _search.add_members(conn, conversation_id, input_tip)

    def append_events(self, response_id: str, first_seq: int, events: list[bytes]) -> None:
        """Store one batch of event bodies (encoded without their envelope, see ``_envelope``),
        numbered ``first_seq`` onwards, as one row; ``read_events`` gives them back sealed."""
        if events:
            self.append_event_batches([EventBatch(response_id, first_seq, events)])

    def append_event_batches(self, batches: list[EventBatch]) -> None:
        """Store batches of several responses' events, a row each, in one statement."""
        with self._write() as conn:
            _events.append(conn, batches)

    def journal_events(self, batches: list[EventBatch]) -> int:
        """Store running responses' new events as one journal row (see ``_journal``); its id."""
        with self._write() as conn:
            return _journal.write(conn, batches)

    def forget_journal(self, before: int | None) -> None:
        """Delete the journal rows older than ``before`` (all: None): no running response needs them."""
        with self._write() as conn:
            _journal.forget(conn, before)

    def settle_journal(self) -> None:
        """After a crash: the journal's events of the responses still running, into their event logs."""
        with self._write() as conn:
            _journal.settle(conn, self.running_response_ids())

    def read_events(self, response_id: str, after_seq: int = 0) -> list[bytes]:
        """Every stored event of the response numbered after ``after_seq``, in order."""
        return _events.read(self._conn, response_id, after_seq)

    def last_seq(self, response_id: str) -> int:
        return _events.last_seq(self._conn, response_id)

    def finish_response(
        self,
        response_id: str,
        *,
        status: str,
        output: list[Message],
        usage: Usage | None,
        error: ErrorInfo | None,
        duration_ms: int | None,
        finish_reason: str | None = None,
        events: list[bytes] | None = None,
        stored: int = 0,
    ) -> None:
        """Record how the response ended and the messages it produced; KeyError if it is unknown.

        ``events``: the bodies of all its events, where the caller holds them (a live response),
        of which the first ``stored`` are stored already: the rest are stored with the ending
        (see ``_events.finish``). Without them, the stored rows are compacted."""
        finished_at = now()
        with self._write() as conn:
            row = conn.execute(
                "SELECT conversation_id, input_tip FROM responses WHERE id = ?", (response_id,)
            ).fetchone()
            if row is None:
                raise KeyError(response_id)
            conversation_id, input_tip = row
            output_tip = _put_chain(conn, output, input_tip)
            conn.execute(
                "UPDATE responses SET status = ?, output_tip = ?, usage = ?, error = ?, duration_ms = ?, finish_reason = ? WHERE id = ?",
                (status, output_tip, _dump(usage), _dump(error), duration_ms, finish_reason, response_id),
            )
            conn.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?) WHERE id = ?", (finished_at, conversation_id)
            )
            # The conversation goes on from this output, unless a later response started meanwhile.
            conn.execute(
                "UPDATE conversations SET tip = :tip WHERE id = :conversation AND "
                "(SELECT max(rowid) FROM responses WHERE conversation_id = :conversation) = "
                "(SELECT rowid FROM responses WHERE id = :response)",
                {"tip": output_tip, "conversation": conversation_id, "response": response_id},
            )
            _search.add_members(conn, conversation_id, output_tip)
            if events is None:
                _events.compact(conn, response_id)
            else:
                _events.finish(conn, response_id, events, stored)

    def get_response(self, response_id: str) -> ResponseRecord | None:
        """The response; ``messages`` is empty while it runs (the daemon holds the live output)."""
        query = self._conn.cursor()
        query.row_factory = sqlite3.Row
        row = query.execute("SELECT * FROM responses WHERE id = ?", (response_id,)).fetchone()
        if row is None:
            return None
        return ResponseRecord(
            id=response_id,
            conversation_id=row["conversation_id"],
            model=row["model"],
            status=row["status"],
            prompt=PromptRecord(
                messages=self.get_chain(row["input_tip"]),
                system=row["system"],
                options=_load(row["options"], dict),
                tools=_load(row["tools"], list[ToolSpec]),
            ),
            messages=_graph.read_chain(self._conn, row["output_tip"], base=row["input_tip"]),
            created_at=row["created_at"],
            usage=_load(row["usage"], Usage),
            duration_ms=row["duration_ms"],
            error=_load(row["error"], ErrorInfo),
            finish_reason=row["finish_reason"],
        )

    def delete_response(self, response_id: str) -> bool:
        """Delete the response and its events; False if it is unknown.

        Its conversation goes on from its latest remaining response, and is deleted (as by
        ``delete_conversation``) when none remains. The messages stay while the conversation
        does: other responses' chains may pass through them, and they go with it."""
        with self._write() as conn:
            row = conn.execute("SELECT conversation_id FROM responses WHERE id = ?", (response_id,)).fetchone()
            if row is None:
                return False
            (conversation_id,) = row
            conn.execute("DELETE FROM responses WHERE id = ?", (response_id,))  # its events by cascade
            latest = conn.execute(
                "SELECT coalesce(output_tip, input_tip) FROM responses WHERE conversation_id = ? ORDER BY rowid DESC LIMIT 1",
                (conversation_id,),
            ).fetchone()
            if latest is None:
                _drop_conversation(conn, conversation_id)
            else:
                conn.execute(
                    "UPDATE conversations SET tip = ?, response_count = response_count - 1 WHERE id = ?",
                    (latest[0], conversation_id),
                )
            return True

    def response_exists(self, response_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM responses WHERE id = ?", (response_id,)).fetchone() is not None

    def response_tip(self, response_id: str) -> str | None:
        """The tip of a response's whole chain, its input and output: what a reply continues."""
        row = self._conn.execute("SELECT coalesce(output_tip, input_tip) FROM responses WHERE id = ?", (response_id,)).fetchone()
        return row[0] if row else None

    def running_response_ids(self) -> list[str]:
        """Responses still marked running: after a crash, the ones to record as interrupted."""
        rows = self._conn.execute("SELECT id FROM responses WHERE status = 'running' ORDER BY rowid")
        return [response_id for (response_id,) in rows]


def _put_chain(conn: sqlite3.Connection, messages: list[Message], parent: str | None) -> str | None:
    """Store a chain and index the text of its new nodes."""
    tip, new = _graph.put_chain(conn, messages, parent)
    _search.index_nodes(conn, new)
    return tip


def _drop_conversation(conn: sqlite3.Connection, conversation_id: str) -> None:
    """Delete the conversation, its responses and their events, and the messages only it reached.

    First: finding the orphans reads the conversation_messages rows that deleting the
    conversation removes (with its responses and their events) by cascade."""
    _search.forget_orphans(conn, conversation_id)
    conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))


def _dump(value: object | None) -> bytes | None:
    return None if value is None else msgspec.json.encode(value)


def _load(data: bytes | None, into: type[_T]) -> _T | None:
    return None if data is None else msgspec.json.decode(data, type=into)


def _savepoint(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("SAVEPOINT one_write")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK TO one_write")
        conn.execute("RELEASE one_write")
        raise
    conn.execute("RELEASE one_write")
