"""A replayed history is one conversation: chat-completions-style clients against a real daemon.

Such a client sends the whole conversation every turn, its earlier answers included,
and never a conversationId. The daemon must see that it continues a stored
conversation, store only what is new, and show the conversation growing to every
other client.
"""

from __future__ import annotations

import sqlite3

import msgspec
import pytest

from parley import assistant, user
from parley._types import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart


def wire(*messages: Message) -> list[dict]:
    return [msgspec.to_builtins(m) for m in messages]


async def ask(conn, messages: list[dict], **params) -> tuple[dict, str]:
    """One turn: the started result and the answer's text."""
    started = await conn.request("prompt", {"messages": messages, **params})
    events = await conn.until_done(started["responseId"])
    assert events[-1]["status"] == "completed", events
    return started, "".join(e["chunk"] for e in events if e["type"] == "text")


def count(daemon, table: str) -> int:
    conn = sqlite3.connect(daemon.home / "data" / "parley.db")
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
async def two(daemon):
    """Two clients of one daemon: the one replaying, and one watching."""
    replaying, watching = await daemon.connect("unix"), await daemon.connect("tcp")
    yield replaying, watching
    await replaying.close()
    await watching.close()


async def test_a_replayed_history_is_one_conversation_that_others_see_grow(daemon, two):
    replaying, watching = two
    history: list[dict] = []
    ids = set()
    for turn in range(10):
        history += wire(user(f"question {turn}"))
        started, answer = await ask(replaying, history)
        history += wire(assistant(answer))
        ids.add(started["conversationId"])
        [listed] = (await watching.request("conversations/list"))["conversations"]
        assert listed["id"] == started["conversationId"] and listed["responseCount"] == turn + 1
    assert len(ids) == 1
    conversation = await watching.request("conversations/get", {"conversationId": ids.pop()})
    assert conversation["messages"] == history and len(conversation["responseIds"]) == 10
    assert count(daemon, "messages") == 20, "each message stored once"
    assert count(daemon, "node_text_docsize") == 20, "each message's text indexed once"
    found = (await watching.request("conversations/list", {"query": "question 7"}))["conversations"]
    assert [c["id"] for c in found] == [conversation["id"]]


async def test_a_replay_in_another_shape_still_continues(daemon, two):
    """The client's copy of an answer: text split in two, reasoning and metadata dropped,
    arguments re-serialised; a null-ish empty text part added."""
    replaying, _ = two
    script = (
        '{"events": [{"type": "reasoning", "chunk": "thinking", "providerMetadata": {"anthropic": {"signature": "c2ln"}}},'
        ' {"type": "text", "chunk": "Let me look."},'
        ' {"type": "tool_call_name", "toolCallId": "call_1", "chunk": "weather"},'
        ' {"type": "tool_call_args", "toolCallId": "call_1", "chunk": "{\\"city\\": \\"Paris\\", \\"days\\": 2}"}]}'
    )
    first, _ = await ask(replaying, wire(user(script)))
    record = await replaying.request("response/get", {"responseId": first["responseId"]})
    assert record["messages"][0]["parts"][0]["type"] == "reasoning", "the output is stored as produced"
    their_copy = Message(
        role="assistant",
        parts=[
            TextPart(text="Let me "),
            TextPart(text=""),
            TextPart(text="look.", provider_metadata={"openai": {"id": "msg_1"}}),
            ToolCallPart(name="weather", arguments={"days": 2, "city": "Paris"}, tool_call_id="call_1"),
        ],
    )
    results = Message(role="tool", parts=[ToolResultPart(name="weather", output="sunny", tool_call_id="call_1")])
    second, _ = await ask(replaying, wire(user(script), their_copy, results))
    assert second["conversationId"] == first["conversationId"]
    record = await replaying.request("response/get", {"responseId": second["responseId"]})
    assert record["prompt"]["messages"][1]["parts"][0] == {"type": "reasoning", "text": "thinking", "providerMetadata": {"anthropic": {"signature": "c2ln"}}}


async def test_which_conversation_a_replay_joins(daemon, two):
    replaying, _ = two
    one = wire(user("one"))
    first, answer = await ask(replaying, one)
    forced, _ = await ask(replaying, one, newConversation=True)
    assert forced["conversationId"] != first["conversationId"]
    # two conversations end at the same tip, the answer to "one": the latest updated is continued
    turn_two = [*one, *wire(assistant(answer), user("two"))]
    joined, _ = await ask(replaying, turn_two)
    assert joined["conversationId"] == forced["conversationId"]
    # the longest stored history wins over a more recently updated one
    newest, _ = await ask(replaying, one, newConversation=True)
    longer, _ = await ask(replaying, [*turn_two, *wire(assistant("two"), user("three"))])
    assert longer["conversationId"] == forced["conversationId"] != newest["conversationId"]
    # a history that departs from every tip is a new conversation
    edited, _ = await ask(replaying, wire(user("one"), assistant("not what was said"), user("two")))
    assert edited["conversationId"] not in (first["conversationId"], forced["conversationId"], newest["conversationId"])
    # naming a conversation appends the messages after its tip, as before
    named, _ = await ask(replaying, wire(user("four")), conversationId=first["conversationId"])
    conversation = await replaying.request("conversations/get", {"conversationId": first["conversationId"]})
    assert named["conversationId"] == first["conversationId"]
    assert [m["parts"][0]["text"] for m in conversation["messages"]] == ["one", "one", "four", "four"]
    clash = await replaying.call("prompt", {"prompt": "x", "newConversation": True, "conversationId": first["conversationId"]})
    assert clash["error"]["code"] == -32602 and "newConversation" in clash["error"]["message"]


async def test_a_prompt_that_adds_nothing_to_a_stored_history_starts_a_new_conversation(daemon, two):
    """Two scripts sending the same first prompt at once are two conversations, although the
    first one's tip is that prompt while it runs: continuing needs a new message."""
    replaying, watching = two
    slow = wire(user('{"events": [{"type": "text", "chunk": "slow", "delayMs": 300}]}'))
    first = await replaying.request("prompt", {"messages": slow})
    second = await watching.request("prompt", {"messages": slow})
    assert second["conversationId"] != first["conversationId"]
    await replaying.until_done(first["responseId"])
    await watching.until_done(second["responseId"])
    assert count(daemon, "messages") == 2, "the prompt is one node, and so is the answer to it"


def test_the_python_client_replays_like_a_chat_completions_client(daemon):
    import parley

    with parley.connect(f"unix://{daemon.socket}") as client:
        model = client.get_model("echo")
        first = model.prompt(messages=[user("hello")])
        history = [user("hello"), assistant(first.text()), user("again")]
        second = model.prompt(messages=history)
        assert second.text() == "again" and second.conversation_id == first.conversation_id
        fresh = model.prompt(messages=history, new_conversation=True)
        assert fresh.text() == "again" and fresh.conversation_id != first.conversation_id
        assert len(client.conversation(first.conversation_id).response_ids) == 2


async def test_a_retry_of_a_request_that_failed_continues_its_conversation(daemon, two):
    """What an SDK does after a 5xx or a 429: the same history again. It must not store a turn twice."""
    replaying, _ = two
    first, answer = await ask(replaying, wire(user("one")))
    failing = wire(user("one"), assistant(answer), user('{"events": [{"type": "error", "code": "overloaded", "message": "busy"}]}'))
    started = await replaying.request("prompt", {"messages": failing})
    assert (await replaying.until_done(started["responseId"]))[-1]["status"] == "error"
    nodes = count(daemon, "messages")
    again = await replaying.request("prompt", {"messages": failing})
    await replaying.until_done(again["responseId"])
    assert started["conversationId"] == again["conversationId"] == first["conversationId"]
    assert count(daemon, "messages") == nodes, "the retried turn is not stored again"
    # a failure after some output too (an HTTP client that was not streaming never saw it):
    # the retry is answered beside the failed response, from the same input, in its conversation
    partial = wire(user("two"), assistant("x"), user('{"events": [{"type": "text", "chunk": "half"}, {"type": "error", "code": "network", "message": "cut"}]}'))
    cut = await replaying.request("prompt", {"messages": partial})
    await replaying.until_done(cut["responseId"])
    nodes = count(daemon, "messages")
    other = await replaying.request("prompt", {"messages": partial})
    await replaying.until_done(other["responseId"])
    assert other["conversationId"] == cut["conversationId"]
    assert count(daemon, "messages") == nodes, "the input is not stored again, and the same partial answer is one node"
    record = await replaying.request("response/get", {"responseId": other["responseId"]})
    assert [m["parts"][0]["text"] for m in record["prompt"]["messages"]] == [m["parts"][0]["text"] for m in partial], "its input is the failed one's"
    # once a later response succeeded, the same request again is not a retry
    fine = wire(user("three"))
    done, _ = await ask(replaying, fine)
    again = await replaying.request("prompt", {"messages": fine})
    await replaying.until_done(again["responseId"])
    assert again["conversationId"] != done["conversationId"]
