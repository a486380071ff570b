"""`parley acp`: an ACP v1 agent over stdio, driven by the official ACP Python SDK as its client.

Each test runs a real daemon (the ``daemon`` fixture) and one or more real ``parley acp``
processes, spawned with ``spawn_agent_process``: the environment passed explicitly (the SDK
trims it), stderr drained, the SDK's line limit raised. Every frame the agent sends is
recorded as it arrives (an observer on the SDK's connection), so that the tests check the
wire itself: field names, order, ``messageId``s. The echo model's scripts (PROTOCOL.md §8)
make the model's side deterministic; parley's own client checks what the daemon stored.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

import pytest

acp = pytest.importorskip("acp", reason="the ACP Python SDK (agent-client-protocol) is in the [test] extra")

from acp import RequestError, spawn_agent_process, text_block  # noqa: E402
from acp.helpers import embedded_text_resource, image_block, resource_block, resource_link_block  # noqa: E402
from acp.schema import (  # noqa: E402
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)

import parley  # noqa: E402
from conftest import DaemonProcess, openai_endpoint_daemon  # noqa: E402
from mcp_support import call, rounds, time_server  # noqa: E402
from mcp_support import start_daemon as start_mcp_daemon  # noqa: E402
from replay_server import ReplayServer, Reply, openai_text  # noqa: E402
from rpc import echo_script  # noqa: E402

LINE_LIMIT = 2**26


class EditorClient:
    """What an editor does for the agent: shows updates, asks the user, holds (unsaved) files."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}  # path -> the editor's text of it
        self.written: dict[str, str] = {}
        self.permissions: list[Any] = []
        self.choice = "allow_once"  # or "allow_always", "reject_once", "cancel"
        self.permission_gate: asyncio.Event | None = None  # when set, answers wait for it

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        pass  # the raw frames are what the tests read

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any) -> Any:
        self.permissions.append((tool_call, options))
        if self.permission_gate is not None:
            await self.permission_gate.wait()
        if self.choice == "cancel":
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=self.choice))

    async def read_text_file(self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **kwargs: Any) -> Any:
        if path not in self.files:
            raise RequestError(-32002, f"not open: {path}")
        return ReadTextFileResponse(content=self.files[path])

    async def write_text_file(self, session_id: str, path: str, content: str, **kwargs: Any) -> Any:
        self.written[path] = content
        self.files[path] = content
        return WriteTextFileResponse()


class Agent:
    """One ``parley acp`` process: the SDK connection, and every frame it received, in order."""

    def __init__(self, conn: Any, process: Any, client: EditorClient) -> None:
        self.conn = conn
        self.process = process
        self.client = client
        self.frames: list[dict] = []  # from the agent, as received
        self.sent: list[dict] = []  # to the agent
        self.stderr: list[str] = []

    def observe(self, event: Any) -> None:
        if event.direction.value == "incoming":
            self.frames.append(event.message)
        else:
            self.sent.append(event.message)

    def updates(self, session_id: str | None = None, since: int = 0) -> list[dict]:
        return [
            f["params"]["update"]
            for f in self.frames[since:]
            if f.get("method") == "session/update" and (session_id is None or f["params"]["sessionId"] == session_id)
        ]

    def kinds(self, session_id: str | None = None, since: int = 0) -> list[str]:
        return [u["sessionUpdate"] for u in self.updates(session_id, since)]

    async def request(self, method: str, params: dict) -> Any:
        return await self.conn._conn.send_request(method, params)

    async def new(self, cwd: str = "/tmp/project") -> str:
        return (await self.conn.new_session(cwd=cwd, mcp_servers=[])).session_id

    async def prompt(self, session_id: str, *blocks: Any) -> str:
        return (await self.conn.prompt(session_id=session_id, prompt=list(blocks))).stop_reason

    async def until(self, predicate: Any, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; frames: {self.frames[-5:]}; stderr: {''.join(self.stderr)[-2000:]}")
            await asyncio.sleep(0.01)


@asynccontextmanager
async def acp_agent(daemon: DaemonProcess, *args: str, client: EditorClient | None = None, fs: bool = True):
    client = client or EditorClient()
    holder: list[Agent] = []
    async with spawn_agent_process(
        client,
        sys.executable,
        "-m",
        "parleyd",
        "acp",
        *args,
        env=daemon.env,
        transport_kwargs={"limit": LINE_LIMIT},
        observers=[lambda event: holder[0].observe(event)],
    ) as (conn, process):
        agent = Agent(conn, process, client)
        holder.append(agent)

        async def drain() -> None:
            while line := await process.stderr.readline():
                agent.stderr.append(line.decode(errors="replace"))

        drainer = asyncio.get_running_loop().create_task(drain())
        agent.initialized = await conn.initialize(
            protocol_version=1,
            client_capabilities=ClientCapabilities(fs=FileSystemCapabilities(read_text_file=fs, write_text_file=fs)),
        )
        try:
            yield agent
        finally:
            await asyncio.sleep(0)
    await asyncio.wait_for(drainer, 10)


def message_id(response_id: str, index: int) -> str:
    """As the agent derives them (parleyd._acp._translate): stable, live and replayed."""
    return str(uuid.uuid5(uuid.UUID("0f6f8a43-8d4c-5b0e-9a57-7061726c6579"), f"{response_id}/{index}"))


def text_of(updates: list[dict], kind: str = "agent_message_chunk") -> str:
    return "".join(u["content"]["text"] for u in updates if u["sessionUpdate"] == kind and u["content"]["type"] == "text")


def answer_index(agent: Agent, method_result_key: str) -> int:
    return next(i for i, f in enumerate(agent.frames) if "result" in f and isinstance(f["result"], dict) and method_result_key in f["result"])


# ---- initialize and config options ---------------------------------------------


async def test_initialize_advertises_the_subset(daemon):
    async with acp_agent(daemon) as agent:
        init = next(f["result"] for f in agent.frames if "result" in f)
        assert init["protocolVersion"] == 1
        caps = init["agentCapabilities"]
        assert caps["loadSession"] is True
        assert caps["promptCapabilities"] == {"image": True, "audio": True, "embeddedContext": True}  # echo takes both
        assert caps["sessionCapabilities"] == {"list": {}, "resume": {}, "close": {}, "delete": {}}
        assert init["authMethods"] == []
        assert init["agentInfo"]["name"] == "parley"


async def test_model_select_and_set_config_option(daemon):
    async with acp_agent(daemon) as agent:
        created = await agent.conn.new_session(cwd="/tmp/project", mcp_servers=[])
        raw = agent.frames[-1]["result"]
        [model, reasoning] = raw["configOptions"]
        assert model["id"] == "model" and model["category"] == "model" and model["type"] == "select"
        assert model["currentValue"] == "echo"
        with parley.connect(str(daemon.socket)) as client:
            assert [o["value"] for o in model["options"]] == [m.id for m in client.models()]
        assert reasoning["category"] == "thought_level" and reasoning["currentValue"] == "default"
        assert {o["value"] for o in reasoning["options"]} >= {"default", "hidden"}

        answer = await agent.conn.set_config_option(config_id="reasoning", session_id=created.session_id, value="hidden")
        options = {o.id: o for o in answer.config_options}
        assert set(options) == {"model", "reasoning"}  # always the complete list
        assert options["reasoning"].current_value == "hidden"
        assert agent.frames[-1]["result"]["configOptions"][1]["currentValue"] == "hidden"

        script = echo_script({"type": "reasoning", "chunk": "secret"}, {"type": "text", "chunk": "shown"})
        since = len(agent.frames)
        assert await agent.prompt(created.session_id, text_block(script)) == "end_turn"
        assert "agent_thought_chunk" not in agent.kinds(created.session_id, since)
        assert text_of(agent.updates(created.session_id, since)) == "shown"

        with pytest.raises(RequestError) as bad_model:
            await agent.conn.set_config_option(config_id="model", session_id=created.session_id, value="gpt-9")
        assert bad_model.value.code == -32602
        with pytest.raises(RequestError) as bad_option:
            await agent.conn.set_config_option(config_id="temperature", session_id=created.session_id, value="1")
        assert bad_option.value.code == -32602


async def test_config_option_update_when_the_models_change(daemon):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new()
        config = daemon.home / "config" / "config.toml"
        config.write_text('default_model = "echo"\n\n[aliases]\nparrot = "echo"\n')
        await asyncio.sleep(1.2)  # the daemon re-reads its config when the file changes
        since = len(agent.frames)
        assert await agent.prompt(session_id, text_block("hello")) == "end_turn"
        [update] = [u for u in agent.updates(session_id, since) if u["sessionUpdate"] == "config_option_update"]
        [model] = [o for o in update["configOptions"] if o["id"] == "model"]
        assert "parrot" in next(o for o in model["options"] if o["value"] == "echo")["description"]


# ---- a prompt turn -------------------------------------------------------------


async def test_every_update_type_in_order_with_stable_message_ids(daemon, tmp_path):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new(str(tmp_path))
        agent.client.files[str(tmp_path / "notes.txt")] = "unsaved notes"
        script = json.dumps(
            {
                "rounds": [
                    [
                        {"type": "reasoning", "chunk": "Let me "},
                        {"type": "reasoning", "chunk": "read it."},
                        {"type": "text", "chunk": "Reading "},
                        {"type": "text", "chunk": "the file."},
                        {"type": "tool_call_name", "toolCallId": "c1", "chunk": "read_text_file"},
                        {"type": "tool_call_args", "toolCallId": "c1", "chunk": '{"path": "notes.txt"}'},
                        {"type": "usage", "input": 10, "output": 5},
                    ]
                ]
            }
        )
        since = len(agent.frames)
        assert await agent.prompt(session_id, text_block(script)) == "end_turn"
        turn = agent.frames[since:]
        answer = next(i for i, f in enumerate(turn) if f.get("result") == {"stopReason": "end_turn"})
        assert answer == len(turn) - 1  # the answer comes after every update of the turn
        updates = agent.updates(session_id, since)
        kinds = [u["sessionUpdate"] for u in updates]
        assert kinds == [
            "agent_thought_chunk",
            "agent_thought_chunk",
            "agent_message_chunk",
            "agent_message_chunk",
            "tool_call",
            "tool_call_update",  # its arguments, once they are complete
            "usage_update",  # the first round's
            "tool_call_update",  # in_progress, once allowed
            "tool_call_update",  # completed
            "agent_message_chunk",  # the second round: echo answers with the tool's result
            "agent_message_chunk",
            "agent_message_chunk",
            "usage_update",
            "session_info_update",  # the conversation's title, after the first turn
        ], kinds
        with parley.connect(str(daemon.socket)) as client:
            [response_id] = client.conversation(session_id).response_ids
        first, second = message_id(response_id, 0), message_id(response_id, 2)
        chunks = [u for u in updates if u["sessionUpdate"] in ("agent_thought_chunk", "agent_message_chunk")]
        assert [u["messageId"] for u in chunks] == [first] * 4 + [second] * (len(chunks) - 4)
        assert text_of(updates, "agent_thought_chunk") == "Let me read it."
        assert text_of(updates) == "Reading the file.read_text_file: unsaved notes"

        calls = [u for u in updates if u["sessionUpdate"] in ("tool_call", "tool_call_update")]
        call_id = f"{response_id}/0/c1"
        assert {u["toolCallId"] for u in calls} == {call_id}
        assert calls[0]["status"] == "pending" and calls[0]["title"] == "read_text_file" and calls[0]["kind"] == "read"
        assert calls[1]["rawInput"] == {"path": "notes.txt"}
        assert calls[2]["status"] == "in_progress"
        assert calls[3]["status"] == "completed"
        assert calls[3]["rawOutput"] == {"output": "unsaved notes"}
        assert calls[3]["content"] == [{"type": "content", "content": {"type": "text", "text": "unsaved notes"}}]
        [(asked, options)] = agent.client.permissions
        assert asked.tool_call_id == call_id
        assert [o.kind for o in options] == ["allow_once", "allow_always", "reject_once"]
        usage = [u for u in updates if u["sessionUpdate"] == "usage_update"]
        assert usage[0] == {"sessionUpdate": "usage_update", "used": 15, "size": 131072}  # echo's nominal window
        [info] = [u for u in updates if u["sessionUpdate"] == "session_info_update"]
        assert info["title"]

        # the replay in another process carries the same ids
        async with acp_agent(daemon) as other:
            await other.conn.load_session(cwd=str(tmp_path), session_id=session_id, mcp_servers=[])
            replayed = other.updates(session_id)
            assert replayed[0]["sessionUpdate"] == "user_message_chunk"
            assert text_of(replayed, "user_message_chunk") == script
            again = [u for u in replayed if u["sessionUpdate"] in ("agent_thought_chunk", "agent_message_chunk")]
            assert {u["messageId"] for u in again} == {first, second}
            assert text_of(replayed) == text_of(updates)
            assert text_of(replayed, "agent_thought_chunk") == "Let me read it."
            replayed_calls = [u for u in replayed if u["sessionUpdate"] in ("tool_call", "tool_call_update")]
            assert {u["toolCallId"] for u in replayed_calls} == {call_id}
            assert replayed_calls[-1]["status"] == "completed"


async def test_reject_and_allow_always(daemon, tmp_path):
    async with acp_agent(daemon, client=EditorClient()) as agent:
        session_id = await agent.new(str(tmp_path))
        call = [
            {"type": "tool_call_name", "toolCallId": "w", "chunk": "write_text_file"},
            {"type": "tool_call_args", "toolCallId": "w", "chunk": '{"path": "out.txt", "content": "new text"}'},
        ]
        agent.client.choice = "reject_once"
        since = len(agent.frames)
        assert await agent.prompt(session_id, text_block(json.dumps({"rounds": [call]}))) == "end_turn"
        [failed] = [u for u in agent.updates(session_id, since) if u.get("status") == "failed"]
        assert "rejected" in failed["rawOutput"]["exception"]
        assert agent.client.written == {}

        agent.client.choice = "allow_always"
        assert await agent.prompt(session_id, text_block(json.dumps({"rounds": [call]}))) == "end_turn"
        assert agent.client.written == {str(tmp_path / "out.txt"): "new text"}
        since = len(agent.frames)
        assert await agent.prompt(session_id, text_block(json.dumps({"rounds": [call]}))) == "end_turn"
        assert len(agent.client.permissions) == 2  # allowed always: not asked again
        [done] = [u for u in agent.updates(session_id, since) if u.get("status") == "completed"]
        assert done["content"][0] == {"type": "diff", "path": str(tmp_path / "out.txt"), "newText": "new text", "oldText": "new text"}


async def test_stop_reasons_max_tokens_and_max_turn_requests(daemon, tmp_path):
    async with acp_agent(daemon, "--chain-limit", "2") as agent:
        session_id = await agent.new(str(tmp_path))
        cut = echo_script({"type": "text", "chunk": "cut"}, {"type": "usage", "output": 1, "details": {"stop_reason": "length"}})
        assert await agent.prompt(session_id, text_block(cut)) == "max_tokens"
        agent.client.choice = "allow_always"
        agent.client.files[str(tmp_path / "a")] = "a"
        read = [
            {"type": "tool_call_name", "toolCallId": "r", "chunk": "read_text_file"},
            {"type": "tool_call_args", "toolCallId": "r", "chunk": '{"path": "a"}'},
        ]
        since = len(agent.frames)
        assert await agent.prompt(session_id, text_block(json.dumps({"rounds": [read, read]}))) == "max_turn_requests"
        statuses = [u.get("status") for u in agent.updates(session_id, since) if u["sessionUpdate"] == "tool_call_update"]
        assert statuses[-1] == "failed"  # the last round's call was never run


async def test_cancel_mid_stream(daemon):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new()
        script = echo_script(*({"type": "text", "chunk": f"w{i} ", "delayMs": 50} for i in range(100)))
        since = len(agent.frames)
        prompt = asyncio.get_running_loop().create_task(agent.prompt(session_id, text_block(script)))
        await agent.until(lambda: len(agent.updates(session_id, since)) >= 3)
        await agent.conn.cancel(session_id=session_id)
        assert await prompt == "cancelled"
        answers = [i for i, f in enumerate(agent.frames) if f.get("result") == {"stopReason": "cancelled"}]
        assert len(answers) == 1
        await asyncio.sleep(0.5)
        assert agent.frames[answers[0] + 1 :] == []  # nothing after the stop reason
        shown = text_of(agent.updates(session_id, since))
        assert 0 < len(shown) < len("".join(f"w{i} " for i in range(100)))
        with parley.connect(str(daemon.socket)) as client:
            conversation = client.conversation(session_id)
            [response_id] = conversation.response_ids
            record = client._call("response/get", parley.ResponseIdParams(response_id=response_id))
        assert record.status == "cancelled"
        assert parley.text_of(record.messages[0]) == shown  # the partial answer is stored, as shown


async def test_cancel_request_of_a_prompt_ends_its_turn(daemon):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new()
        script = echo_script(*({"type": "text", "chunk": f"w{i} ", "delayMs": 50} for i in range(100)))
        prompt = asyncio.get_running_loop().create_task(agent.prompt(session_id, text_block(script)))
        await agent.until(lambda: len(agent.updates(session_id)) >= 2)
        [request_id] = [m["id"] for m in agent.sent if m.get("method") == "session/prompt"]
        await agent.conn._conn.send_notification("$/cancel_request", {"requestId": request_id})
        assert await prompt == "cancelled"  # a valid answer: the turn's own stop reason


async def test_cancel_while_asking_permission(daemon, tmp_path):
    client = EditorClient()
    client.permission_gate = asyncio.Event()  # the user never answers
    async with acp_agent(daemon, client=client) as agent:
        session_id = await agent.new(str(tmp_path))
        call = [
            {"type": "tool_call_name", "toolCallId": "w", "chunk": "write_text_file"},
            {"type": "tool_call_args", "toolCallId": "w", "chunk": '{"path": "x", "content": "y"}'},
        ]
        prompt = asyncio.get_running_loop().create_task(agent.prompt(session_id, text_block(json.dumps({"rounds": [call]}))))
        await agent.until(lambda: any(f.get("method") == "session/request_permission" for f in agent.frames))
        [asked] = [f["id"] for f in agent.frames if f.get("method") == "session/request_permission"]
        await agent.conn.cancel(session_id=session_id)
        assert await asyncio.wait_for(prompt, 10) == "cancelled"
        assert {"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": asked}} in agent.frames
        assert client.written == {}
        last = [u for u in agent.updates(session_id) if u["sessionUpdate"] == "tool_call_update"][-1]
        assert last["status"] == "failed"


async def test_an_error_event_is_a_json_rpc_error(daemon):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new()
        script = echo_script(
            {"type": "text", "chunk": "Partial"},
            {"type": "error", "code": "rate_limited", "message": "slow down", "retryable": True, "retryAfter": 2.5},
        )
        since = len(agent.frames)
        with pytest.raises(RequestError) as failed:
            await agent.prompt(session_id, text_block(script))
        assert failed.value.data == {"kind": "rate_limited", "retryable": True, "retryAfter": 2.5}
        assert "slow down" in str(failed.value)
        assert text_of(agent.updates(session_id, since)) == "Partial"
        error_at = next(i for i, f in enumerate(agent.frames) if "error" in f and f.get("id") is not None)
        assert all(f.get("method") != "session/update" for f in agent.frames[error_at + 1 :])


async def test_prompt_content_blocks(daemon, tmp_path):
    on_disk = tmp_path / "disk.py"
    on_disk.write_text("print('disk')\n")
    in_editor = tmp_path / "open.py"
    in_editor.write_text("saved\n")
    async with acp_agent(daemon) as agent:
        agent.client.files[str(in_editor)] = "unsaved\n"
        session_id = await agent.new(str(tmp_path))
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
        blocks = [
            text_block("Look:"),
            resource_link_block("open.py", in_editor.as_uri()),
            resource_link_block("disk.py", on_disk.as_uri()),
            resource_block(embedded_text_resource("file:///x/y.txt", "embedded text", mime_type="text/plain")),
            image_block(png, "image/png"),
        ]
        since = len(agent.frames)
        assert await agent.prompt(session_id, *blocks) == "end_turn"
        echoed = text_of(agent.updates(session_id, since))
        assert "unsaved" in echoed and "saved\n" not in echoed.replace("unsaved", "")  # the editor's buffer won
        assert "print('disk')" in echoed and "embedded text" in echoed
        with parley.connect(str(daemon.socket)) as client:
            user = client.conversation(session_id).messages[0]
        assert [p.type for p in user.parts] == ["text", "text", "text", "text", "attachment"]
        assert user.parts[-1].attachment.mime_type == "image/png" and user.parts[-1].attachment.content == png


# ---- sessions ------------------------------------------------------------------


async def test_load_replays_a_100_turn_conversation_quickly(daemon):
    with parley.connect(str(daemon.socket)) as client:
        conversation_id = client.create_conversation(model="echo", cwd="/tmp/long")
        for i in range(100):
            client.get_model("echo").prompt(f"turn {i}", conversation_id=conversation_id).text()
        response_ids = client.conversation(conversation_id).response_ids
    async with acp_agent(daemon) as agent:
        started = time.monotonic()
        await agent.conn.load_session(cwd="/tmp/long", session_id=conversation_id, mcp_servers=[])
        elapsed = time.monotonic() - started
        assert elapsed < 10, elapsed
        updates = agent.updates(conversation_id)
        users = [u for u in updates if u["sessionUpdate"] == "user_message_chunk"]
        agents = [u for u in updates if u["sessionUpdate"] == "agent_message_chunk"]
        assert [u["content"]["text"] for u in users] == [f"turn {i}" for i in range(100)]
        assert len({u["messageId"] for u in users}) == 100
        assert [u["messageId"] for u in agents] == [message_id(r, 0) for r in response_ids]  # the ids of the live turns
        assert [u["content"]["text"] for u in agents] == [f"turn {i}" for i in range(100)]
        assert updates[-1]["sessionUpdate"] == "session_info_update"
        load_answer = max(i for i, f in enumerate(agent.frames) if "result" in f)
        assert all(f.get("method") == "session/update" for f in agent.frames[load_answer - len(updates) : load_answer])
        # and the session goes on where it was
        assert await agent.prompt(conversation_id, text_block("turn 100")) == "end_turn"
    with parley.connect(str(daemon.socket)) as client:
        assert len(client.conversation(conversation_id).response_ids) == 101


async def test_load_while_a_response_runs_continues_it_with_no_gap(daemon):
    words = [f"w{i} " for i in range(60)]
    script = echo_script(*({"type": "text", "chunk": w, "delayMs": 30} for w in words))
    async with acp_agent(daemon) as first:
        session_id = await first.new()
        prompt = asyncio.get_running_loop().create_task(first.prompt(session_id, text_block(script)))
        await first.until(lambda: len(first.updates(session_id)) >= 10)
        async with acp_agent(daemon) as second:
            await second.conn.load_session(cwd="/tmp/project", session_id=session_id, mcp_servers=[])
            load_answer = max(i for i, f in enumerate(second.frames) if "result" in f)
            before = [f["params"]["update"] for f in second.frames[:load_answer] if f.get("method") == "session/update"]
            assert before[0]["sessionUpdate"] == "user_message_chunk"
            replayed = text_of(before)
            assert replayed and replayed != "".join(words)  # some of it before the answer
            await second.until(lambda: text_of(second.updates(session_id)) == "".join(words), timeout=20)
            assert await prompt == "end_turn"
            live = [u for u in first.updates(session_id) if u["sessionUpdate"] == "agent_message_chunk"]
            followed = [u for u in second.updates(session_id) if u["sessionUpdate"] == "agent_message_chunk"]
            assert followed == live  # no gap, no duplicate, the same ids


async def test_list_with_cwd_and_cursor(daemon):
    with parley.connect(str(daemon.socket)) as client:
        made = [client.create_conversation(cwd="/work/a", title=f"a{i}") for i in range(53)]
        other = client.create_conversation(cwd="/work/b", title="b")
    async with acp_agent(daemon) as agent:
        mine = await agent.new("/work/a")
        first = await agent.conn.list_sessions(cwd="/work/a")
        assert len(first.sessions) == 50 and first.next_cursor
        assert first.sessions[0].session_id == mine  # most recently updated first
        assert all(s.cwd == "/work/a" for s in first.sessions)
        rest = await agent.conn.list_sessions(cwd="/work/a", cursor=first.next_cursor)
        assert rest.next_cursor is None
        listed = [s.session_id for s in first.sessions + rest.sessions]
        assert sorted(listed) == sorted([*made, mine]) and len(set(listed)) == 54
        raw = next(f["result"] for f in reversed(agent.frames) if "result" in f and "sessions" in f["result"])
        stamp = raw["sessions"][0]["updatedAt"]
        assert stamp.endswith("Z") and time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")  # RFC 3339
        everything = await agent.conn.list_sessions()
        assert other in [s.session_id for s in everything.sessions]
        with pytest.raises(RequestError) as bad:
            await agent.conn.list_sessions(cursor="nonsense")
        assert bad.value.code == -32602


async def test_resume_without_replay(daemon):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new()
        assert await agent.prompt(session_id, text_block("first")) == "end_turn"
    async with acp_agent(daemon) as agent:
        await agent.conn.resume_session(cwd="/tmp/project", session_id=session_id)
        assert agent.updates() == []
        assert await agent.prompt(session_id, text_block("second")) == "end_turn"
    with parley.connect(str(daemon.socket)) as client:
        assert [parley.text_of(m) for m in client.conversation(session_id).messages] == ["first", "first", "second", "second"]


async def test_close_cancels_running_work(daemon):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new()
        script = echo_script(*({"type": "text", "chunk": f"w{i} ", "delayMs": 50} for i in range(100)))
        prompt = asyncio.get_running_loop().create_task(agent.prompt(session_id, text_block(script)))
        await agent.until(lambda: len(agent.updates(session_id)) >= 2)
        await agent.conn.close_session(session_id=session_id)
        assert prompt.done() and prompt.result() == "cancelled"  # answered before the close was
        with pytest.raises(RequestError) as gone:
            await agent.prompt(session_id, text_block("again"))
        assert gone.value.code == -32002
    with parley.connect(str(daemon.socket)) as client:
        [response_id] = client.conversation(session_id).response_ids
        assert client._call("response/get", parley.ResponseIdParams(response_id=response_id)).status == "cancelled"


async def test_delete(daemon):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new()
        assert await agent.prompt(session_id, text_block("hello")) == "end_turn"
        assert await agent.request("session/delete", {"sessionId": session_id}) == {}
        assert session_id not in [s.session_id for s in (await agent.conn.list_sessions()).sessions]
        assert await agent.request("session/delete", {"sessionId": session_id}) == {}  # again: still fine
    with parley.connect(str(daemon.socket)) as client:
        with pytest.raises(parley.UnknownConversation):
            client.conversation(session_id)


async def test_unknown_sessions_and_bad_params(daemon):
    async with acp_agent(daemon) as agent:
        with pytest.raises(RequestError) as unknown:
            await agent.prompt("conv_0000000000000000", text_block("hi"))
        assert unknown.value.code == -32002
        with pytest.raises(RequestError) as unknown_load:
            await agent.conn.load_session(cwd="/tmp", session_id="conv_0000000000000000", mcp_servers=[])
        assert unknown_load.value.code == -32002
        for method, params in [
            ("session/new", {"cwd": "relative/dir", "mcpServers": []}),
            ("session/new", {"mcpServers": []}),
            ("session/new", {"cwd": "/tmp", "mcpServers": [{"name": "x"}]}),
            ("session/prompt", {"sessionId": 5, "prompt": []}),
            ("session/list", {"cwd": 3}),
        ]:
            with pytest.raises(RequestError) as bad:
                await agent.request(method, params)
            assert bad.value.code == -32602, (method, params)
        with pytest.raises(RequestError) as missing:
            await agent.request("session/fork", {"sessionId": "x"})
        assert missing.value.code == -32601
        # MCP servers are checked, accepted, and (for now) said to be ignored
        await agent.request("session/new", {"cwd": "/tmp", "mcpServers": [{"name": "fs", "command": "/bin/true", "args": [], "env": []}]})
        await agent.until(lambda: any("MCP servers from the editor are not run" in line for line in agent.stderr))


async def test_a_1mb_line_survives(daemon):
    async with acp_agent(daemon) as agent:
        session_id = await agent.new()
        big = "x" * 1_000_000
        since = len(agent.frames)
        assert await agent.prompt(session_id, text_block(big)) == "end_turn"
        assert text_of(agent.updates(session_id, since)) == big
        assert await agent.prompt(session_id, text_block("still here")) == "end_turn"


async def test_every_stdout_line_is_json(daemon):
    """Raw NDJSON, no SDK: bad lines get JSON-RPC errors, and stdout never carries anything else."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parleyd", "acp", env=daemon.env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=LINE_LIMIT,
    )  # fmt: skip
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}},
        "this is not json",
        [{"jsonrpc": "2.0", "id": 2, "method": "session/list"}],
        {"jsonrpc": "2.0", "id": 3, "method": "session/new", "params": {"cwd": "/tmp", "mcpServers": []}},
        {"jsonrpc": "2.0", "id": 4, "method": "session/prompt", "params": {"sessionId": "nope", "prompt": [{"type": "text", "text": "x"}]}},
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "nope"}},
        {"jsonrpc": "2.0", "id": 5, "method": "no/such/method"},
        '{"jsonrpc": "2.0", "id": 6, "method": "session/list", "params": ',
        {"jsonrpc": "2.0", "id": 7, "method": "session/list", "params": {}},
    ]
    for line in lines:
        text = line if isinstance(line, str) else json.dumps(line)
        process.stdin.write(text.encode() + b"\n")
        await process.stdin.drain()
        if isinstance(line, dict) and line.get("id") == 1:
            await asyncio.sleep(0)  # the rest may come before initialize is answered
    received = []
    while not any(m.get("id") == 7 for m in received):
        raw = await asyncio.wait_for(process.stdout.readline(), 20)
        assert raw, "stdout closed early"
        received.append(json.loads(raw))  # every line is JSON
    process.stdin.close()
    rest = await asyncio.wait_for(process.stdout.read(), 20)
    for raw in rest.splitlines():
        received.append(json.loads(raw))
    await asyncio.wait_for(process.wait(), 20)
    await process.stderr.read()
    by_id = {m["id"]: m for m in received if m.get("id") is not None}
    parse_errors = [m for m in received if m.get("id") is None and m.get("error", {}).get("code") == -32700]
    assert len(parse_errors) == 2
    assert any(m.get("id") is None and m.get("error", {}).get("code") == -32600 for m in received)  # the batch
    assert "sessionId" in by_id[3]["result"]
    assert by_id[4]["error"]["code"] == -32002
    assert by_id[5]["error"]["code"] == -32601
    assert "sessions" in by_id[7]["result"]
    assert all(m.get("jsonrpc") == "2.0" for m in received)


async def test_a_session_keeps_the_conversations_options_until_one_is_set(tmp_path, monkeypatch):
    """Options given elsewhere (here: when the conversation was made) are inherited by an ACP
    session's prompts, until the editor sets a config option; then the session's own are sent."""
    monkeypatch.setenv("PARLEY_TEST_OPENAI_KEY", "sk-test-0123456789abcdef")
    with ReplayServer() as upstream:
        daemon = openai_endpoint_daemon(tmp_path / "home", upstream.url, '{ id = "mini", name = "upstream-mini" }')
        try:
            with parley.connect(str(daemon.socket)) as client:
                cid = client.create_conversation(model="mini", options={"temperature": 0.25})
            async with acp_agent(daemon) as agent:
                await agent.conn.load_session(cwd="/tmp/project", session_id=cid, mcp_servers=[])
                upstream.queue(Reply(body=openai_text("first")))
                assert await agent.prompt(cid, text_block("hi")) == "end_turn"
                assert upstream.requests[-1].json()["temperature"] == 0.25
                await agent.conn.set_config_option(config_id="model", session_id=cid, value="mini")
                upstream.queue(Reply(body=openai_text("second")))
                assert await agent.prompt(cid, text_block("again")) == "end_turn"
                assert "temperature" not in upstream.requests[-1].json()
        finally:
            daemon.stop()



async def test_the_daemons_mcp_tools_are_asked_for_in_the_session(tmp_path):
    """`parley acp --mcp time`: the daemon runs mcp-server-time's tool, and its tool/approve
    becomes session/request_permission; "always" holds for the session, and is not stored."""
    daemon = start_mcp_daemon(tmp_path / "home", {"time": time_server()})
    try:
        client = EditorClient()
        async with acp_agent(daemon, "--mcp", "time", client=client) as agent:
            session_id = await agent.new()
            script = rounds(call("time__get_current_time", "c1", {"timezone": "Europe/Paris"}))
            client.choice = "allow_always"
            assert await agent.prompt(session_id, text_block(script)) == "end_turn"
            [(asked, _)] = client.permissions
            assert asked.title == "time: get_current_time" and asked.raw_input == {"timezone": "Europe/Paris"}
            updates = agent.updates(session_id)
            [done] = [u for u in updates if u["sessionUpdate"] == "tool_call_update" and u.get("status") == "completed"]
            assert "Europe/Paris" in json.dumps(done["rawOutput"])
            assert [u.get("status") for u in updates if u["sessionUpdate"].startswith("tool_call")][-2:] == ["in_progress", "completed"]

            again = rounds(call("time__get_current_time", "c2", {"timezone": "UTC"}))
            assert await agent.prompt(session_id, text_block(again)) == "end_turn"
            assert len(client.permissions) == 1  # allowed always, in this session

        client = EditorClient()
        client.choice = "reject_once"
        async with acp_agent(daemon, "--mcp", "time", client=client) as agent:
            session_id = await agent.new()
            assert await agent.prompt(session_id, text_block(again)) == "end_turn"
            assert len(client.permissions) == 1, "a new session asks again: the daemon stored no approval"
            [failed] = [u for u in agent.updates(session_id) if u["sessionUpdate"] == "tool_call_update" and u.get("status") == "failed"]
            assert "rejected" in json.dumps(failed)
    finally:
        daemon.stop()
