"""`parley acp` as the ACP clients that cannot be installed here drive it, frame for frame.

* Zed (crates/agent_servers/src/acp.rs): its `initialize` (fs read and write, terminal, auth,
  session config options, elicitation, its `_meta` flags), `session/new` with no MCP server, then at
  once `session/set_config_option` for each default the user configured (one after the other,
  the prompt free to come before they are answered); mentions as embedded resources, since parley
  advertises embeddedContext; `fs/write_text_file` answered `{}`; `session/close` when a thread closes.
* CodeCompanion.nvim (lua/codecompanion/acp/init.lua, adapters/acp/*.lua): fs-only capabilities,
  every request waited on for 20 s, the model set through the select of category "model", a
  shared file sent as the text "Sharing the following file as context: PATH", `fs/read_text_file`
  refused for another session, `fs/write_text_file` answered with a null result,
  `session/list` followed through `nextCursor`.

Every frame of each is then checked against ACP's schema and turn order, as in test_acp_schema.
"""

from __future__ import annotations

import asyncio

from acp_driver import SCHEMA_PATH, AcpError, Deliberate, assert_valid, call, file_path, option, parley_acp, read_text_file, rounds
import parley
from conftest import missing, openai_endpoint_daemon
from replay_server import ReplayServer, Reply, openai_text
from rpc import echo_script

if not SCHEMA_PATH.exists():
    missing(f"ACP's schema: {SCHEMA_PATH} (run `npm ci` in tests/acp_peer)")

ZED_INITIALIZE = {
    "protocolVersion": 1,
    "clientCapabilities": {
        "fs": {"readTextFile": True, "writeTextFile": True},
        "terminal": True,
        "auth": {"terminal": True},
        "session": {"configOptions": {"boolean": {}}},
        "elicitation": {"form": {}, "url": {}},
        "_meta": {"terminal_output": True, "terminal-auth": True},
    },
    "clientInfo": {"name": "zed", "version": "0.231.2", "title": "Zed"},
}

CODECOMPANION_INITIALIZE = {
    "protocolVersion": 1,
    "clientCapabilities": {"fs": {"readTextFile": True, "writeTextFile": True}},
    "clientInfo": {"name": "CodeCompanion.nvim", "version": "1.0.0"},
}
CODECOMPANION_TIMEOUT = 20  # seconds, on every request (TIMEOUTS.DEFAULT, each adapter's defaults.timeout)


def text(updates: list[dict], kind: str = "agent_message_chunk") -> str:
    return "".join(u["content"].get("text", "") for u in updates if u["sessionUpdate"] == kind)


async def test_a_zed_shaped_session(daemon, tmp_path):
    source = tmp_path / "src" / "main.py"
    source.parent.mkdir()
    source.write_text("print('hello')\n")
    async with parley_acp(daemon, tmp_path) as zed:
        init = await zed.request("initialize", ZED_INITIALIZE)
        assert init["protocolVersion"] >= 1
        assert init["agentCapabilities"]["promptCapabilities"]["embeddedContext"] is True
        session = await zed.request("session/new", {"cwd": str(tmp_path), "mcpServers": []})
        sid = session["sessionId"]

        # the user's defaults, {"model": "echo", "reasoning": "hidden"}, each set only once the
        # previous answer came; the first prompt does not wait for them
        model = option(session["configOptions"], "model")
        set_model = await zed.request("session/set_config_option", {"sessionId": sid, "configId": model["id"], "value": "echo"})
        reasoning = option(set_model["configOptions"], "thought_level")
        _, set_reasoning = await zed.start("session/set_config_option", {"sessionId": sid, "configId": reasoning["id"], "value": "hidden"})
        mark = len(zed.frames)
        _, turn = await zed.start("session/prompt", {"sessionId": sid, "prompt": [
            {"type": "text", "text": echo_script({"type": "reasoning", "chunk": "private"}, {"type": "text", "chunk": "Hello from echo."})},
        ]})
        assert option((await asyncio.wait_for(set_reasoning, 20))["configOptions"], "thought_level")["currentValue"] == "hidden"
        assert (await asyncio.wait_for(turn, 20))["stopReason"] == "end_turn"
        updates = zed.updates(sid, mark)
        assert text(updates) == "Hello from echo."
        assert not text(updates, "agent_thought_chunk"), "the prompt came after the reasoning was hidden"

        # a mention, embedded as Zed does when the agent takes embedded context
        mark = len(zed.frames)
        turn = await zed.request("session/prompt", {"sessionId": sid, "prompt": [
            {"type": "text", "text": "What does "},
            {"type": "resource", "resource": {"uri": source.as_uri(), "text": source.read_text()}},
            {"type": "text", "text": " print?"},
        ]})
        assert turn["stopReason"] == "end_turn"
        assert "print('hello')" in text(zed.updates(sid, mark))

        # an edit: permission, the old text read from the buffer, the write, a diff to show
        mark = len(zed.frames)
        edit = rounds(call("write_text_file", "w1", {"path": "src/main.py", "content": "print('bye')\n"}))
        assert (await zed.request("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": edit}]}))["stopReason"] == "end_turn"
        assert source.read_text() == "print('bye')\n"
        methods = [f.method for f in zed.frames[mark:] if f.sender == "agent" and f.kind == "request"]
        assert methods == ["session/request_permission", "fs/read_text_file", "fs/write_text_file"], methods
        [done] = [u for u in zed.updates(sid, mark) if u["sessionUpdate"] == "tool_call_update" and u.get("status") == "completed"]
        assert {"type": "diff", "path": str(source), "oldText": "print('hello')\n", "newText": "print('bye')\n"} in done["content"], done

        # the thread list, then the thread closed
        listed = await zed.request("session/list", {"cwd": str(tmp_path)})
        assert [s["sessionId"] for s in listed["sessions"]] == [sid]
        assert listed["sessions"][0]["cwd"] == str(tmp_path)
        assert await zed.request("session/close", {"sessionId": sid}) == {}
    assert_valid(zed)


async def test_a_codecompanion_shaped_session(daemon, tmp_path):
    shared = tmp_path / "lua" / "init.lua"
    shared.parent.mkdir()
    shared.write_text("return { answer = 42 }\n")
    current: dict[str, str] = {}

    def read(params):  # codecompanion: another session's read is refused, a missing file is empty
        if params["sessionId"] != current.get("sid"):
            raise AcpError(-32602, "invalid sessionId for fs/read_text_file")
        try:
            return read_text_file(params)
        except AcpError:
            return {"content": ""}

    def write(params):
        file_path(params["path"]).write_text(params["content"])
        return Deliberate(None)  # it answers `"result": null`: not a WriteTextFileResponse

    async with parley_acp(daemon, tmp_path, handlers={"fs/read_text_file": read, "fs/write_text_file": write}) as nvim:

        async def request(method, params):
            return await nvim.request(method, params, timeout=CODECOMPANION_TIMEOUT)

        init = await request("initialize", CODECOMPANION_INITIALIZE)
        assert init["protocolVersion"] == 1 and init["authMethods"] == []  # so it sends no authenticate
        assert init["agentCapabilities"]["loadSession"] is True
        session = await request("session/new", {"cwd": str(tmp_path), "mcpServers": []})
        sid = current["sid"] = session["sessionId"]
        models = [o for o in session["configOptions"] if o.get("category") == "model" and o["type"] == "select"]
        assert len(models) == 1
        answer = await request("session/set_config_option", {"sessionId": sid, "configId": models[0]["id"], "value": "echo"})
        assert option(answer["configOptions"], "model")["currentValue"] == "echo"

        # its file context: the path in a text block, then the user's message
        mark = len(nvim.frames)
        turn = await request("session/prompt", {"sessionId": sid, "prompt": [
            {"type": "text", "text": f"Sharing the following file as context: {shared}"},
            {"type": "text", "text": "What is the answer?"},
        ]})
        assert turn["stopReason"] == "end_turn"
        reply = text(nvim.updates(sid, mark))
        assert f"Sharing the following file as context: {shared}" in reply and "What is the answer?" in reply

        # the same, with the file linked and embedded as an ACP client may: both reach the model
        mark = len(nvim.frames)
        turn = await request("session/prompt", {"sessionId": sid, "prompt": [
            {"type": "text", "text": f"Sharing the following file as context: {shared}"},
            {"type": "resource_link", "uri": shared.as_uri(), "name": shared.name},
            {"type": "resource", "resource": {"uri": shared.as_uri(), "text": "-- the buffer, unsaved\n", "mimeType": "text/x-lua"}},
        ]})
        assert turn["stopReason"] == "end_turn"
        reply = text(nvim.updates(sid, mark))
        assert "return { answer = 42 }" in reply and "-- the buffer, unsaved" in reply
        assert [f.message["params"]["path"] for f in nvim.frames[mark:] if f.method == "fs/read_text_file"] == [str(shared)]

        # a write through its fs handler, whose null result parley must take
        mark = len(nvim.frames)
        edit = rounds(call("write_text_file", "w1", {"path": str(shared), "content": "return {}\n"}))
        assert (await request("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": edit}]}))["stopReason"] == "end_turn"
        assert shared.read_text() == "return {}\n"
        statuses = [u.get("status") for u in nvim.updates(sid, mark) if u["sessionUpdate"] == "tool_call_update" and u.get("status")]
        assert statuses[-1] == "completed", statuses

        # its session picker: every page, until no nextCursor
        seen, cursor = [], None
        for _ in range(50):
            page = await request("session/list", {"cwd": str(tmp_path), **({"cursor": cursor} if cursor else {})})
            seen += [s["sessionId"] for s in page["sessions"]]
            if not (cursor := page.get("nextCursor")):
                break
        assert sid in seen and not cursor

    # a later Neovim restores the chat: session/load, the history replayed before the answer
    async with parley_acp(daemon, tmp_path) as later:
        await later.request("initialize", CODECOMPANION_INITIALIZE, timeout=CODECOMPANION_TIMEOUT)
        loaded = await later.request("session/load", {"cwd": str(tmp_path), "mcpServers": [], "sessionId": sid}, timeout=CODECOMPANION_TIMEOUT)
        assert "configOptions" in loaded
        assert "What is the answer?" in text(later.updates(sid), "user_message_chunk")
        slow = echo_script(*({"type": "text", "chunk": f"{i} ", "delayMs": 50} for i in range(100)))
        mark = len(later.frames)
        _, turn = await later.start("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": slow}]})
        await later.wait_for(lambda: len(later.updates(sid, mark)) >= 3)
        await later.notify("session/cancel", {"sessionId": sid})  # its stop button
        assert (await asyncio.wait_for(turn, CODECOMPANION_TIMEOUT))["stopReason"] == "cancelled"
    assert_valid(nvim)
    assert_valid(later)


async def test_a_prompt_in_the_same_read_as_a_set_config_option_sees_it(tmp_path, monkeypatch):
    """Zed's defaults and its first prompt, arriving in one read: the set names a model the
    session's list does not have yet (an alias added since), so it waits for the daemon's list,
    and the prompt, which came after it, waits for the set: it goes to the new model."""
    monkeypatch.setenv("PARLEY_TEST_OPENAI_KEY", "sk-test-0123456789abcdef")
    with ReplayServer() as upstream:
        daemon = openai_endpoint_daemon(tmp_path / "home", upstream.url, '{ id = "mini", name = "upstream-mini" }')
        try:
            async with parley_acp(daemon, tmp_path) as zed:
                await zed.request("initialize", ZED_INITIALIZE)
                sid = (await zed.request("session/new", {"cwd": str(tmp_path), "mcpServers": []}))["sessionId"]
                config = daemon.home / "config" / "config.toml"
                config.write_text(config.read_text() + '\n[aliases]\nlate = "mini"\n')
                with parley.connect(str(daemon.socket)) as client:
                    await zed.wait_for(lambda: any("late" in m.aliases for m in client.models()), timeout=10)
                upstream.queue(Reply(body=openai_text("from mini")))
                setting, turn = await zed.start_together(
                    ("session/set_config_option", {"sessionId": sid, "configId": "model", "value": "late"}),
                    ("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "hi"}]}),
                )
                assert option((await zed.answer(setting))["configOptions"], "model")["currentValue"] == "mini"
                assert (await zed.answer(turn))["stopReason"] == "end_turn"
                assert text(zed.updates(sid)) == "from mini" and len(upstream.requests) == 1
            assert_valid(zed)
        finally:
            daemon.stop()
