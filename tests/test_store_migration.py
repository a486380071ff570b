"""Schemas 4 and 5: a database written by schema 3 upgrades with nothing lost, on real files.

The schema-3 file is built as that version of the store wrote it: its rows inserted with the
columns schema 3 had (the message graph's code is unchanged since, so it writes the nodes).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

import parleyd._store._schema as schema
from parley import assistant, user
from parley._types import PromptRecord, ToolSpec
from parleyd._store import Store
from parleyd._store._graph import put_chain
from parleyd._store._search import add_members, index_nodes

T0 = "2026-11-21T09:00:00.000Z"
T1 = "2026-11-21T09:00:01.000Z"
TOOL = ToolSpec(name="lookup")


def _v3_database(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """conv_a: two responses (completed; error); conv_b: one cancelled, one interrupted."""
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
    conn = schema.connect(path)
    monkeypatch.undo()
    turns = {
        "conv_a": [("resp_1", "completed", "Capital of France?", "Paris.", "be brief"), ("resp_2", "error", "And Italy?", "Ro", "be kind")],
        "conv_b": [("resp_3", "cancelled", "Write a poem", "Roses", None), ("resp_4", "interrupted", "Another", "", None)],
    }
    for conversation_id, responses in turns.items():
        conn.execute(
            "INSERT INTO conversations (id, title, model, created_at, updated_at, response_count, session_key) VALUES (?, ?, 'echo', ?, ?, ?, NULL)",
            (conversation_id, responses[0][2], T0, T1, len(responses)),
        )
        tip = None
        for response_id, status, question, answer, system in responses:
            input_tip, new = put_chain(conn, [user(question)], tip)
            index_nodes(conn, new)
            output_tip, new = put_chain(conn, [assistant(answer)], input_tip) if answer else (None, [])
            index_nodes(conn, new)
            tip = output_tip or input_tip
            conn.execute(
                "INSERT INTO responses (id, conversation_id, model, status, input_tip, output_tip, system, options, tools, duration_ms, created_at) "
                "VALUES (?, ?, 'echo', ?, ?, ?, ?, ?, ?, 1, ?)",
                (response_id, conversation_id, status, input_tip, output_tip, system, b'{"schema":{"type":"object"}}', msgspec.json.encode([TOOL]), T0),
            )
            add_members(conn, conversation_id, tip)
            conn.execute("UPDATE conversations SET tip = ? WHERE id = ?", (tip, conversation_id))
    conn.close()


def test_a_schema_3_database_upgrades_with_nothing_lost(tmp_path, monkeypatch):
    path = tmp_path / "parley.db"
    _v3_database(path, monkeypatch)
    store = Store(path)
    try:
        assert store._conn.execute("PRAGMA user_version").fetchone() == (len(schema.MIGRATIONS),) == (5,)
        assert store._conn.execute("SELECT count(*) FROM event_journal").fetchone() == (0,), "5: the journal, empty"
        listed = store.list_conversations()
        assert sorted((c.id, c.title, c.response_count, c.cwd) for c in listed) == [("conv_a", "Capital of France?", 2, None), ("conv_b", "Write a poem", 2, None)]
        a = store.get_conversation("conv_a")
        assert a.cwd is None and a.response_ids == ["resp_1", "resp_2"]
        assert a.messages == [user("Capital of France?"), assistant("Paris."), user("And Italy?"), assistant("Ro")]
        # the reasons that follow from the status are known; a completed one's is not
        reasons = {r: store.get_response(r).finish_reason for r in ("resp_1", "resp_2", "resp_3", "resp_4")}
        assert reasons == {"resp_1": None, "resp_2": "error", "resp_3": "cancelled", "resp_4": "interrupted"}
        # what a prompt in an old conversation inherits is still its latest response's
        model, settings = store.conversation_settings("conv_a")
        assert (model, settings.system, settings.options, settings.tools) == ("echo", "be kind", {"schema": {"type": "object"}}, [TOOL])
        assert [c.id for c in store.list_conversations(query="poem")] == ["conv_b"]
        assert store.list_conversations(cwd="/anywhere") == []

        # and the new columns work beside the old rows
        base = PromptRecord(messages=[], system="sys", options={"schema": {"type": "object"}}, tools=[TOOL])
        store.create_conversation("conv_c", title="", model="echo", created_at="2026-11-21T09:00:02.000Z", cwd="/src", settings=base)
        assert store.conversation_settings("conv_c") == ("echo", base)
        assert [c.id for c in store.list_conversations(cwd="/src")] == ["conv_c"]
        store.start_response(response_id="resp_5", conversation_id="conv_c", model="echo", input_tip=None, system=None, options=None, created_at=T1, title="First")
        store.finish_response("resp_5", status="completed", output=[assistant("ok")], usage=None, error=None, duration_ms=1, finish_reason="stop")
        assert store.get_response("resp_5").finish_reason == "stop" and store.get_conversation("conv_c").title == "First"
        assert store.conversation_settings("conv_c")[1] == PromptRecord(messages=[]), "the latest response's settings, now"
    finally:
        store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (5,), "it opens again as it is"
    Store(path).close()
