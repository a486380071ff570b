"""`done.finishReason`: why a response ended, the same live, replayed, and in `response/get`."""

from __future__ import annotations

import asyncio
import json
import re
import signal

from rpc import RawConnection, echo_script
from test_tools_daemon import ADD, add, answer_tools, call, rounds

import parley
from parleyd._finish import completed_reason, cut_by_token_limit

LOOKUP = {"name": "lookup", "inputSchema": {"type": "object"}}


async def finished(conn: RawConnection, params: dict, *, method: str = "prompt") -> tuple[dict, dict]:
    """The live `done` of a response, once its replay from the store showed the same one; and its record."""
    started = await conn.request(method, params)
    rid = started["responseId"]
    live = (await conn.until_done(rid))[-1]
    return live, await replayed_as(conn, rid, live)


async def replayed_as(conn: RawConnection, rid: str, live: dict) -> dict:
    """Check that a replay from the store ends with ``live``, and that the record says the same."""
    conn.done.discard(rid)
    before = len(conn.events(rid))
    await conn.request("response/subscribe", {"responseId": rid, "afterSeq": live["seq"] - 1})
    await conn.until_done(rid)
    assert conn.events(rid)[before:] == [live], "the stored done is the live one"
    record = await conn.request("response/get", {"responseId": rid})
    assert record.get("finishReason") == live.get("finishReason")
    return record


async def test_a_plain_answer_stops(conn):
    live, record = await finished(conn, {"prompt": "one two"})
    assert live == {"type": "done", "status": "completed", "finishReason": "stop", "responseId": record["id"], "seq": 4}
    assert record["status"] == "completed"


async def test_the_token_limit_is_length(daemon):
    conn = await daemon.connect("unix")
    cut = {"type": "usage", "input": 3, "output": 2, "details": {"stop_reason": "length"}}
    live, _ = await finished(conn, {"prompt": echo_script({"type": "text", "chunk": "Once upon"}, cut)})
    assert (live["status"], live["finishReason"]) == ("completed", "length")
    anthropic = {**cut, "details": {"stop_reason": "max_tokens"}}
    live, _ = await finished(conn, {"prompt": echo_script(*call("lookup", "c1", {}), anthropic), "tools": [LOOKUP]})
    assert live["finishReason"] == "length", "a cut call's arguments may be cut too"
    ended = {**cut, "details": {"stop_reason": "end_turn"}}
    live, _ = await finished(conn, {"prompt": echo_script({"type": "text", "chunk": "The end."}, ended)})
    assert live["finishReason"] == "stop"
    await conn.close()


async def test_calls_left_to_the_client_are_tool_calls(daemon):
    conn = await daemon.connect("unix")
    live, record = await finished(conn, {"prompt": echo_script(*call("lookup", "c1", {"q": 1})), "tools": [LOOKUP]})
    assert (live["status"], live["finishReason"]) == ("completed", "tool_calls")
    # the reply with the results answers in text: it stops
    live, _ = await finished(conn, {"responseId": record["id"], "toolResults": [{"name": "lookup", "output": "42", "toolCallId": "c1"}]}, method="reply")
    assert live["finishReason"] == "stop"
    await conn.close()


async def test_a_chain_that_runs_out_of_rounds_is_chain_limit(daemon):
    conn = await daemon.connect("unix")
    script = rounds(call("add", "c1", {"a": 1, "b": 2}), call("add", "c2", {"a": 3, "b": 4}))
    started = await conn.request("prompt", {"prompt": script, "tools": [ADD], "chainLimit": 2})
    await answer_tools(conn, add)
    live = (await conn.until_done(started["responseId"]))[-1]
    assert (live["status"], live["finishReason"]) == ("completed", "chain_limit")
    record = await replayed_as(conn, started["responseId"], live)
    assert record["messages"][-1]["parts"][0]["name"] == "add", "it ended on a call it did not run"
    # a chain that ends in text within its limit stops
    started = await conn.request("prompt", {"prompt": rounds(call("add", "c3", {"a": 1, "b": 1})), "tools": [ADD], "chainLimit": 2})
    await answer_tools(conn, add, count=2)
    assert (await conn.until_done(started["responseId"]))[-1]["finishReason"] == "stop"
    await conn.close()


async def test_errors_and_cancels(daemon):
    conn = await daemon.connect("unix")
    failing = echo_script({"type": "text", "chunk": "Partial"}, {"type": "error", "code": "overloaded", "message": "busy"})
    live, record = await finished(conn, {"prompt": failing})
    assert (live["status"], live["finishReason"], record["status"]) == ("error", "error", "error")
    mismatch, _ = await finished(conn, {"prompt": "not json", "options": {"schema": {"type": "object"}}})
    assert (mismatch["status"], mismatch["finishReason"]) == ("error", "error")

    slow = echo_script(*({"type": "text", "chunk": "x ", "delayMs": 50} for _ in range(100)))
    started = await conn.request("prompt", {"prompt": slow})
    rid = started["responseId"]
    await conn.wait_for(lambda: True if conn.events(rid) else None)
    assert await conn.request("response/cancel", {"responseId": rid}) == {"status": "cancelled"}
    live = (await conn.until_done(rid))[-1]
    assert (live["status"], live["finishReason"]) == ("cancelled", "cancelled")
    await replayed_as(conn, rid, live)
    await conn.close()


async def test_a_stopped_or_crashed_daemon_interrupts(daemon):
    slow = echo_script(*({"type": "text", "chunk": "x ", "delayMs": 20} for _ in range(500)))
    conn = await daemon.connect("unix")
    stopped = (await conn.request("prompt", {"prompt": slow}))["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(stopped)) >= 3 else None)
    assert await asyncio.get_running_loop().run_in_executor(None, daemon.stop) == 0
    live = (await conn.until_done(stopped))[-1]
    assert (live["status"], live["finishReason"]) == ("error", "interrupted")

    daemon.start()
    conn = await daemon.connect("unix")
    record = await replayed_as(conn, stopped, live)
    assert record["status"] == "interrupted"
    crashed = (await conn.request("prompt", {"prompt": slow}))["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(crashed)) >= 3 else None)
    await asyncio.sleep(0.2)  # past one store flush
    daemon.stop(signal.SIGKILL)

    daemon.start()
    conn = await daemon.connect("unix")
    await conn.request("response/subscribe", {"responseId": crashed})
    done = (await conn.until_done(crashed))[-1]
    assert (done["status"], done["finishReason"]) == ("error", "interrupted"), "the recovered stream ends as a live one"
    assert (await conn.request("response/get", {"responseId": crashed}))["finishReason"] == "interrupted"
    await conn.close()


def test_the_python_client_reads_the_finish_reason(daemon):
    with parley.connect(f"unix://{daemon.socket}") as client:
        cut = echo_script({"type": "text", "chunk": "Once"}, {"type": "usage", "details": {"stop_reason": "length"}})
        response = client.get_model("echo").prompt(cut)
        done = list(response.stream_events())[-1]
        assert isinstance(done, parley.DoneEvent) and done.finish_reason == "length"
        assert set(parley.FINISH_REASONS) == {"stop", "length", "tool_calls", "chain_limit", "cancelled", "error", "interrupted"}


def test_the_rule_for_completed_responses():
    usage = parley.Usage(details={"stop_reason": "model_context_window_exceeded"})
    assert cut_by_token_limit(usage.details) and not cut_by_token_limit(None) and not cut_by_token_limit({"stop_reason": "stop"})
    assert completed_reason(usage, tool_calls=True, chain_limited=True) == "length"
    assert completed_reason(None, tool_calls=True, chain_limited=True) == "chain_limit"
    assert completed_reason(None, tool_calls=True, chain_limited=False) == "tool_calls"
    assert completed_reason(parley.Usage(details={"stop_reason": "tool_calls"}), tool_calls=False, chain_limited=False) == "stop"


def test_the_spec_and_the_schema_name_every_reason():
    from pathlib import Path

    from parley import _schema

    assert json.loads(_schema.render())["x-parley-finishReasons"] == parley.FINISH_REASONS
    text = (Path(__file__).resolve().parents[1] / "protocol" / "PROTOCOL.md").read_text()
    done_row = next(line for line in text.splitlines() if line.startswith("| `done` |"))
    listed = set(re.findall(r"`([a-z_]+)`", done_row.split("`finishReason` (null):")[1].split(" | no |")[0]))
    assert listed == set(parley.FINISH_REASONS)
