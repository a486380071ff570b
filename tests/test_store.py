"""The daemon's SQLite store, on real database files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from parley import assistant, attachment, tool_message, tool_result, user
from parley._types import (
    ErrorInfo,
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from parleyd._store import SchemaError, Store

T0 = "2026-11-21T09:00:00.000Z"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "parley.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    store = Store(path)
    yield store
    store.close()


def count(path: Path, table: str) -> int:
    """Rows in ``table``, read through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def event(response_id: str, seq: int, chunk: str) -> bytes:
    """An event as the daemon sends it (and ``read_events`` returns it)."""
    return (
        f'{{"type":"text","chunk":"{chunk}","partIndex":0,"messageIndex":0,'
        f'"responseId":"{response_id}","seq":{seq}}}'
    ).encode()


def bodies(events: list[bytes]) -> list[bytes]:
    """The events as the daemon stores them: without their envelope (see parleyd._envelope)."""
    return [e[: e.rindex(b',"responseId":')] + b"}" for e in events]


def turn(
    store: Store,
    conversation_id: str,
    response_id: str,
    prompt: Message,
    answer: Message | None,
    *,
    model: str = "echo",
    created_at: str = T0,
) -> None:
    """A prompt in the conversation, answered by ``answer`` (None: still running)."""
    if not store.conversation_exists(conversation_id):
        title = f"title of {conversation_id}"
        store.create_conversation(conversation_id, title=title, model=model, created_at=created_at)
    input_tip = store.put_chain([prompt], store.conversation_tip(conversation_id))
    store.start_response(
        response_id=response_id,
        conversation_id=conversation_id,
        model=model,
        input_tip=input_tip,
        system=None,
        options=None,
        created_at=created_at,
    )
    if answer is not None:
        finish(store, response_id, answer)


def finish(
    store: Store,
    response_id: str,
    *output: Message,
    status: str = "completed",
    usage: Usage | None = None,
    error: ErrorInfo | None = None,
    duration_ms: int | None = 5,
) -> None:
    store.finish_response(
        response_id, status=status, output=list(output), usage=usage, error=error, duration_ms=duration_ms
    )


def ids(conversations: list) -> list[str]:
    return [c.id for c in conversations]


# ---- message graph --------------------------------------------------------------


def test_a_resent_history_stores_only_the_new_messages(store: Store, path: Path) -> None:
    history = [user("What is a monad?"), assistant("A monoid in the category of endofunctors.")]
    first = store.put_chain(history)
    assert count(path, "messages") == 2

    second = store.put_chain([*history, user("Say it simpler.")])
    assert count(path, "messages") == 3
    assert store.put_chain([user("Say it simpler.")], parent=first) == second
    assert store.put_chain(history) == first
    assert count(path, "messages") == 3
    assert store.get_chain(second) == [*history, user("Say it simpler.")]


def test_the_same_message_after_another_history_is_another_node(store: Store, path: Path) -> None:
    one = store.put_chain([user("a"), user("same")])
    two = store.put_chain([user("b"), user("same")])
    assert one != two
    assert count(path, "messages") == 4


def test_get_chain_round_trips_messages_exactly(store: Store) -> None:
    messages = [
        user("Weather in Paris?", attachment(url="https://example.com/map.png", mime_type="image/png")),
        Message(
            role="assistant",
            parts=[
                ReasoningPart(text="hmm", token_count=3, provider_metadata={"anthropic": {"signature": "c2ln"}}),
                ReasoningPart(text="", redacted=True),
                TextPart(text="Let me look.", provider_metadata={"openai": {"id": "msg_1", "n": [1, 2.5, None]}}),
                ToolCallPart(name="weather", arguments={"city": "Paris", "days": [1, 2]}, tool_call_id="call_1"),
                ToolCallPart(name="search", arguments={}, tool_call_id="srv_1", server_executed=True),
            ],
            provider_metadata={"gemini": {"thought": True}},
        ),
        Message(
            role="tool",
            parts=[
                tool_result("weather", {"temp": 21}, tool_call_id="call_1"),
                ToolResultPart(
                    name="search",
                    output="",
                    tool_call_id="srv_1",
                    exception="timeout",
                    server_executed=True,
                    attachments=[attachment(content=b"\x00\x01", mime_type="application/octet-stream")],
                ),
            ],
        ),
        assistant("21 °C and sunny. ☀"),
    ]
    tip = store.put_chain(messages)
    assert store.get_chain(tip) == messages
    assert store.get_chain(None) == []
    assert store.put_chain([], parent=tip) == tip


# ---- events ------------------------------------------------------------------------


def test_events_round_trip_and_replay_after_a_seq(store: Store, path: Path) -> None:
    turn(store, "conv_1", "resp_1", user("count"), None)
    events = [event("resp_1", seq, f"word{seq} ") for seq in range(1, 10)]
    store.append_events("resp_1", 1, bodies(events[0:3]))
    store.append_events("resp_1", 4, bodies(events[3:4]))
    store.append_events("resp_1", 5, bodies(events[4:9]))
    store.append_events("resp_1", 10, bodies([]))

    assert store.last_seq("resp_1") == 9
    assert store.last_seq("resp_unknown") == 0
    assert store.read_events("resp_unknown") == []
    for after_seq in range(0, 11):
        assert store.read_events("resp_1", after_seq) == events[after_seq:]
    assert count(path, "event_batches") == 3


def test_finishing_merges_small_batches_without_changing_the_events(store: Store, path: Path) -> None:
    turn(store, "conv_1", "resp_1", user("count"), None)
    events = [event("resp_1", seq, f"word{seq} ") for seq in range(1, 101)]
    for first in range(1, 101, 4):
        store.append_events("resp_1", first, bodies(events[first - 1 : first + 3]))
    assert count(path, "event_batches") == 25

    finish(store, "resp_1", assistant("…"))
    assert count(path, "event_batches") == 1
    assert store.last_seq("resp_1") == 100
    for after_seq in (0, 1, 50, 99, 100):
        assert store.read_events("resp_1", after_seq) == events[after_seq:]


# ---- conversations and responses ----------------------------------------------------


def test_a_conversation_continues_from_its_latest_response(store: Store) -> None:
    turn(store, "conv_1", "resp_1", user("one"), assistant("two"))
    turn(store, "conv_1", "resp_2", user("three"), None, model="other")

    conversation = store.get_conversation("conv_1")
    assert conversation is not None
    assert conversation.title == "title of conv_1"
    assert conversation.response_ids == ["resp_1", "resp_2"]
    # The running response has no output yet: the history ends with its input.
    assert conversation.messages == [user("one"), assistant("two"), user("three")]

    finish(store, "resp_2", assistant("four"))
    history = [user("one"), assistant("two"), user("three"), assistant("four")]
    assert store.get_chain(store.conversation_tip("conv_1")) == history
    [summary] = store.list_conversations()
    assert (summary.model, summary.response_count) == ("other", 2)
    assert store.get_conversation("conv_missing") is None
    assert store.conversation_tip("conv_missing") is None


def test_get_response_returns_input_output_and_outcome(store: Store) -> None:
    store.create_conversation("conv_1", title="t", model="echo", created_at=T0)
    input_tip = store.put_chain([user("hi"), assistant("hello"), user("bye")])
    store.start_response(
        response_id="resp_1",
        conversation_id="conv_1",
        model="echo",
        input_tip=input_tip,
        system="be brief",
        options={"temperature": 0.5, "stop": ["\n"]},
        created_at=T0,
    )
    running = store.get_response("resp_1")
    assert running is not None
    assert running.status == "running"
    assert running.prompt.messages == [user("hi"), assistant("hello"), user("bye")]
    assert (running.prompt.system, running.prompt.options) == ("be brief", {"temperature": 0.5, "stop": ["\n"]})
    assert running.messages == []
    assert running.created_at == T0

    error = ErrorInfo(code="rate_limited", message="slow down", retryable=True, retry_after=1.5)
    output = [
        assistant(ToolCallPart(name="f", tool_call_id="c")),
        tool_message(tool_result("f", "ok", tool_call_id="c")),
    ]
    finish(store, "resp_1", *output, status="error", usage=Usage(input=3, output=4), error=error, duration_ms=120)
    done = store.get_response("resp_1")
    assert done is not None
    assert (done.status, done.messages, done.usage, done.error, done.duration_ms) == (
        "error", output, Usage(input=3, output=4), error, 120
    )
    assert done.prompt.messages == running.prompt.messages
    assert store.get_response("resp_missing") is None
    with pytest.raises(KeyError):
        finish(store, "resp_missing")


def test_a_response_with_no_output_keeps_its_input_as_the_tip(store: Store) -> None:
    turn(store, "conv_1", "resp_1", user("hi"), None)
    finish(store, "resp_1", status="cancelled")
    record = store.get_response("resp_1")
    assert record is not None and record.messages == []
    assert store.get_chain(store.conversation_tip("conv_1")) == [user("hi")]


def test_list_conversations_newest_first_with_a_cursor(store: Store) -> None:
    for n in range(1, 5):
        turn(store, f"conv_{n}", f"resp_{n}", user(f"prompt {n}"), None, created_at=f"2026-11-21T09:00:0{n}.000Z")
    assert ids(store.list_conversations()) == ["conv_4", "conv_3", "conv_2", "conv_1"]
    page = store.list_conversations(limit=2)
    assert ids(page) == ["conv_4", "conv_3"]
    assert ids(store.list_conversations(limit=2, before=page[-1].updated_at)) == ["conv_2", "conv_1"]

    turn(store, "conv_1", "resp_5", user("again"), None, created_at="2026-11-21T09:00:09.000Z")
    newest = store.list_conversations(limit=1)[0]
    assert (newest.id, newest.title, newest.response_count, newest.created_at, newest.updated_at) == (
        "conv_1", "title of conv_1", 2, "2026-11-21T09:00:01.000Z", "2026-11-21T09:00:09.000Z"
    )


def test_running_response_ids_lists_the_unfinished(store: Store, path: Path) -> None:
    turn(store, "conv_1", "resp_1", user("a"), None)
    turn(store, "conv_2", "resp_2", user("b"), assistant("c"))
    turn(store, "conv_3", "resp_3", user("d"), None)
    assert store.running_response_ids() == ["resp_1", "resp_3"]
    store.close()

    reopened = Store(path)
    assert reopened.running_response_ids() == ["resp_1", "resp_3"]
    finish(reopened, "resp_1", status="interrupted")
    assert reopened.running_response_ids() == ["resp_3"]
    reopened.close()


# ---- search -------------------------------------------------------------------------------


def test_search_finds_a_conversation_by_a_word(store: Store) -> None:
    turn(store, "conv_1", "resp_1", user("How do giraffes sleep?"), assistant("Standing up, mostly."))
    turn(store, "conv_2", "resp_2", user("Recipe for pancakes"), None)

    assert ids(store.list_conversations(query="giraffes")) == ["conv_1"]
    assert ids(store.list_conversations(query="STANDING")) == ["conv_1"]  # the answer is indexed too
    assert ids(store.list_conversations(query="pancakes")) == ["conv_2"]
    assert ids(store.list_conversations(query="giraffes sleep")) == ["conv_1"]
    assert ids(store.list_conversations(query="giraffes pancakes")) == []
    assert ids(store.list_conversations(query="zebra")) == []


def test_search_finds_every_conversation_sharing_a_message(store: Store, path: Path) -> None:
    shared = user("Explain photosynthesis")
    turn(store, "conv_1", "resp_1", shared, assistant("Plants make sugar."))
    turn(store, "conv_2", "resp_2", shared, assistant("Chlorophyll absorbs light."))
    assert count(path, "messages") == 3  # one node for the shared prompt

    assert sorted(ids(store.list_conversations(query="photosynthesis"))) == ["conv_1", "conv_2"]
    assert ids(store.list_conversations(query="chlorophyll")) == ["conv_2"]


@pytest.mark.parametrize(
    "query",
    ['"a OR (b', "a OR (b", "NEAR(a b)", "*", "a*", "^a", "-a", "col:a", '"', '""', "AND", "(", ")", "a AND", "+ -"],
)
def test_fts_syntax_in_a_query_never_raises(store: Store, query: str) -> None:
    turn(store, "conv_1", "resp_1", user("a b c"), None)
    assert isinstance(store.list_conversations(query=query), list)


def test_query_terms_are_matched_as_text(store: Store) -> None:
    turn(store, "conv_1", "resp_1", user("cats OR dogs (both) are fine"), None)
    turn(store, "conv_2", "resp_2", user("cats only"), None)
    assert ids(store.list_conversations(query="cats OR dogs")) == ["conv_1"]
    assert ids(store.list_conversations(query="(both")) == ["conv_1"]
    assert ids(store.list_conversations(query="   ")) == ["conv_2", "conv_1"]  # blank: no filter


# ---- deleting -----------------------------------------------------------------------------------


def test_delete_removes_what_only_the_conversation_reached(store: Store, path: Path) -> None:
    shared = user("Explain photosynthesis")
    turn(store, "conv_1", "resp_1", shared, assistant("Plants make sugar."))
    turn(store, "conv_1", "resp_2", user("And respiration?"), assistant("The reverse."))
    turn(store, "conv_2", "resp_3", shared, assistant("Chlorophyll absorbs light."))
    store.append_events("resp_1", 1, bodies([event("resp_1", 1, "Plants ")]))
    store.append_events("resp_3", 1, bodies([event("resp_3", 1, "Chlorophyll ")]))
    assert count(path, "messages") == 5

    assert store.delete_conversation("conv_1") is True
    assert store.delete_conversation("conv_1") is False
    assert not store.conversation_exists("conv_1")
    assert store.get_response("resp_1") is None
    assert store.read_events("resp_1") == []
    assert count(path, "messages") == 2  # the shared prompt stays, with conv_2's answer
    assert count(path, "conversation_messages") == 2
    assert count(path, "responses") == 1
    assert count(path, "event_batches") == 1

    assert ids(store.list_conversations(query="photosynthesis")) == ["conv_2"]
    assert ids(store.list_conversations(query="respiration")) == []
    conversation = store.get_conversation("conv_2")
    assert conversation is not None
    assert conversation.messages == [shared, assistant("Chlorophyll absorbs light.")]
    assert store.read_events("resp_3") == [event("resp_3", 1, "Chlorophyll ")]

    assert store.delete_conversation("conv_2") is True
    assert (count(path, "messages"), count(path, "conversation_messages")) == (0, 0)
    assert store.list_conversations(query="photosynthesis") == []


def test_deleting_a_response_keeps_its_conversation_until_its_last(store: Store, path: Path) -> None:
    turn(store, "conv_1", "resp_1", user("Name a colour"), assistant("Teal."))
    turn(store, "conv_1", "resp_2", user("Another"), assistant("Ochre."))
    store.append_events("resp_2", 1, bodies([event("resp_2", 1, "Ochre.")]))

    assert store.delete_response("resp_2") is True
    assert store.delete_response("resp_2") is False
    assert store.get_response("resp_2") is None and store.read_events("resp_2") == []
    assert count(path, "event_batches") == 0
    conversation = store.get_conversation("conv_1")
    assert conversation is not None and conversation.response_ids == ["resp_1"]
    assert conversation.messages == [user("Name a colour"), assistant("Teal.")], "it goes on from the response left"
    assert store.list_conversations()[0].response_count == 1
    assert count(path, "messages") == 4, "the messages stay with the conversation"

    assert store.delete_response("resp_1") is True
    assert not store.conversation_exists("conv_1"), "its last response gone, the conversation goes"
    assert (count(path, "messages"), count(path, "conversation_messages")) == (0, 0)
    assert store.list_conversations(query="colour") == []


# ---- the file -----------------------------------------------------------------------------------


def test_reopening_keeps_everything(store: Store, path: Path) -> None:
    turn(store, "conv_1", "resp_1", user("Remember the walrus"), assistant("Goo goo g'joob"))
    store.append_events("resp_1", 1, bodies([event("resp_1", 1, "Goo "), event("resp_1", 2, "goo")]))
    before = (
        store.get_conversation("conv_1"),
        store.get_response("resp_1"),
        store.list_conversations(),
        store.read_events("resp_1"),
    )
    store.close()

    reopened = Store(path)
    try:
        after = (
            reopened.get_conversation("conv_1"),
            reopened.get_response("resp_1"),
            reopened.list_conversations(),
            reopened.read_events("resp_1"),
        )
        assert after == before
        assert ids(reopened.list_conversations(query="walrus")) == ["conv_1"]
        assert reopened.last_seq("resp_1") == 2
    finally:
        reopened.close()


def test_the_file_is_in_wal_mode_and_versioned(store: Store, path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    finally:
        conn.close()


def test_a_file_from_a_newer_parleyd_is_refused(path: Path) -> None:
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(SchemaError, match="schema version 999"):
        Store(path)


def test_the_daemons_timestamps_strictly_increase():
    """Ties in updatedAt would make `conversations/list {before}` skip a conversation."""
    from parleyd._clock import now

    stamps = [now() for _ in range(2000)]  # far more than one per millisecond
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(len(s) == len("2026-11-21T09:00:00.123Z") and s.endswith("Z") for s in stamps)


def test_response_tip_and_exists(tmp_path):
    from parley import assistant, user
    from parleyd._store import Store

    store = Store(tmp_path / "tips.db")
    tip = store.put_chain([user("q")])
    store.create_conversation("c", title="t", model="echo", created_at="2026-01-01T00:00:00.000Z")
    store.start_response(response_id="r", conversation_id="c", model="echo", input_tip=tip, system=None, options=None, created_at="2026-01-01T00:00:00.000Z")
    assert store.response_exists("r") and not store.response_exists("nope")
    assert store.response_tip("r") == tip, "while it runs: its input"
    store.finish_response("r", status="completed", output=[assistant("a")], usage=None, error=None, duration_ms=1)
    assert [m.role for m in store.get_chain(store.response_tip("r"))] == ["user", "assistant"]
    assert store.response_tip("nope") is None
