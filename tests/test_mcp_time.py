"""MCP tools hosted by the daemon, against mcp-server-time (PyPI, stdio): offered, approved, called."""

from __future__ import annotations

import json

import pytest

from mcp_support import answer_approvals, approvals, call, rounds, servers_ready, start_daemon, time_server


@pytest.fixture
def time_daemon(tmp_path):
    proc = start_daemon(tmp_path / "home", {"time": time_server()})
    yield proc
    proc.stop()


async def test_a_call_is_approved_then_its_structured_answer_is_the_result(time_daemon):
    conn = await time_daemon.connect("unix")
    listed = await servers_ready(conn, "time")
    assert [t["name"] for t in listed["time"]["tools"]] == ["time__convert_time", "time__get_current_time"]
    assert listed["time"]["pid"] and listed["time"]["transport"] == "stdio"
    script = rounds(call("time__get_current_time", "c1", {"timezone": "Europe/Paris"}))
    rid = (await conn.request("prompt", {"prompt": script, "mcpServers": ["time"]}))["responseId"]
    [asked] = await answer_approvals(conn, "allow_once")
    assert asked["params"]["server"] == "time" and asked["params"]["name"] == "get_current_time"
    assert asked["params"]["tool"] == "time__get_current_time"
    assert asked["params"]["arguments"] == {"timezone": "Europe/Paris"}
    assert asked["params"]["annotations"]["readOnlyHint"] is True
    events = await conn.until_done(rid, timeout=30)
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert result["structuredContent"]["timezone"] == "Europe/Paris"
    assert json.loads(result["output"])["timezone"] == "Europe/Paris"
    assert "exception" not in result
    assert events[-1]["finishReason"] == "stop"
    text = "".join(e["chunk"] for e in events if e["type"] == "text")
    assert text.startswith("time__get_current_time: {")
    record = await conn.request("response/get", {"responseId": rid})
    assert record["prompt"].get("tools") is None  # MCP tools are not stored as the client's
    assert record["messages"][1]["parts"][0]["structuredContent"]["timezone"] == "Europe/Paris"


async def test_unknown_tool_and_a_server_error_are_tool_errors_the_model_sees(time_daemon):
    conn = await time_daemon.connect("unix")
    await servers_ready(conn, "time")
    script = rounds(call("time__no_such_tool", "c1", {}) + call("time__get_current_time", "c2", {"timezone": "Mars/Olympus"}))
    rid = (await conn.request("prompt", {"prompt": script, "mcpServers": ["time"]}))["responseId"]
    await answer_approvals(conn, "allow_once")
    events = await conn.until_done(rid, timeout=30)
    results = {e["toolCallId"]: e for e in events if e["type"] == "tool_result"}
    assert results["c1"]["exception"] == "no tool named 'time__no_such_tool' was declared"
    assert "Mars/Olympus" in results["c2"]["exception"]
    assert events[-1]["status"] == "completed"


async def test_deny_allow_always_and_nothing_offered_unasked(time_daemon):
    conn = await time_daemon.connect("unix")
    await servers_ready(conn, "time")
    script = rounds(call("time__get_current_time", "c1", {"timezone": "UTC"}))
    # without mcpServers the model gets no MCP tool
    plain = (await conn.request("prompt", {"prompt": script, "chainLimit": 2}))["responseId"]
    events = await conn.until_done(plain)
    assert events[-1]["finishReason"] == "tool_calls" and not approvals(conn)
    # denied: not run, and the model is told
    rid = (await conn.request("prompt", {"prompt": script, "mcpServers": ["time"]}))["responseId"]
    await answer_approvals(conn, "deny")
    [result] = [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"]
    assert result["exception"] == "not run: the user denied it"
    # allowed always: asked once, then never again for this tool
    rid = (await conn.request("prompt", {"prompt": script, "mcpServers": ["time"]}))["responseId"]
    await answer_approvals(conn, "allow_always")
    await conn.until_done(rid, timeout=30)
    rid = (await conn.request("prompt", {"prompt": script, "mcpServers": ["time"]}))["responseId"]
    [result] = [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"]
    assert "exception" not in result and len(approvals(conn)) == 2
    stored = json.loads((time_daemon.home / "data" / "mcp-approvals.json").read_text())
    assert stored["time"]["tools"] == ["get_current_time"]
    assert oct((time_daemon.home / "data" / "mcp-approvals.json").stat().st_mode & 0o777) == "0o600"


async def test_unknown_server_is_invalid_params(time_daemon):
    conn = await time_daemon.connect("unix")
    answer = await conn.call("prompt", {"prompt": "hi", "mcpServers": ["nope"]})
    assert answer["error"]["code"] == -32602
    assert "unknown MCP server 'nope'" in answer["error"]["message"]
