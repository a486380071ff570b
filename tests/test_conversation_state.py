"""What a prompt in a named conversation inherits: the system prompt, options and tools of the
conversation's latest response, unless it gives its own; a reply inherits its parent's tools."""

from __future__ import annotations

WEATHER = {"name": "get_weather", "description": "The weather in a city", "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}}
SCHEMA = {"type": "object"}


async def turn(conn, method: str, params: dict) -> dict:
    started = await conn.request(method, params)
    events = await conn.until_done(started["responseId"])
    assert events[-1]["type"] == "done", events
    return await conn.request("response/get", {"responseId": started["responseId"]})


async def test_a_prompt_in_a_named_conversation_inherits_what_it_leaves_unset(conn):
    first = await turn(conn, "prompt", {"model": "echo", "prompt": '{"a": 1}', "system": "be brief", "options": {"schema": SCHEMA}, "tools": [WEATHER]})
    conversation = {"conversationId": first["conversationId"]}
    second = await turn(conn, "prompt", {"model": "echo", "prompt": '{"b": 2}', **conversation})
    assert second["prompt"]["system"] == "be brief" and second["prompt"]["options"] == {"schema": SCHEMA}
    assert [t["name"] for t in second["prompt"]["tools"]] == ["get_weather"]
    assert second["status"] == "completed", "the inherited schema held the answer: JSON"
    # given, they replace what the conversation had; `tools: []` and `options: {}` clear them
    third = await turn(conn, "prompt", {"model": "echo", "prompt": "plain", "system": "be kind", "options": {}, "tools": [], **conversation})
    assert third["prompt"]["system"] == "be kind" and not third["prompt"].get("options") and not third["prompt"].get("tools")
    assert third["status"] == "completed", "no schema any more: plain text is an answer"
    # a reply inherits its parent's tools as it does its system prompt and options
    fourth = await turn(conn, "prompt", {"model": "echo", "prompt": "with tools", "tools": [WEATHER], **conversation})
    replied = await turn(conn, "reply", {"responseId": fourth["id"], "prompt": "and again"})
    assert [t["name"] for t in replied["prompt"]["tools"]] == ["get_weather"] and replied["conversationId"] == first["conversationId"]
    # a replayed history (no conversation id) inherits nothing: such clients send all each time
    replay = await turn(conn, "prompt", {"model": "echo", "messages": [{"role": "user", "parts": [{"type": "text", "text": "fresh"}]}]})
    assert replay["prompt"].get("system") is None and not replay["prompt"].get("tools")
