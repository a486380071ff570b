"""A script written for llm, run on parley: ``import parley as llm``, against a real daemon.

The module-level client finds the test's daemon as a user's script finds theirs:
by ``PARLEY_HOME``. The echo model plays scripted events; options and schemas are
checked where they land, in the body an OpenAI-compatible endpoint (a replay
server on 127.0.0.1) receives. ``schema_dsl`` is compared with llm's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys

import llm as real_llm
import msgspec
import pydantic
import pytest

import parley as llm
from conftest import DaemonProcess, openai_endpoint_daemon
from parley import _default
from replay_server import ReplayServer, Reply, openai_text
from rpc import echo_script


@pytest.fixture
def home(monkeypatch):
    """Points the process's default client at the daemon of the test; a fresh one each test."""

    def use(daemon: DaemonProcess) -> DaemonProcess:
        monkeypatch.setenv("PARLEY_HOME", str(daemon.home))
        return daemon

    yield use
    _default._close()
    _default._client = None


@pytest.fixture
def echo(daemon, home):
    return home(daemon)


@pytest.fixture
def upstream():
    with ReplayServer() as server:
        yield server


@pytest.fixture
def openai_daemon(tmp_path, upstream, monkeypatch, home):
    """A daemon whose model ``mini`` is an OpenAI-compatible endpoint: the replay server."""
    monkeypatch.setenv("PARLEY_TEST_OPENAI_KEY", "sk-test-0123456789abcdef")
    proc = openai_endpoint_daemon(tmp_path / "home", upstream.url, '{ id = "mini", name = "upstream-mini" }')
    yield home(proc)
    proc.stop()


def test_the_basic_llm_script(echo):
    model = llm.get_model("echo")
    assert model.model_id == "echo" and llm.get_model().model_id == "echo"  # the default, as config says
    response = model.prompt(messages=[llm.user("Capital of France?"), llm.assistant("Paris"), llm.user("Germany?")])
    assert str(response) == "Germany?"  # llm: "Default __str__() calls .text()"
    assert repr(response).startswith("<Response ") and response.id in repr(response) and "completed" in repr(response)
    assert list(model.prompt("one two three")) == ["one ", "two ", "three"]
    again = response.reply("How about Hungary?")
    assert str(again) == "How about Hungary?" and again.conversation_id == response.conversation_id
    assert again.usage().output == 3
    record = again.json()
    assert record["id"] == again.id and record["status"] == "completed" and record["model"] == "echo"
    assert llm.Response.from_dict(again.to_dict()).json() is None  # no daemon record behind it
    assert [m.model_id for m in llm.get_models()] == [i.id for i in _default.default_client().models()]
    with pytest.raises(llm.UnknownModel, match="no-such-model"):
        llm.get_model("no-such-model")


def test_stream_events_with_a_tool_call(echo):
    model = llm.get_model("echo")
    script = echo_script(
        {"type": "reasoning", "chunk": "Let me look."},
        {"type": "tool_call_name", "chunk": "lookup", "toolCallId": "c1"},
        {"type": "tool_call_args", "chunk": '{"q": "pelicans"}', "toolCallId": "c1"},
        {"type": "text", "chunk": "Found it."},
    )
    response = model.prompt(script)
    events = list(response.stream_events())
    assert [e.type for e in events] == ["reasoning", "tool_call_name", "tool_call_args", "text", "done"]
    assert [e.chunk for e in events[:4]] == ["Let me look.", "lookup", '{"q": "pelicans"}', "Found it."]
    assert [(c.name, c.arguments) for c in response.tool_calls()] == [("lookup", {"q": "pelicans"})]
    assert str(response) == "Found it." and response.reasoning() == "Let me look."


def test_a_chain_runs_the_tool_here(echo):
    def lookup(q: str) -> str:
        "Look something up."
        return f"{q} eat fish"

    rounds = json.dumps({"rounds": [[
        {"type": "tool_call_name", "chunk": "lookup", "toolCallId": "c1"},
        {"type": "tool_call_args", "chunk": '{"q": "pelicans"}', "toolCallId": "c1"},
    ]]})  # fmt: skip
    response = llm.get_model("echo").chain(rounds, tools=[lookup])
    assert str(response) == "lookup: pelicans eat fish"  # the next round echoes the tool's result


class Memory(llm.Toolbox):
    """llm's Toolbox example, shaped: the tools share the instance's state."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.notes: dict[str, str] = {}

    def remember(self, key: str, value: str) -> str:
        "Remember a value under a key."
        self.notes[key] = value
        return f"{self.prefix} {key}"

    def recall(self, key: str) -> str:
        "Recall the value of a key."
        return self.notes.get(key, "nothing")

    def prepare(self):
        self.add_tool(forget, pass_self=True)


def forget(self: Memory, key: str) -> str:
    "Forget a key."
    return self.notes.pop(key, "nothing")


def test_a_toolbox_offers_its_methods_as_tools_sharing_its_state(echo):
    memory = Memory("kept")
    calls = [("Memory_remember", '{"key": "x", "value": "1"}'), ("Memory_recall", '{"key": "x"}'), ("forget", '{"key": "x"}')]
    rounds = json.dumps({"rounds": [
        [{"type": "tool_call_name", "chunk": name, "toolCallId": f"c{i}"},
         {"type": "tool_call_args", "chunk": args, "toolCallId": f"c{i}"}]
        for i, (name, args) in enumerate(calls)
    ]})  # fmt: skip
    response = llm.get_model("echo").chain(rounds, tools=[memory], chain_limit=5)
    assert sorted(t.name for t in response.prompt().tools) == ["Memory_recall", "Memory_remember", "forget"]
    results = [p.output for m in response.messages() for p in m.parts if isinstance(p, llm.ToolResultPart)]
    assert results == ["kept x", "1", "1"] and memory.notes == {}
    assert str(response) == "forget: 1"  # the last round echoes the last tool's result


def test_fragments_come_before_the_prompt_as_in_llm(echo):
    model = llm.get_model("echo")
    response = model.prompt("the question", fragments=["first file", "second file"], system="be brief", system_fragments=["you are parley"])
    assert str(response) == "first file\nsecond file\nthe question"
    assert response.prompt().system == "you are parley\n\nbe brief"
    assert str(model.prompt(fragments=["only a fragment"])) == "only a fragment"


def test_a_key_is_refused_with_where_keys_live(echo):
    with pytest.raises(TypeError, match="parley keys set"):
        llm.get_model("echo").prompt("hi", key="sk-0123456789")


def test_usage_is_a_usage_even_when_the_model_reported_none(echo):
    response = llm.get_model("echo").prompt(echo_script({"type": "text", "chunk": "no usage here"}))
    assert response.usage() == llm.Usage()  # llm's Usage(input=None, output=None, details=None)


def test_options_as_keywords_reach_the_provider(openai_daemon, upstream):
    upstream.queue(Reply(body=openai_text("Hi")))
    model = llm.get_model("mini")
    assert str(model.prompt("hello", temperature=0.5, max_tokens=100, top_p=0.9)) == "Hi"
    body = upstream.requests[-1].json()
    assert (body["temperature"], body["max_tokens"], body["top_p"]) == (0.5, 100, 0.9)

    upstream.queue(Reply(body=openai_text("again")))
    response = model.prompt("hello", options={"seed": 7}, stop="END")
    assert response.text() == "again" and response.prompt().options == {"seed": 7, "stop": "END"}  # stored in wire names
    assert upstream.requests[-1].json()["seed"] == 7

    upstream.queue(Reply(body=openai_text("reply")))
    assert str(response.reply("more", temperature=0.1)) == "reply"
    assert upstream.requests[-1].json()["temperature"] == 0.1
    with pytest.raises(TypeError, match="both in options= and as keyword arguments"):
        model.prompt("hello", options={"temperature": 1}, temperature=0.5)


def test_echo_takes_no_options_and_says_which(echo):
    with pytest.raises(llm.InvalidParams, match="temperature"):
        llm.get_model("echo").prompt("hi", temperature=0.5)


class Dog(msgspec.Struct):
    name: str
    age: int


class Cat(pydantic.BaseModel):
    name: str
    lives: int


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"type": "object", "properties": {"x": {"type": "string"}}}, {"type": "object", "properties": {"x": {"type": "string"}}}),
        (llm.schema_dsl("name, age int"), real_llm.schema_dsl("name, age int")),
        (Dog, {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}),
        (Cat, Cat.model_json_schema()),
    ],
    ids=["dict", "dsl", "struct", "pydantic"],
)
def test_a_schema_is_the_schema_option(openai_daemon, upstream, schema, expected):
    answer = {"name": "Rex", "age": 3, "lives": 9}  # matches every schema here: the daemon checks it
    upstream.queue(Reply(body=openai_text(json.dumps(answer))))
    response = llm.get_model("mini").prompt("a dog", schema=schema)
    assert json.loads(response.text()) == answer
    sent = upstream.requests[-1].json()["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "output", "schema": expected}}


@pytest.mark.parametrize(
    "dsl, multi",
    [
        ("name, age int, bio: a short bio", False),
        ("name\nage int: in years, rounded\nweight float: kg\nalive bool", False),
        ("  title str ,score float:out of 10, , tags", False),
        ("name, age int", True),
        ("one: with: colons", False),
        ("", False),
    ],
)
def test_schema_dsl_is_llms(dsl, multi):
    assert llm.schema_dsl(dsl, multi=multi) == real_llm.schema_dsl(dsl, multi=multi)


@pytest.mark.parametrize("dsl", ["age integer", "name, name", ": no name"])
def test_schema_dsl_refuses_what_llm_refuses(dsl):
    with pytest.raises(ValueError) as ours:
        llm.schema_dsl(dsl)
    with pytest.raises(ValueError) as theirs:
        real_llm.schema_dsl(dsl)
    assert str(ours.value) == str(theirs.value)


def test_attachments_take_llms_keywords(echo, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG")
    given = llm.Attachment(content=b"\x89PNG", type="image/png")
    assert given.type == given.mime_type == "image/png" and given.content == "iVBORw=="
    assert llm.Attachment(path=str(photo)).path == str(photo)
    with pytest.raises(TypeError, match="one of `type`"):
        llm.Attachment(content=b"x", type="a/b", mime_type="a/b")
    response = llm.get_model("echo").prompt("what is it?", attachments=[given])
    assert str(response) == "what is it?"
    sent = response.prompt().messages[-1].parts
    assert [p.type for p in sent] == ["text", "attachment"] and sent[1].attachment == given


def test_get_async_model_streams_in_each_loop(echo):
    model = llm.get_async_model("echo")
    assert model.model_id == "echo"

    async def main() -> tuple[list[str], list[str], str]:
        chunks = [chunk async for chunk in model.prompt("one two")]  # not awaited, as llm's
        response = model.prompt(echo_script({"type": "reasoning", "chunk": "hm"}, {"type": "text", "chunk": "ok"}))
        assert response.status == "pending"
        types = [event.type async for event in response.astream_events()]
        reply = await response.reply("and then")
        return chunks, types, await reply.text()

    assert asyncio.run(main()) == (["one ", "two"], ["reasoning", "text", "done"], "and then")
    assert asyncio.run(main())[2] == "and then"  # a second loop connects again


def test_the_async_client_loads_lazily():
    """The blocking client, and the CLI, do not import asyncio; ``from parley import AsyncClient`` still works."""
    code = "import sys, parley, parleyd._cli; print('asyncio' in sys.modules); from parley import AsyncClient; print(AsyncClient.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "AsyncClient"]


# ---- model.conversation() -----------------------------------------------------------


def texts(messages: list[llm.Message]) -> list[tuple[str, str]]:
    return [(m.role, llm.text_of(m)) for m in messages]


def test_a_conversation_continues_one_parley_conversation(echo):
    model = llm.get_model("echo")
    conversation = model.conversation()
    assert conversation.id is None and conversation.responses == []
    slow = echo_script({"type": "text", "chunk": "first", "delayMs": 300})
    first = conversation.prompt(slow)  # not read: the next prompt waits for it, so its answer is history
    second = conversation.prompt("second")
    assert str(second) == "second" and conversation.responses == [first, second]
    assert conversation.id == first.conversation_id == second.conversation_id and conversation.id.startswith("conv_")
    assert texts(second.prompt().messages) == [("user", slow), ("assistant", "first"), ("user", "second")]
    stored = _default.default_client().conversation(conversation.id)
    assert stored.response_ids == [first.id, second.id]
    third = conversation.prompt("third", system="be brief")
    assert third.prompt().system == "be brief" and len(third.prompt().messages) == 5
    assert model.conversation().prompt("elsewhere").conversation_id != conversation.id
    with pytest.raises(TypeError, match="conversation_id"):
        conversation.prompt("hi", conversation_id="conv_x")


def test_a_conversation_can_continue_a_stored_one(echo):
    earlier = llm.get_model("echo").prompt("remember this")
    conversation = llm.get_model("echo").conversation()
    conversation.id = earlier.conversation_id
    later = conversation.prompt("and this")
    assert later.conversation_id == earlier.conversation_id
    assert texts(later.prompt().messages)[:2] == [("user", "remember this"), ("assistant", "remember this")]


def test_a_conversation_chain_uses_its_tools(echo):
    calls = []

    def lookup(q: str) -> str:
        "Look something up."
        return f"{q} eat fish"

    rounds = json.dumps({"rounds": [[
        {"type": "tool_call_name", "chunk": "lookup", "toolCallId": "c1"},
        {"type": "tool_call_args", "chunk": '{"q": "pelicans"}', "toolCallId": "c1"},
    ]]})  # fmt: skip
    conversation = llm.get_model("echo").conversation(tools=[lookup], before_call=lambda tool, call: calls.append(call.name))
    assert str(conversation.chain(rounds)) == "lookup: pelicans eat fish" and calls == ["lookup"]
    again = conversation.prompt("thanks")  # one round: the tools are offered, none is called
    assert str(again) == "thanks" and again.conversation_id == conversation.id
    assert texts(again.prompt().messages)[-2:] == [("assistant", "lookup: pelicans eat fish"), ("user", "thanks")]


def test_an_async_conversation_continues_one_conversation(echo):
    model = llm.get_async_model("echo")

    async def main() -> tuple[object, ...]:
        conversation = model.conversation()
        first = conversation.prompt(echo_script({"type": "text", "chunk": "one", "delayMs": 200}))
        second = conversation.prompt("two")  # neither is sent yet: reading the second sends both, in order
        assert first.status == second.status == "pending" and conversation.id is None
        text = await second.text()
        record = await second.prompt()
        return text, texts(record.messages)[1:], conversation.id, first.conversation_id, second.conversation_id

    text, history, *ids = asyncio.run(main())
    assert text == "two" and history == [("assistant", "one"), ("user", "two")]
    assert ids[0] is not None and len(set(ids)) == 1


# ---- the CLI: reasoning goes to stderr --------------------------------------------

REASONING = echo_script({"type": "reasoning", "chunk": "Thinking."}, {"type": "text", "chunk": "Answer."})


def run_cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parleyd", *args], env=daemon.env, capture_output=True, text=True, timeout=30)


def test_cli_writes_reasoning_to_stderr_plain_when_redirected(daemon):
    out = run_cli(daemon, "prompt", REASONING)
    assert (out.returncode, out.stdout, out.stderr) == (0, "Answer.\n", "Thinking.\n")


@pytest.mark.parametrize("flag", ["-R", "--no-reasoning", "--hide-reasoning"])
def test_cli_hides_reasoning(daemon, flag):
    out = run_cli(daemon, "prompt", flag, REASONING)
    assert (out.returncode, out.stdout, out.stderr) == (0, "Answer.\n", "")


@pytest.mark.parametrize("hide", [False, True])
def test_chat_shows_reasoning_on_stderr_unless_told_not_to(daemon, hide):
    process = subprocess.run(
        [sys.executable, "-m", "parleyd", "chat", *(["-R"] if hide else [])],
        input=f"{REASONING}\n{REASONING}\nexit\n", env=daemon.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert process.returncode == 0 and process.stdout.count("Answer.") == 2  # the first turn and its reply
    assert process.stderr == ("" if hide else "Thinking.\nThinking.\n")


def test_cli_dims_reasoning_on_a_terminal(daemon):
    main, terminal = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "parleyd", "prompt", REASONING],
            env=daemon.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, timeout=30,
        )  # fmt: skip
        os.close(terminal)
        terminal = -1
        written = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            written += chunk
    finally:
        os.close(main)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode == 0 and process.stdout == b"Answer.\n"
    assert written.replace(b"\r\n", b"\n") == b"\x1b[2mThinking.\x1b[0m\n"
