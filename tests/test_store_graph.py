"""The graph-native store (schema 2): canonical nodes, text indexed once, and the migration
of a database written by schema 1, on real files.

The schema-1 file is built here as that version of the store wrote it: nodes keyed by
sha256(parent + the message's sorted JSON), one FTS row per (conversation, node) keyed
by the conversation_messages id, no conversation tips.
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from pathlib import Path

import msgspec
import pytest

from parley import assistant, user
from parley._types import Message, ReasoningPart, TextPart, ToolCallPart
from parleyd._store import Store
from parleyd._store._graph import chain_hashes
from parleyd._store._schema import MIGRATIONS

T0 = "2026-11-21T09:00:00.000Z"


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_one_message_in_other_shapes_is_one_node_stored_as_first_given(tmp_path):
    store = Store(tmp_path / "parley.db")
    produced = Message(
        role="assistant",
        parts=[
            ReasoningPart(text="hmm", provider_metadata={"anthropic": {"signature": "c2ln"}}),
            TextPart(text="Sunny in Paris."),
            ToolCallPart(name="weather", arguments={"city": "Paris", "days": [1, 2]}, tool_call_id="call_1"),
        ],
        provider_metadata={"openai": {"id": "msg_1"}},
    )
    replayed = Message(
        role="assistant",
        parts=[
            TextPart(text="Sunny "),
            TextPart(text=""),
            TextPart(text="in Paris.", provider_metadata={"x": 1}),
            ToolCallPart(name="weather", arguments={"days": [1, 2], "city": "Paris"}, tool_call_id="call_1"),
        ],
    )
    first = store.put_chain([user("Weather?"), produced])
    assert store.put_chain([user("Weather?"), replayed]) == first
    assert store.get_chain(first)[1] == produced, "the node keeps the message as first given"
    other = Message(role="assistant", parts=[TextPart(text="Sunny in Paris!")])
    assert store.put_chain([user("Weather?"), other]) != first
    calls = [Message(role="assistant", parts=[ToolCallPart(name="weather", arguments={"city": c}, tool_call_id="call_1")]) for c in ("Paris", "Lyon")]
    assert chain_hashes(calls[:1]) != chain_hashes(calls[1:]), "arguments are compared as values, not dropped"
    store.close()


def test_a_node_shared_by_many_conversations_is_indexed_once(tmp_path):
    path = tmp_path / "parley.db"
    store = Store(path)
    for n in range(5):
        conversation_id = f"conv_{n}"
        store.create_conversation(conversation_id, title="t", model="echo", created_at=T0)
        tip = store.put_chain([user("Explain photosynthesis"), assistant("Plants make sugar.")])
        store.start_response(response_id=f"resp_{n}", conversation_id=conversation_id, model="echo", input_tip=tip, system=None, options=None, created_at=T0)
        store.finish_response(f"resp_{n}", status="completed", output=[assistant(f"answer {n}")], usage=None, error=None, duration_ms=1)
    assert rows(path, "SELECT count(*) FROM node_text_docsize") == [(7,)], "2 shared nodes and 5 answers"
    assert sorted(c.id for c in store.list_conversations(query="photosynthesis")) == [f"conv_{n}" for n in range(5)]
    assert [c.id for c in store.list_conversations(query="answer 3")] == ["conv_3"]
    for n in range(4):
        store.delete_conversation(f"conv_{n}")
    assert [c.id for c in store.list_conversations(query="photosynthesis")] == ["conv_4"]
    assert rows(path, "SELECT count(*) FROM node_text_docsize") == [(3,)]
    store.close()


# ---- a schema-1 file, as schema 1 wrote it ----------------------------------------------------


def _v1_hash(parent: str | None, message: Message) -> str:
    return hashlib.sha256((parent or "").encode() + msgspec.json.encode(message, order="sorted")).hexdigest()


def _v1_database(path: Path, conversations: dict[str, list[tuple[str, list[Message], list[Message]]]]) -> None:
    """``{conversation_id: [(response_id, new input messages, output)]}``, each response continuing the last."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(f"BEGIN;\n{MIGRATIONS[0]}\nPRAGMA user_version = 1;\nCOMMIT;")
    for conversation_id, turns in conversations.items():
        conn.execute("INSERT INTO conversations (id, title, model, created_at, updated_at, response_count) VALUES (?, ?, 'echo', ?, ?, ?)", (conversation_id, conversation_id, T0, T0, len(turns)))
        tip = None
        for response_id, new, output in turns:
            for message in new:
                tip = _v1_put(conn, conversation_id, tip, message)
            input_tip = tip
            for message in output:
                tip = _v1_put(conn, conversation_id, tip, message)
            conn.execute(
                "INSERT INTO responses (id, conversation_id, model, status, input_tip, output_tip, created_at) VALUES (?, ?, 'echo', 'completed', ?, ?, ?)",
                (response_id, conversation_id, input_tip, tip if output else None, T0),
            )
            event = b'{"type":"text","chunk":"x","partIndex":0,"messageIndex":0,"responseId":"%s","seq":1}' % response_id.encode()
            conn.execute("INSERT INTO event_batches (response_id, first_seq, last_seq, data) VALUES (?, 1, 1, ?)", (response_id, zlib.compress(event)))
    conn.close()


def _v1_put(conn: sqlite3.Connection, conversation_id: str, parent: str | None, message: Message) -> str:
    node = _v1_hash(parent, message)
    conn.execute("INSERT OR IGNORE INTO messages (hash, parent, data) VALUES (?, ?, ?)", (node, parent, zlib.compress(msgspec.json.encode(message, order="sorted"))))
    row = conn.execute("INSERT OR IGNORE INTO conversation_messages (conversation_id, hash) VALUES (?, ?)", (conversation_id, node))
    text = "\n".join(p.text for p in message.parts if isinstance(p, TextPart))
    if row.rowcount and text:
        conn.execute("INSERT INTO message_text (rowid, text) VALUES (?, ?)", (row.lastrowid, text))
    return node


def test_a_schema_1_database_migrates_with_nothing_lost(tmp_path):
    path = tmp_path / "parley.db"
    thinking = Message(role="assistant", parts=[ReasoningPart(text="let me think"), TextPart(text="Paris.")], provider_metadata={"p": 1})
    _v1_database(
        path,
        {
            "conv_a": [("resp_1", [user("Capital of France?")], [thinking]), ("resp_2", [user("And of Italy?")], [assistant("Rome.")])],
            "conv_b": [("resp_3", [user("Capital of France?")], [assistant("Paris, of course.")])],
            "conv_c": [("resp_4", [user("Write a haiku about walruses")], [])],
        },
    )
    store = Store(path)
    try:
        assert rows(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
        a = store.get_conversation("conv_a")
        assert a is not None and a.response_ids == ["resp_1", "resp_2"]
        assert a.messages == [user("Capital of France?"), thinking, user("And of Italy?"), assistant("Rome.")]
        record = store.get_response("resp_2")
        assert record.prompt.messages == a.messages[:3] and record.messages == [assistant("Rome.")]
        assert store.get_response("resp_4").messages == [] and store.conversation_tip("conv_c") is not None
        assert store.read_events("resp_3") == [b'{"type":"text","chunk":"x","partIndex":0,"messageIndex":0,"responseId":"resp_3","seq":1}']
        # search: every conversation holding the words, each node's text indexed once
        assert sorted(c.id for c in store.list_conversations(query="capital france")) == ["conv_a", "conv_b"]
        assert [c.id for c in store.list_conversations(query="walruses")] == ["conv_c"]
        assert rows(path, "SELECT count(*) FROM node_text_docsize") == [(6,)]
        # a replay of an old conversation's history, in the client's shape, continues it
        replay = [user("Capital of France?"), assistant("Paris."), user("And of Italy?"), assistant("Rome."), user("Spain?")]
        assert store.continued_conversation(replay)[::2] == ("conv_a", 4)
        # a schema-1 row (whole events) merges with new rows (bodies) when a response finishes
        store.append_events("resp_4", 2, [b'{"type":"done","status":"completed"}'])
        store.finish_response("resp_4", status="completed", output=[], usage=None, error=None, duration_ms=1)
        assert store.read_events("resp_4") == [
            b'{"type":"text","chunk":"x","partIndex":0,"messageIndex":0,"responseId":"resp_4","seq":1}',
            b'{"type":"done","status":"completed","responseId":"resp_4","seq":2}',
        ]
        assert rows(path, "SELECT count(*) FROM event_batches WHERE response_id = 'resp_4'") == [(1,)]
        # and deleting stays consistent with the index
        assert store.delete_conversation("conv_a")
        assert [c.id for c in store.list_conversations(query="capital")] == ["conv_b"]
        assert store.list_conversations(query="italy") == []
    finally:
        store.close()
    reopened = Store(path)  # and it opens again as it is
    assert [c.id for c in reopened.list_conversations(query="walruses")] == ["conv_c"]
    reopened.close()


def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "parley.db"
    _v1_database(path, {"conv_a": [("resp_1", [user("hello")], [assistant("hi")])]})
    before = rows(path, "SELECT hash, parent FROM messages ORDER BY rowid")
    import parleyd._store._schema as schema

    def broken(conn):
        schema._graph_native(conn)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(schema, "MIGRATIONS", [*MIGRATIONS[:1], broken])
    with pytest.raises(RuntimeError, match="disk on fire"):
        Store(path)
    assert rows(path, "PRAGMA user_version") == [(1,)]
    assert rows(path, "SELECT hash, parent FROM messages ORDER BY rowid") == before
    monkeypatch.undo()  # the real migration, now
    store = Store(path)
    assert [c.id for c in store.list_conversations(query="hello")] == ["conv_a"]
    store.close()


def test_a_replayed_turn_costs_the_same_sql_early_and_late(tmp_path):
    """The daemon's steps for one replayed turn (find the conversation, store what is new,
    start and finish the response), with every SQL statement counted: turn 40 runs exactly
    the statements turn 3 ran, however long the history."""
    store = Store(tmp_path / "parley.db")
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    history: list[Message] = []
    counts = {}
    for turn in range(41):
        history.append(user(f"question {turn}"))
        statements.clear()
        found = store.continued_conversation(history)
        conversation_id, tip, held = found if found else (f"conv_{turn}", None, 0)
        if found is None:
            store.create_conversation(conversation_id, title="t", model="echo", created_at=T0)
        input_tip = store.put_chain(history[held:], tip)
        store.start_response(response_id=f"resp_{turn}", conversation_id=conversation_id, model="echo", input_tip=input_tip, system=None, options=None, created_at=T0)
        store.finish_response(f"resp_{turn}", status="completed", output=[assistant(f"answer {turn}")], usage=None, error=None, duration_ms=1)
        history.append(assistant(f"answer {turn}"))
        counts[turn] = len(statements)
    assert [c.id for c in store.list_conversations()] == ["conv_0"]
    assert counts[3] == counts[40], counts
    store.close()


def test_events_are_stored_as_bodies_and_read_back_sealed_byte_for_byte(tmp_path):
    """Every event type, encoded unstamped (its body) and sealed with its envelope, is the same
    bytes as the stamped event encoded; the store keeps bodies and reads back the wire form."""
    from parley._types import EVENT_TYPES, AnyEvent
    from parleyd._envelope import opening, sealed

    samples = {
        "text": {"chunk": 'a "quoted" \\ \u2603', "partIndex": 0, "messageIndex": 0},
        "reasoning": {"chunk": "hmm", "redacted": True, "providerMetadata": {"anthropic": {"signature": "c2ln"}}, "partIndex": 1, "messageIndex": 0},
        "tool_call_name": {"chunk": "weather", "toolCallId": "call_1", "serverExecuted": True, "partIndex": 2, "messageIndex": 0},
        "tool_call_args": {"chunk": "{}", "toolCallId": "call_1", "partIndex": 2, "messageIndex": 0},
        "tool_result": {"name": "weather", "output": "sunny", "toolCallId": "call_1", "partIndex": 0, "messageIndex": 1},
        "tool_progress": {"toolCallId": "call_1", "progress": 2.0, "total": 4.0, "message": "half"},
        "attachment": {"mimeType": "image/png", "content": "iVBORw0KGgo=", "partIndex": 3, "messageIndex": 0},
        "usage": {"input": 3, "output": 4, "details": {"cached": 1}},
        "error": {"code": "rate_limited", "message": "slow down", "retryable": True, "retryAfter": 2.5},
        "done": {"status": "completed", "finishReason": "stop"},
    }
    assert set(samples) == set(EVENT_TYPES)
    decode = msgspec.json.Decoder(AnyEvent).decode
    path = tmp_path / "parley.db"
    store = Store(path)
    store.create_conversation("conv_1", title="t", model="echo", created_at=T0)
    store.start_response(response_id="resp_1", conversation_id="conv_1", model="echo", input_tip=None, system=None, options=None, created_at=T0)
    wire, stored = [], []
    for seq, (kind, fields) in enumerate(samples.items(), start=1):
        event = decode(msgspec.json.encode({"type": kind, **fields}))
        body = msgspec.json.encode(event)
        event.response_id, event.seq = "resp_1", seq
        assert sealed(body, opening("resp_1"), seq) == msgspec.json.encode(event), kind
        wire.append(msgspec.json.encode(event))
        stored.append(body)
    store.append_events("resp_1", 1, stored[:4])
    store.append_events("resp_1", 5, stored[4:])
    assert store.read_events("resp_1") == wire and store.read_events("resp_1", after_seq=6) == wire[6:]
    [(data,)] = rows(path, "SELECT data FROM event_batches WHERE first_seq = 1")
    assert zlib.decompress(data).startswith(b"\x00") and b"responseId" not in zlib.decompress(data)
    store.finish_response("resp_1", status="completed", output=[], usage=None, error=None, duration_ms=1)
    assert rows(path, "SELECT count(*) FROM event_batches") == [(1,)] and store.read_events("resp_1") == wire
    store.close()


def test_the_remembered_hash_of_a_text_message_is_the_hash_of_its_canonical_form():
    from parleyd._store._graph import _digest, node_hash

    for message in (user("hi"), assistant(""), user("x" * 8192), user("x" * 8193), Message(role="user", parts=[TextPart(text="a"), TextPart(text="b")])):
        for parent in (None, "ab" * 32):
            assert node_hash(parent, message) == node_hash(parent, message) == _digest(parent, message)
    assert node_hash(None, user("ab")) == node_hash(None, Message(role="user", parts=[TextPart(text="a"), TextPart(text="b")]))
