"""Tool chains run by the daemon: `tool/execute` to the declaring connection, results, next rounds."""

from __future__ import annotations

import asyncio
import json

import pytest

from rpc import RawConnection

ADD = {"name": "add", "description": "Add two numbers", "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}
MUL = {"name": "mul", "inputSchema": {"type": "object"}}


def call(name: str, call_id: str, args: dict) -> list[dict]:
    return [
        {"type": "tool_call_name", "chunk": name, "toolCallId": call_id},
        {"type": "tool_call_args", "chunk": json.dumps(args), "toolCallId": call_id},
    ]


def rounds(*rounds_: list[dict]) -> str:
    return json.dumps({"rounds": list(rounds_)})


def tool_requests(conn: RawConnection) -> list[dict]:
    return [n for n in conn.notifications if n.get("method") == "tool/execute"]


async def answer_tools(conn: RawConnection, answer, *, count: int = 1) -> list[dict]:
    """Answer the first ``count`` tool/execute requests with ``answer(params)``."""
    requests = await conn.wait_for(lambda: tool_requests(conn)[:count] if len(tool_requests(conn)) >= count else None)
    for request in requests:
        await conn.send({"jsonrpc": "2.0", "id": request["id"], "result": answer(request["params"])})
    return requests


def add(params: dict) -> dict:
    return {"output": str(params["arguments"]["a"] + params["arguments"]["b"])}


async def test_single_call_runs_a_two_round_chain(daemon, transport):
    conn = await daemon.connect(transport)
    started = await conn.request("prompt", {"prompt": rounds(call("add", "c1", {"a": 1, "b": 2})), "tools": [ADD], "chainLimit": 3})
    rid = started["responseId"]
    requests = await answer_tools(conn, add)
    assert requests[0]["params"] == {"responseId": rid, "toolCallId": "c1", "name": "add", "arguments": {"a": 1, "b": 2}}
    events = await conn.until_done(rid)
    assert [e["type"] for e in events] == ["tool_call_name", "tool_call_args", "tool_result", "text", "text", "usage", "done"]
    result = events[2]
    assert result == {"type": "tool_result", "toolCallId": "c1", "name": "add", "output": "3", "partIndex": 0, "messageIndex": 1, "responseId": rid, "seq": 3}
    assert {e["messageIndex"] for e in events[3:5]} == {2}
    record = await conn.request("response/get", {"responseId": rid})
    assert [m["role"] for m in record["messages"]] == ["assistant", "tool", "assistant"]
    assert record["messages"][2]["parts"] == [{"type": "text", "text": "add: 3"}]
    # the next turn sees the whole chain
    nxt = await conn.request("reply", {"responseId": rid, "prompt": "thanks"})
    await conn.until_done(nxt["responseId"])
    again = await conn.request("response/get", {"responseId": nxt["responseId"]})
    assert [m["role"] for m in again["prompt"]["messages"]] == ["user", "assistant", "tool", "assistant", "user"]


async def test_parallel_calls_run_at_once(daemon):
    conn = await daemon.connect("unix")
    script = rounds(call("add", "c1", {"a": 1, "b": 1}) + call("mul", "c2", {"a": 2, "b": 3}))
    started = await conn.request("prompt", {"prompt": script, "tools": [ADD, MUL], "chainLimit": 2})
    requests = await conn.wait_for(lambda: tool_requests(conn) if len(tool_requests(conn)) == 2 else None)
    assert {r["params"]["name"] for r in requests} == {"add", "mul"}, "both are asked before either is answered"
    for request, output in zip(reversed(requests), ["six", "two"]):
        await conn.send({"jsonrpc": "2.0", "id": request["id"], "result": {"output": output}})
    events = await conn.until_done(started["responseId"])
    results = [e for e in events if e["type"] == "tool_result"]
    assert [(r["name"], r["partIndex"]) for r in results] == [("mul", 0), ("add", 1)]
    assert "".join(e["chunk"] for e in events if e["type"] == "text") == "mul: six\nadd: two"


async def test_a_chain_of_three_rounds(daemon):
    conn = await daemon.connect("unix")
    script = rounds(call("add", "c1", {"a": 1, "b": 2}), call("add", "c2", {"a": 3, "b": 4}))
    started = await conn.request("prompt", {"prompt": script, "tools": [ADD], "chainLimit": 5})
    await answer_tools(conn, add, count=1)
    await answer_tools(conn, add, count=2)
    events = await conn.until_done(started["responseId"])
    record = await conn.request("response/get", {"responseId": started["responseId"]})
    assert [m["role"] for m in record["messages"]] == ["assistant", "tool", "assistant", "tool", "assistant"]
    assert record["messages"][-1]["parts"][0]["text"] == "add: 7"
    assert events[-1]["status"] == "completed"


async def test_the_chain_limit_stops_execution(daemon):
    conn = await daemon.connect("unix")
    started = await conn.request("prompt", {"prompt": rounds(call("add", "c1", {"a": 1, "b": 2})), "tools": [ADD]})
    events = await conn.until_done(started["responseId"])
    assert [e["type"] for e in events] == ["tool_call_name", "tool_call_args", "done"]
    assert tool_requests(conn) == [], "chainLimit defaults to one round: the call is left to the client"


async def test_a_raising_tool_and_an_error_answer_go_back_to_the_model(daemon):
    conn = await daemon.connect("unix")
    script = rounds(call("add", "c1", {"a": 1, "b": 2}) + call("mul", "c2", {}))
    started = await conn.request("prompt", {"prompt": script, "tools": [ADD, MUL], "chainLimit": 2})
    requests = await conn.wait_for(lambda: tool_requests(conn) if len(tool_requests(conn)) == 2 else None)
    by_name = {r["params"]["name"]: r for r in requests}
    await conn.send({"jsonrpc": "2.0", "id": by_name["add"]["id"], "result": {"output": "", "exception": "ValueError: boom"}})
    await conn.send({"jsonrpc": "2.0", "id": by_name["mul"]["id"], "error": {"code": -32000, "message": "no multiplication today"}})
    events = await conn.until_done(started["responseId"])
    results = {e["name"]: e for e in events if e["type"] == "tool_result"}
    assert results["add"]["exception"] == "ValueError: boom"
    assert "no multiplication today" in results["mul"]["exception"]
    assert events[-1]["status"] == "completed"


async def test_undeclared_tools_are_not_sent_to_the_client(daemon):
    conn = await daemon.connect("unix")
    started = await conn.request("prompt", {"prompt": rounds(call("rm_rf", "c1", {})), "tools": [ADD], "chainLimit": 2})
    events = await conn.until_done(started["responseId"])
    result = next(e for e in events if e["type"] == "tool_result")
    assert "no tool named 'rm_rf'" in result["exception"]
    assert tool_requests(conn) == []


async def test_cancel_cancels_the_pending_tool_call(daemon):
    conn = await daemon.connect("unix")
    started = await conn.request("prompt", {"prompt": rounds(call("add", "c1", {"a": 1, "b": 2})), "tools": [ADD], "chainLimit": 2})
    rid = started["responseId"]
    (request,) = await conn.wait_for(lambda: tool_requests(conn) or None)
    assert await conn.request("response/cancel", {"responseId": rid}) == {"status": "cancelled"}
    cancel = await conn.wait_for(lambda: next((n for n in conn.notifications if n.get("method") == "$/cancelRequest"), None))
    assert cancel["params"] == {"id": request["id"]}
    events = await conn.until_done(rid)
    assert events[-1]["status"] == "cancelled"
    # an answer that comes too late is ignored
    await conn.send({"jsonrpc": "2.0", "id": request["id"], "result": {"output": "3"}})
    assert (await conn.request("models/list"))["models"]


async def test_a_tool_client_that_disconnects_ends_the_response(daemon):
    tool_client = await daemon.connect("unix")
    watcher = await daemon.connect("tcp")
    started = await tool_client.request("prompt", {"prompt": rounds(call("add", "c1", {"a": 1, "b": 2})), "tools": [ADD], "chainLimit": 2})
    rid = started["responseId"]
    await watcher.request("response/subscribe", {"responseId": rid})
    await tool_client.wait_for(lambda: tool_requests(tool_client) or None)
    await tool_client.close()
    events = await watcher.until_done(rid)
    assert events[-2]["type"] == "error" and events[-2]["code"] == "tool_client_disconnected"
    assert events[-1]["status"] == "error"
    record = await watcher.request("response/get", {"responseId": rid})
    assert record["status"] == "error" and record["messages"][0]["parts"][0]["name"] == "add"


async def test_reply_with_tool_results_for_clients_that_run_tools_themselves(daemon, transport):
    conn = await daemon.connect(transport)
    started = await conn.request("prompt", {"prompt": rounds(call("add", "c1", {"a": 1, "b": 2})), "tools": [ADD]})
    await conn.until_done(started["responseId"])
    results = [{"type": "tool_result", "name": "add", "output": "3", "toolCallId": "c1"}]
    second = await conn.request("reply", {"responseId": started["responseId"], "toolResults": results})
    events = await conn.until_done(second["responseId"])
    assert "".join(e["chunk"] for e in events if e["type"] == "text") == "add: 3"
    record = await conn.request("response/get", {"responseId": second["responseId"]})
    assert [m["role"] for m in record["prompt"]["messages"]] == ["user", "assistant", "tool"]


@pytest.fixture
def impatient_daemon(tmp_path):
    from conftest import DaemonProcess

    proc = DaemonProcess(tmp_path, extra_args=["--tool-timeout", "0.5"])
    proc.start()
    yield proc
    proc.stop()


async def test_an_unanswered_tool_call_times_out(impatient_daemon):
    conn = await impatient_daemon.connect("unix")
    started = await conn.request("prompt", {"prompt": rounds(call("add", "c1", {"a": 1, "b": 2})), "tools": [ADD], "chainLimit": 2})
    events = await conn.until_done(started["responseId"])
    result = next(e for e in events if e["type"] == "tool_result")
    assert "within 0.5 s" in result["exception"]
    assert events[-1]["status"] == "completed"
    await asyncio.sleep(0)


async def test_calls_the_provider_runs_are_not_sent_to_the_client(daemon):
    conn = await daemon.connect("unix")
    search = [
        {"type": "tool_call_name", "chunk": "web_search", "toolCallId": "srvtoolu_1", "serverExecuted": True},
        {"type": "tool_call_args", "chunk": '{"query": "parley"}', "toolCallId": "srvtoolu_1"},
        {"type": "tool_result", "toolCallId": "srvtoolu_1", "name": "web_search", "output": "3 results", "serverExecuted": True},
        {"type": "text", "chunk": "Found it."},
    ]
    started = await conn.request("prompt", {"prompt": rounds(search), "tools": [ADD], "chainLimit": 3})
    events = await conn.until_done(started["responseId"])
    assert events[0]["serverExecuted"] is True
    assert tool_requests(conn) == [] and events[-1]["status"] == "completed"
    record = await conn.request("response/get", {"responseId": started["responseId"]})
    assert [m["role"] for m in record["messages"]] == ["assistant"], "no second round: nothing was left for the client"
    call = record["messages"][0]["parts"][0]
    assert call == {"type": "tool_call", "name": "web_search", "arguments": {"query": "parley"}, "toolCallId": "srvtoolu_1", "serverExecuted": True}
