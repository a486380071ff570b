"""`parley acp` against ACP v1's official JSON schema: every frame of broad sessions, both directions.

A raw NDJSON peer (tests/acp_driver.py) drives every method and provokes every update type and stop
reason; afterwards each recorded frame is validated against the definition of its method in the
schema that the npm package @agentclientprotocol/sdk ships, and the turn order is checked: every
stdout line JSON, each prompt answered once, its updates before its stop reason, nothing after.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from acp_driver import SCHEMA_PATH, AcpError, Frame, allow, assert_valid, call, option, ordering_violations, parley_acp, reject, rounds, schema_violations, unknown_fields, values
from conftest import missing
from rpc import echo_script

if not SCHEMA_PATH.exists():
    missing(f"ACP's schema: {SCHEMA_PATH} (run `npm ci` in tests/acp_peer)")

# 1x1 PNG and a 1-sample WAV: echo ignores attachments, but parley acp must take them
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                     "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")).decode()
WAV = base64.b64encode(b"RIFF&\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>\x00\x00\x02\x00\x10\x00data\x02\x00\x00\x00\x00\x00").decode()

FULL_FS = {"fs": {"readTextFile": True, "writeTextFile": True}, "terminal": False}


def text_block(text: str) -> dict:
    return {"type": "text", "text": text}


async def start(peer, tmp_path, capabilities=FULL_FS) -> tuple[dict, dict]:
    init = await peer.request("initialize", {"protocolVersion": 1, "clientCapabilities": capabilities, "clientInfo": {"name": "parley-tests", "version": "1"}})
    session = await peer.request("session/new", {"cwd": str(tmp_path), "mcpServers": []})
    return init, session


def kinds(updates: list[dict]) -> list[str]:
    return [u["sessionUpdate"] for u in updates]


def message_text(updates: list[dict], kind: str = "agent_message_chunk") -> str:
    return "".join(u["content"]["text"] for u in updates if u["sessionUpdate"] == kind and u["content"]["type"] == "text")


def reads(peer, since: int = 0) -> list[dict]:
    """The params of each fs/read_text_file parley asked the client for, from frame ``since``."""
    return [f.message["params"] for f in peer.frames[since:] if f.sender == "agent" and f.method == "fs/read_text_file"]


def permissions(peer, since: int = 0) -> list[dict]:
    return [f.message["params"] for f in peer.frames[since:] if f.sender == "agent" and f.method == "session/request_permission"]


def finished_calls(updates: list[dict]) -> dict[str, dict]:
    """The last tool_call_update of each call that ended (completed or failed)."""
    return {u["toolCallId"]: u for u in updates if u["sessionUpdate"] == "tool_call_update" and u.get("status") in ("completed", "failed")}


async def test_a_broad_session_is_valid_acp_frame_by_frame(daemon, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("the notes say hello\n")
    async with parley_acp(daemon, tmp_path) as peer:
        init, session = await start(peer, tmp_path)
        caps = init["agentCapabilities"]
        assert init["protocolVersion"] == 1 and init["authMethods"] == []
        assert caps["loadSession"] is True
        assert caps["promptCapabilities"] == {"image": True, "audio": True, "embeddedContext": True} | caps["promptCapabilities"]
        assert all(k in caps["sessionCapabilities"] for k in ("list", "resume", "close", "delete"))
        sid = session["sessionId"]

        # the model select and the reasoning option; each answer is the complete list
        model = option(session["configOptions"], "model")
        assert "echo" in values(model)
        answer = await peer.request("session/set_config_option", {"sessionId": sid, "configId": model["id"], "value": "echo"})
        assert option(answer["configOptions"], "model")["currentValue"] == "echo"
        assert {o["id"] for o in answer["configOptions"]} == {o["id"] for o in session["configOptions"]}
        reasoning = option(answer["configOptions"], "thought_level")
        assert "hidden" in values(reasoning)
        answer = await peer.request("session/set_config_option", {"sessionId": sid, "configId": reasoning["id"], "value": "hidden"})
        assert option(answer["configOptions"], "thought_level")["currentValue"] == "hidden"
        thinking = echo_script({"type": "reasoning", "chunk": "secret thoughts"}, {"type": "text", "chunk": "shown"})
        mark = len(peer.frames)
        assert (await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block(thinking)]}))["stopReason"] == "end_turn"
        assert kinds(peer.updates(sid, mark)).count("agent_thought_chunk") == 0
        await peer.request("session/set_config_option", {"sessionId": sid, "configId": reasoning["id"], "value": "default"})

        # reasoning, text, a provider-run tool, a tool call that asks first (allowed), usage
        script = rounds(
            [{"type": "reasoning", "chunk": "The user wants "}, {"type": "reasoning", "chunk": "the notes."},
             {"type": "text", "chunk": "Let me look."},
             {"type": "tool_call_name", "toolCallId": "s1", "chunk": "web_search", "serverExecuted": True},
             {"type": "tool_call_args", "toolCallId": "s1", "chunk": "{\"q\": \"notes\"}"},
             {"type": "tool_result", "toolCallId": "s1", "name": "web_search", "output": "nothing found", "serverExecuted": True},
             *call("read_text_file", "c1", {"path": "notes.md"}),
             {"type": "usage", "input": 10, "output": 5}],
        )
        mark = len(peer.frames)
        turn = await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block(script)]})
        assert turn["stopReason"] == "end_turn"
        updates = peer.updates(sid, mark)
        assert {"agent_thought_chunk", "agent_message_chunk", "tool_call", "tool_call_update", "usage_update"} <= set(kinds(updates)), kinds(updates)
        assert message_text(updates, "agent_thought_chunk") == "The user wants the notes."
        assert message_text(updates).startswith("Let me look.")
        assert "read_text_file: the notes say hello" in message_text(updates)
        chunks = [u for u in updates if u["sessionUpdate"] in ("agent_message_chunk", "agent_thought_chunk")]
        assert all(u.get("messageId") for u in chunks), chunks
        [asked] = permissions(peer, mark)
        call_id = asked["toolCall"]["toolCallId"]
        assert call_id in {u["toolCallId"] for u in updates if u["sessionUpdate"] == "tool_call"}
        assert [r["path"] for r in reads(peer, mark)] == [str(notes)]
        done = finished_calls(updates)
        assert done[call_id]["status"] == "completed" and len(done) == 2, done  # and the provider's search

        # the models change (an alias added to config.toml): the next turn says so before its end
        config = daemon.home / "config" / "config.toml"
        config.write_text(config.read_text() + '\n[aliases]\nquick = "echo"\n')
        rpc = await daemon.connect("unix")
        try:
            for _ in range(100):
                if any("quick" in m["aliases"] for m in (await rpc.request("models/list"))["models"]):
                    break
                await asyncio.sleep(0.1)
        finally:
            await rpc.close()

        # context: a file:// link read through the client, an embedded resource, an image, audio
        mark = len(peer.frames)
        turn = await peer.request("session/prompt", {"sessionId": sid, "prompt": [
            text_block("Summarise these."),
            {"type": "resource_link", "uri": notes.as_uri(), "name": "notes.md", "mimeType": "text/markdown"},
            {"type": "resource", "resource": {"uri": "file:///elsewhere/embedded.txt", "text": "embedded words", "mimeType": "text/plain"}},
            {"type": "image", "mimeType": "image/png", "data": PNG},
            {"type": "audio", "mimeType": "audio/wav", "data": WAV},
        ]})
        assert turn["stopReason"] == "end_turn"
        assert [(r["path"], r["sessionId"]) for r in reads(peer, mark)] == [(str(notes), sid)]
        assert "Summarise these." in message_text(peer.updates(sid, mark))
        assert not permissions(peer, mark), "reading the prompt's own context needs no permission"
        [changed] = [u for u in peer.updates(sid, mark) if u["sessionUpdate"] == "config_option_update"]
        assert "quick" in next(v["description"] for v in option(changed["configOptions"], "model")["options"] if v["value"] == "echo")

        # the session, as every session method sees it
        listed = await peer.request("session/list", {"cwd": str(tmp_path)})
        assert sid in [s["sessionId"] for s in listed["sessions"]]
        assert any(u["sessionUpdate"] == "session_info_update" for u in peer.updates(sid)), "no title for the session"
        await peer.request("session/close", {"sessionId": sid})

    # a second editor process loads it (replayed before the answer), resumes it, deletes it
    async with parley_acp(daemon, tmp_path) as later:
        await later.request("initialize", {"protocolVersion": 1, "clientCapabilities": FULL_FS})
        loaded = await later.request("session/load", {"sessionId": sid, "cwd": str(tmp_path), "mcpServers": []})
        replay = later.updates(sid)
        assert {"user_message_chunk", "agent_message_chunk", "agent_thought_chunk", "tool_call", "tool_call_update"} <= set(kinds(replay)), kinds(replay)
        assert "Summarise these." in message_text(replay, "user_message_chunk")
        assert option(loaded["configOptions"], "model")["currentValue"] == "echo"
        mark = len(later.frames)
        resumed = await later.request("session/resume", {"sessionId": sid, "cwd": str(tmp_path), "mcpServers": []})
        assert option(resumed["configOptions"], "model")["currentValue"] == "echo"
        assert not later.updates(sid, mark), "session/resume replays nothing"
        await later.request("session/delete", {"sessionId": sid})
        listed = await later.request("session/list", {})
        assert sid not in [s["sessionId"] for s in listed["sessions"]]

    assert_valid(peer)
    assert_valid(later)


async def test_every_stop_reason_both_cancellations_and_a_refusal_are_valid_acp(daemon, tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    async with parley_acp(daemon, tmp_path) as peer:
        _, session = await start(peer, tmp_path)
        sid = session["sessionId"]

        # the token limit cut the answer: max_tokens
        cut = echo_script({"type": "text", "chunk": "cut sh"}, {"type": "usage", "input": 1, "output": 2, "details": {"stop_reason": "length"}})
        assert (await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block(cut)]}))["stopReason"] == "max_tokens"

        # a chain that still calls tools when parley's chain limit stops it: max_turn_requests
        endless = rounds(*(call("read_text_file", f"c{i}", {"path": "a.txt"}) for i in range(100)))
        mark = len(peer.frames)
        assert (await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block(endless)]}, timeout=60))["stopReason"] == "max_turn_requests"
        updates = peer.updates(sid, mark)
        started = [u["toolCallId"] for u in updates if u["sessionUpdate"] == "tool_call"]
        assert set(started) == set(finished_calls(updates)), "every call started ends, the one never run as failed"

        # a refused call: its update says so, and the chain goes on to its end
        peer.handlers["session/request_permission"] = reject
        mark = len(peer.frames)
        assert (await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block(rounds(call("read_text_file", "r1", {"path": "a.txt"})))]}))["stopReason"] == "end_turn"
        assert [u["status"] for u in finished_calls(peer.updates(sid, mark)).values()] == ["failed"]
        assert not reads(peer, mark)
        peer.handlers["session/request_permission"] = allow

        # session/cancel mid-stream: cancelled, the partial answer kept
        slow = echo_script(*({"type": "text", "chunk": f"w{i} ", "delayMs": 50} for i in range(200)))
        mark = len(peer.frames)
        _, turn = await peer.start("session/prompt", {"sessionId": sid, "prompt": [text_block(slow)]})
        await peer.wait_for(lambda: len(peer.updates(sid, mark)) >= 3)
        await peer.notify("session/cancel", {"sessionId": sid})
        assert (await asyncio.wait_for(turn, 20))["stopReason"] == "cancelled"
        assert message_text(peer.updates(sid, mark)).startswith("w0 w1 w2 ")

        # session/cancel while parley waits for permission: the client answers `cancelled`, as it must
        waiting, cancelled = asyncio.Event(), asyncio.Event()

        async def hold(params):
            waiting.set()
            await cancelled.wait()
            return {"outcome": {"outcome": "cancelled"}}

        peer.handlers["session/request_permission"] = hold
        _, turn = await peer.start("session/prompt", {"sessionId": sid, "prompt": [text_block(rounds(call("read_text_file", "p1", {"path": "a.txt"})))]})
        await asyncio.wait_for(waiting.wait(), 20)
        await peer.notify("session/cancel", {"sessionId": sid})
        cancelled.set()
        assert (await asyncio.wait_for(turn, 20))["stopReason"] == "cancelled"
        peer.handlers["session/request_permission"] = allow

        # $/cancel_request for the prompt request itself: a cancelled answer, or error -32800
        mark = len(peer.frames)
        rid, turn = await peer.start("session/prompt", {"sessionId": sid, "prompt": [text_block(slow)]})
        await peer.wait_for(lambda: len(peer.updates(sid, mark)) >= 2)
        await peer.notify("$/cancel_request", {"requestId": rid})
        try:
            assert (await asyncio.wait_for(turn, 20))["stopReason"] == "cancelled"
        except AcpError as exc:
            assert exc.code == -32800, exc

        # the session still works after all that
        assert (await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block("still here")]}))["stopReason"] == "end_turn"
    assert_valid(peer)


async def test_a_client_without_fs_model_errors_and_bad_requests_are_valid_acp(daemon, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("read from disk\n")
    async with parley_acp(daemon, tmp_path) as peer:
        # a client without fs: parley reads a file:// link from disk itself, and offers no fs tools
        _, session = await start(peer, tmp_path, capabilities={})
        sid = session["sessionId"]
        mark = len(peer.frames)
        turn = await peer.request("session/prompt", {"sessionId": sid, "prompt": [{"type": "resource_link", "uri": notes.as_uri(), "name": "notes.txt"}]})
        assert turn["stopReason"] == "end_turn"
        assert "read from disk" in message_text(peer.updates(sid, mark))
        mark = len(peer.frames)
        turn = await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block(rounds(call("read_text_file", "x1", {"path": "notes.txt"})))]})
        assert turn["stopReason"] == "end_turn"
        assert [u["status"] for u in finished_calls(peer.updates(sid, mark)).values()] == ["failed"]
        assert not peer.agent_requests, "a client without fs is asked nothing"

        # a model error: an error answer, or a turn that ends
        failing = echo_script({"type": "text", "chunk": "partial"}, {"type": "error", "code": "rate_limited", "message": "slow down", "retryable": True})
        try:
            await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block(failing)]})
        except AcpError as exc:
            assert "slow down" in exc.message + json.dumps(exc.data)

        # requests that cannot be served get JSON-RPC errors, and the process carries on
        for method, params, deliberate in [
            ("session/prompt", {"sessionId": "no-such-session", "prompt": [text_block("hi")]}, False),
            ("session/load", {"sessionId": "no-such-session", "cwd": str(tmp_path), "mcpServers": []}, False),
            ("session/set_config_option", {"sessionId": sid, "configId": "no-such-option", "value": "x"}, False),
            ("session/set_config_option", {"sessionId": sid, "configId": "model", "value": "no-such-model"}, False),
            ("session/set_mode", {"sessionId": sid, "modeId": "x"}, False),
            ("session/prompt", {"sessionId": sid}, True),
            ("no/such_method", {}, True),
        ]:
            with pytest.raises(AcpError) as raised:
                await peer.request(method, params, deliberate=deliberate)
            assert raised.value.code in (-32601, -32602, -32002, -32603), (method, raised.value)
        assert (await peer.request("session/prompt", {"sessionId": sid, "prompt": [text_block("fine")]}))["stopReason"] == "end_turn"
    assert_valid(peer)


async def test_lines_that_are_not_requests_get_json_rpc_errors_and_nothing_else(daemon, tmp_path):
    async with parley_acp(daemon, tmp_path) as peer:
        await start(peer, tmp_path)

        async def errors_after(line: bytes) -> list[dict]:
            mark = len(peer.frames)
            await peer.send_raw(line)
            await peer.request("session/list", {})  # answered in order after whatever the line gets
            return [f.message["error"] for f in peer.frames[mark:] if f.sender == "agent" and f.kind == "response" and "error" in f.message]

        assert [e["code"] for e in await errors_after(b"this is not json")] == [-32700]
        assert [e["code"] for e in await errors_after(b'[{"jsonrpc": "2.0", "id": 99, "method": "session/list"}]')] == [-32600]  # no batches in ACP
        assert [e["code"] for e in await errors_after(b'{"jsonrpc": "2.0", "id": {"not": "an id"}, "method": "session/list"}')] == [-32600]
        assert [e["code"] for e in await errors_after(b'{"jsonrpc": "1.0", "id": 98, "method": "session/list"}')] == [-32600]
        assert await errors_after(b'{"jsonrpc": "2.0", "id": 12345, "result": {"unasked": true}}') == []  # a stray answer: ignored
        assert await errors_after(b"") == []
    assert_valid(peer)


# -- the checks themselves can fail ------------------------------------------------------------


def frames(*messages: tuple[str, dict, str | None]) -> list[Frame]:
    return [Frame(sender, message, i, answers=answers) for i, (sender, message, answers) in enumerate(messages)]


def test_the_schema_check_names_each_bad_frame_and_checks_results_by_their_method():
    recorded = frames(
        ("client", {"jsonrpc": "2.0", "id": 1, "method": "session/new", "params": {"cwd": "/tmp", "mcpServers": []}}, None),
        # `{}` is a valid result of session/close, but this answers session/new: no sessionId
        ("agent", {"jsonrpc": "2.0", "id": 1, "result": {}}, "session/new"),
        ("agent", {"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": "s", "update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "txt", "text": "x"}}}}, None),
        ("agent", {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "done"}}, "session/prompt"),
        ("agent", {"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": "s", "update": {"sessionUpdate": "usage_update", "used": -1, "size": 10}}}, None),
        ("agent", {"id": 3, "method": "fs/read_text_file", "params": {"sessionId": "s", "path": "/x"}}, None),
    )
    found = schema_violations(recorded)
    assert any(v.startswith("frame #1 ") and "sessionId" in v for v in found), found
    assert any(v.startswith("frame #2 ") for v in found), found
    assert any(v.startswith("frame #3 ") and "stopReason" in v for v in found), found
    assert any(v.startswith("frame #4 ") and "used" in v for v in found), found
    assert any(v.startswith("frame #5 ") and "JSON-RPC 2.0" in v for v in found), found
    assert not any(v.startswith("frame #0 ") for v in found), found


def test_the_field_check_catches_names_acp_does_not_have():
    recorded = frames(
        ("agent", {"jsonrpc": "2.0", "id": 1, "result": {"stopReason": "end_turn", "stop_reason": "end_turn", "_meta": {"free": 1}}}, "session/prompt"),
        ("agent", {"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": "s", "update": {"sessionUpdate": "tool_call_update", "toolCallId": "t", "rawInput": {"anything": 1}}}}, None),
    )
    assert schema_violations(recorded) == []  # the schema allows extra properties…
    assert unknown_fields(recorded) == ["frame #0 (agent response session/prompt): ['result']['stop_reason']: a field ACP v1 does not have"]


def test_the_order_check_catches_updates_after_the_stop_reason_and_before_the_session():
    update = {"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": "s1", "update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "x"}}}}
    recorded = frames(
        ("client", {"jsonrpc": "2.0", "id": 1, "method": "session/new", "params": {"cwd": "/tmp", "mcpServers": []}}, None),
        ("agent", update, None),
        ("agent", {"jsonrpc": "2.0", "id": 1, "result": {"sessionId": "s1"}}, "session/new"),
        ("client", {"jsonrpc": "2.0", "id": 2, "method": "session/prompt", "params": {"sessionId": "s1", "prompt": []}}, None),
        ("agent", update, None),
        ("agent", {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "end_turn"}}, "session/prompt"),
        ("agent", update, None),
        ("agent", {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "end_turn"}}, "session/prompt"),
        ("client", {"jsonrpc": "2.0", "id": 3, "method": "session/prompt", "params": {"sessionId": "s1", "prompt": []}}, None),
    )
    found = ordering_violations(recorded)
    assert [v.split(":")[0] for v in found] == ["#1 agent", "#6 agent", "#7 agent", "#8 client"], found
