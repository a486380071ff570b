"""Streaming over every transport: event types, seqs, reattach, cancel, many clients."""

from __future__ import annotations

import asyncio

from rpc import echo_script

ALL_EVENTS = [
    {"type": "reasoning", "chunk": "Let me think. ", "providerMetadata": {"anthropic": {"signature": "sig-1"}}},
    {"type": "reasoning", "chunk": "Done thinking."},
    {"type": "text", "chunk": "Hello "},
    {"type": "text", "chunk": "world"},
    {"type": "tool_call_name", "chunk": "get_weather", "toolCallId": "call_1"},
    {"type": "tool_call_args", "chunk": '{"city": ', "toolCallId": "call_1"},
    {"type": "tool_call_args", "chunk": '"Paris"}', "toolCallId": "call_1"},
    {"type": "tool_result", "toolCallId": "srv_1", "name": "web_search", "output": "3 results", "serverExecuted": True},
    {"type": "attachment", "mimeType": "image/png", "content": "iVBORw0KGgo="},
    {"type": "usage", "input": 12, "output": 34, "details": {"cached": 2}},
]


async def test_every_event_type_streams_with_contiguous_seqs(conn):
    started = await conn.request("prompt", {"model": "echo", "prompt": echo_script(*ALL_EVENTS)})
    events = await conn.until_done(started["responseId"])
    assert [e["type"] for e in events] == [e["type"] for e in ALL_EVENTS] + ["done"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status"] == "completed"
    # parts are indexed: reasoning 0, text 1, the tool call 2
    assert [e.get("partIndex") for e in events] == [0, 0, 1, 1, 2, 2, 2, 3, 4, None, None]
    assert all(e["messageIndex"] == 0 for e in events[:9])
    record = await conn.request("response/get", {"responseId": started["responseId"]})
    assert record["status"] == "completed"
    assert record["usage"] == {"input": 12, "output": 34, "details": {"cached": 2}}
    parts = record["messages"][0]["parts"]
    assert parts[0] == {"type": "reasoning", "text": "Let me think. Done thinking.", "providerMetadata": {"anthropic": {"signature": "sig-1"}}}
    assert parts[1] == {"type": "text", "text": "Hello world"}
    assert parts[2] == {"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}, "toolCallId": "call_1"}
    assert parts[3]["serverExecuted"] is True and parts[3]["output"] == "3 results"
    assert parts[4] == {"type": "attachment", "attachment": {"mimeType": "image/png", "content": "iVBORw0KGgo="}}


async def test_plain_prompt_echoes_in_word_chunks(conn):
    started = await conn.request("prompt", {"prompt": "The capital of France is Paris."})
    events = await conn.until_done(started["responseId"])
    chunks = [e["chunk"] for e in events if e["type"] == "text"]
    assert len(chunks) == 6 and "".join(chunks) == "The capital of France is Paris."
    record = await conn.request("response/get", {"responseId": started["responseId"]})
    assert record["prompt"]["messages"] == [{"role": "user", "parts": [{"type": "text", "text": "The capital of France is Paris."}]}]
    assert record["model"] == "echo" and record["durationMs"] >= 0


async def test_error_event_ends_the_response(conn):
    script = echo_script({"type": "text", "chunk": "partial"}, {"type": "error", "code": "rate_limited", "message": "slow down", "retryable": True, "retryAfter": 2.5}, {"type": "text", "chunk": "never sent"})
    started = await conn.request("prompt", {"prompt": script})
    events = await conn.until_done(started["responseId"])
    assert [e["type"] for e in events] == ["text", "error", "done"]
    assert events[1] == {"type": "error", "code": "rate_limited", "message": "slow down", "retryable": True, "retryAfter": 2.5, "responseId": started["responseId"], "seq": 2}
    assert events[-1]["status"] == "error"
    record = await conn.request("response/get", {"responseId": started["responseId"]})
    assert record["status"] == "error" and record["error"]["code"] == "rate_limited"
    assert record["messages"][0]["parts"] == [{"type": "text", "text": "partial"}]


async def test_a_model_cannot_end_the_stream_early(conn):
    script = echo_script({"type": "text", "chunk": "a"}, {"type": "done", "status": "completed"}, {"type": "text", "chunk": "b"})
    started = await conn.request("prompt", {"prompt": script})
    events = await conn.until_done(started["responseId"])
    assert [e["type"] for e in events] == ["text", "text", "done"]


async def test_bad_echo_script_is_a_model_error_event(conn):
    started = await conn.request("prompt", {"prompt": echo_script({"type": "no_such_event"})})
    events = await conn.until_done(started["responseId"])
    assert [e["type"] for e in events] == ["error", "done"]
    assert events[0]["code"] == "model_error" and "events[0]" in events[0]["message"]


def slow_script(n: int, delay_ms: int = 15) -> str:
    return echo_script(*({"type": "text", "chunk": f"w{i} ", "delayMs": delay_ms} for i in range(n)))


async def test_second_connection_subscribes_mid_stream_without_gap_or_duplicate(daemon, transport):
    first = await daemon.connect(transport)
    other = await daemon.connect("unix" if transport != "unix" else "tcp")
    started = await first.request("prompt", {"prompt": slow_script(40)})
    rid = started["responseId"]
    await first.wait_for(lambda: True if len(first.events(rid)) >= 8 else None)
    after = len(first.events(rid)) - 3
    subscribed = await other.request("response/subscribe", {"responseId": rid, "afterSeq": after})
    mine = await first.until_done(rid)
    theirs = await other.until_done(rid)
    assert [e["seq"] for e in mine] == list(range(1, 42))
    assert [e["seq"] for e in theirs] == list(range(after + 1, 42))
    assert theirs == mine[after:]
    assert after + 3 <= subscribed["lastSeq"] < 41, "the latest event when it subscribed (running: before its done)"
    # after the end, a subscribe replays the stored events
    late = await daemon.connect("unix")
    assert await late.request("response/subscribe", {"responseId": rid, "afterSeq": 10}) == {"lastSeq": 41}
    assert await late.until_done(rid) == mine[10:]
    for c in (first, other, late):
        await c.close()


async def test_cancel_keeps_partial_output_and_ends_with_done(conn):
    started = await conn.request("prompt", {"prompt": slow_script(200, 10)})
    rid = started["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= 5 else None)
    result = await conn.request("response/cancel", {"responseId": rid})
    assert result == {"status": "cancelled"}
    events = await conn.until_done(rid)
    await asyncio.sleep(0.2)
    assert conn.events(rid) == events, "nothing follows done"
    assert events[-1]["type"] == "done" and events[-1]["status"] == "cancelled"
    assert 5 <= len(events) - 1 < 200
    record = await conn.request("response/get", {"responseId": rid})
    assert record["status"] == "cancelled"
    assert record["messages"][0]["parts"][0]["text"] == "".join(e["chunk"] for e in events if e["type"] == "text")
    # cancelling again answers the final status
    assert await conn.request("response/cancel", {"responseId": rid}) == {"status": "cancelled"}


async def test_get_while_running_returns_what_arrived(conn):
    started = await conn.request("prompt", {"prompt": slow_script(100, 10)})
    rid = started["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= 3 else None)
    record = await conn.request("response/get", {"responseId": rid})
    assert record["status"] == "running"
    assert record["messages"][0]["parts"][0]["text"].startswith("w0 w1 w2 ")
    await conn.request("response/cancel", {"responseId": rid})


async def test_two_clients_on_two_transports_at_once(daemon, transport):
    a = await daemon.connect(transport)
    b = await daemon.connect("ws" if transport != "ws" else "unix")
    ra, rb = await asyncio.gather(
        a.request("prompt", {"prompt": slow_script(20, 5)}), b.request("prompt", {"prompt": "just words here"})
    )
    ea, eb = await asyncio.gather(a.until_done(ra["responseId"]), b.until_done(rb["responseId"]))
    assert len(ea) == 21 and "".join(e.get("chunk", "") for e in eb) == "just words here"
    assert a.events(rb["responseId"]) == [] and b.events(ra["responseId"]) == [], "only subscribers get events"
    status = await a.request("daemon/status")
    assert status["connections"] >= 2
    await a.close()
    await b.close()


async def test_reply_continues_the_whole_chain(conn):
    first = await conn.request("prompt", {"messages": [{"role": "user", "parts": [{"type": "text", "text": "Capital of France?"}]}, {"role": "assistant", "parts": [{"type": "text", "text": "Paris"}]}, {"role": "user", "parts": [{"type": "text", "text": "Germany?"}]}], "system": "Be brief"})
    await conn.until_done(first["responseId"])
    second = await conn.request("reply", {"responseId": first["responseId"], "prompt": "How about Hungary?"})
    assert second["conversationId"] == first["conversationId"]
    events = await conn.until_done(second["responseId"])
    assert "".join(e.get("chunk", "") for e in events) == "How about Hungary?"
    record = await conn.request("response/get", {"responseId": second["responseId"]})
    texts = [m["parts"][0]["text"] for m in record["prompt"]["messages"]]
    assert texts == ["Capital of France?", "Paris", "Germany?", "Germany?", "How about Hungary?"]
    assert [m["role"] for m in record["prompt"]["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    assert record["prompt"]["system"] == "Be brief"
    conversation = await conn.request("conversations/get", {"conversationId": first["conversationId"]})
    assert conversation["responseIds"] == [first["responseId"], second["responseId"]]
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    # a new prompt with conversationId continues from the stored history
    third = await conn.request("prompt", {"conversationId": first["conversationId"], "prompt": "And Spain?"})
    await conn.until_done(third["responseId"])
    record = await conn.request("response/get", {"responseId": third["responseId"]})
    assert len(record["prompt"]["messages"]) == 7
