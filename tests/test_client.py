"""The Python client scripts use, against a real daemon over each transport."""

from __future__ import annotations

import json
import time

import pytest

import parley
from parley import assistant, user
from rpc import echo_script

URLS = {
    "unix": lambda d: f"unix://{d.socket}",
    "tcp": lambda d: f"tcp://127.0.0.1:{d.tcp_port}",
    "ws": lambda d: f"ws://127.0.0.1:{d.ws_port}",
}


@pytest.fixture(params=list(URLS))
def url(request, daemon):
    return URLS[request.param](daemon)


def test_the_readme_example(daemon, url):
    with parley.connect(url, token=daemon.token) as client:
        model = client.get_model("echo")
        response = model.prompt(messages=[user("Capital of France?"), assistant("Paris"), user("Germany?")])
        events = list(response.stream_events())
        assert [e.type for e in events] == ["text", "usage", "done"]
        assert [e.seq for e in events] == [1, 2, 3]
        assert response.text() == "Germany?"
        again = response.reply("How about Hungary?")
        assert again.text() == "How about Hungary?"
        assert again.conversation_id == response.conversation_id
        data = again.to_dict()
        assert data["model"] == "echo"
        assert [m["role"] for m in data["prompt"]["messages"]] == ["user", "assistant", "user", "assistant", "user"]
        assert data["messages"] == [{"role": "assistant", "parts": [{"type": "text", "text": "How about Hungary?"}]}]
        same = parley.Response.from_dict(data)
        assert same.text() == "How about Hungary?" and same.to_dict() == data
        json.dumps(data)  # plain JSON


def test_typed_parts_errors_and_cancel(daemon):
    with parley.connect(f"unix://{daemon.socket}") as client:
        model = client.get_model()  # the default model
        script = echo_script(
            {"type": "reasoning", "chunk": "thinking"},
            {"type": "tool_call_name", "chunk": "lookup", "toolCallId": "c1"},
            {"type": "tool_call_args", "chunk": '{"q": 1}', "toolCallId": "c1"},
            {"type": "text", "chunk": "done"},
        )
        response = model.prompt(script, system="sys", hide_reasoning=False)
        assert response.text() == "done" and response.reasoning() == "thinking"
        assert [(c.name, c.arguments, c.tool_call_id) for c in response.tool_calls()] == [("lookup", {"q": 1}, "c1")]

        failing = model.prompt(echo_script({"type": "error", "code": "overloaded", "message": "busy", "retryable": True}))
        with pytest.raises(parley.ResponseFailed) as info:
            failing.text()
        assert info.value.kind == "overloaded" and info.value.retryable

        slow = model.prompt(echo_script(*({"type": "text", "chunk": "x", "delayMs": 20} for _ in range(200))))
        for event in slow.stream_events():
            if event.seq == 3:
                break
        assert slow.cancel() == "cancelled"
        assert 3 <= len(slow.text()) < 200

        with pytest.raises(parley.UnknownModel):
            client.get_model("nope")
        # a response rebuilt from a dict continues with its whole chain, as a new prompt
        stored = {"model": "echo", "prompt": {"messages": [{"role": "user", "parts": [{"type": "text", "text": "a"}]}]}, "messages": [{"role": "assistant", "parts": [{"type": "text", "text": "b"}]}], "id": "resp_gone"}
        continued = parley.Response.from_dict(stored, client=client).reply("c")
        assert continued.text() == "c"
        assert [parley.text_of(m) for m in continued.prompt().messages] == ["a", "b", "c"]


async def test_async_client(daemon, url):
    client = await parley.connect_async(url, token=daemon.token)
    try:
        model = await client.get_model("echo")
        response = await model.prompt("one two three")
        chunks = [e.chunk async for e in response.astream_events() if e.type == "text"]
        assert chunks == ["one ", "two ", "three"]
        again = await response.reply("four")
        assert await again.text() == "four"
        conversations = await client.conversations(query="three")
        assert [c.id for c in conversations] == [response.conversation_id]
    finally:
        await client.close()


async def test_async_client_takes_merged_deltas(daemon):
    """A script whose event loop is busy reads late: the daemon merges text deltas (seq…seqEnd)
    and the client takes each as the seqs it stands for, with no resubscribe for a gap."""
    words = 150_000
    client = await parley.connect_async(f"unix://{daemon.socket}")
    try:
        response = await (await client.get_model("echo")).prompt("word " * words)
        time.sleep(3)  # the loop is busy: nothing is read while the daemon streams
        events = [e async for e in response.astream_events()]
        assert "".join(e.chunk for e in events if e.type == "text") == "word " * words
        merged = [e for e in events if isinstance(e, parley.DeltaEvent) and e.seq_end is not None]
        assert merged and len(events) < words
        seqs = [seq for e in events for seq in range(e.seq, e.last_seq + 1)]
        assert seqs == list(range(1, words + 3)) and events[-1].type == "done"
    finally:
        await client.close()
