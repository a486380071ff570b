"""The Anthropic Messages provider, over real sockets, against the replay server.

The streams are Anthropic's documented event sequences (message_start, content blocks with
text/thinking/signature/input_json deltas, redacted thinking, server tool use with web search
results, message_delta, message_stop, ping, error); what each test asserts is the events the
provider yields, the message the daemon's assembler stores from them, and the request body
the next turn sends back with that message in its history.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from parley import assistant, attachment, tool_message, tool_result, user
from parley._errors import InvalidParams
from parley._types import (
    AnyEvent,
    Message,
    ReasoningEvent,
    ReasoningPart,
    TextEvent,
    TextPart,
    ToolCallArgsEvent,
    ToolCallNameEvent,
    ToolCallPart,
    ToolResultEvent,
    ToolResultPart,
    ToolSpec,
    UsageEvent,
)
from parleyd._assembly import Assembler
from parleyd._models import ModelFailure, ModelRegistry, ModelRequest
from parleyd._models._http import AnthropicModel, OpenAIChatModel, RetryPolicy, Timeouts
from replay_server import (
    Drop,
    Pause,
    ReplayServer,
    Reply,
    Stall,
    anthropic_message_start,
    anthropic_stream,
    anthropic_text,
    json_reply,
    openai_text,
    sse,
)

KEY = "sk-ant-api03-TESTKEY-abcdefghijklmnopqrstuvwxyz0123456789"
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_wait=5)
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds6RDPFBm/7AHjpfBVGWHbdFZs1kXsgCGq0jRvR+ioA9U9U8wNfDFxyRa3ELDM4I/rOBm1G1Mb/PZr5tpQIjsSdwSvQ8AAA=="
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj2pabc6YrR9QB"
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather in a given location",
    input_schema={"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string"}}, "required": ["location"]},
)


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **d: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": d}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_end(stop_reason: str, **usage: Any) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": 50, **usage}},
        {"type": "message_stop"},
    ]


# The documented extended-thinking stream: thinking deltas, the signature, then the answer.
THINKING_STREAM = anthropic_stream(
    anthropic_message_start(input_tokens=40),
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    delta(
        0, type="thinking_delta", thinking="I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n1071 = 2 × 462 + 147"
    ),
    {"type": "ping"},
    delta(0, type="thinking_delta", thinking="\n462 = 3 × 147 + 21\n147 = 7 × 21 + 0\n\nSo GCD(1071, 462) = 21"),
    delta(0, type="signature_delta", signature=SIGNATURE),
    block_stop(0),
    block_start(1, {"type": "text", "text": ""}),
    delta(1, type="text_delta", text="The greatest common divisor of 1071 and 462 is **21**."),
    block_stop(1),
    *message_end("end_turn"),
)

# The documented tool-use stream: text, then a tool_use whose input arrives as JSON pieces.
TOOL_STREAM = anthropic_stream(
    anthropic_message_start(input_tokens=472),
    block_start(0, {"type": "text", "text": ""}),
    delta(0, type="text_delta", text="Okay, let's check the weather for San Francisco, CA:"),
    block_stop(0),
    block_start(1, {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}),
    delta(1, type="input_json_delta", partial_json=""),
    delta(1, type="input_json_delta", partial_json='{"location":'),
    delta(1, type="input_json_delta", partial_json=' "San Fra'),
    delta(1, type="input_json_delta", partial_json='ncisco, CA"'),
    delta(1, type="input_json_delta", partial_json=', "unit": "fahrenheit"}'),
    block_stop(1),
    *message_end("tool_use", output_tokens=89),
)

SEARCH_RESULTS = [
    {
        "type": "web_search_result",
        "title": "Weather in New York City in May 2025 (New York) - detailed Weather Forecast for a month",
        "url": "https://world-weather.info/forecast/usa/new_york/may-2025/",
        "encrypted_content": "Ev0DCioIAxgCIiQ3NmU4ZmI4OC1k...",
        "page_age": None,
    },
    {
        "type": "web_search_result",
        "title": "National Weather Service",
        "url": "https://www.weather.gov/",
        "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1m...",
        "page_age": None,
    },
]

# The documented web-search stream: a server_tool_use, its results, then cited text.
SEARCH_STREAM = anthropic_stream(
    anthropic_message_start(input_tokens=2679),
    block_start(0, {"type": "text", "text": ""}),
    delta(0, type="text_delta", text="I'll check the current weather in New York City for you."),
    block_stop(0),
    block_start(1, {"type": "server_tool_use", "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "name": "web_search", "input": {}}),
    delta(1, type="input_json_delta", partial_json=""),
    delta(1, type="input_json_delta", partial_json='{"query":"weather NYC today"}'),
    block_stop(1),
    block_start(2, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "content": SEARCH_RESULTS}),
    block_stop(2),
    block_start(3, {"type": "text", "text": "", "citations": []}),
    delta(
        3,
        type="citations_delta",
        citation={
            "type": "web_search_result_location",
            "cited_text": "Sunny, 75F",
            "url": "https://www.weather.gov/",
            "title": "National Weather Service",
            "encrypted_index": "Eo8BCioIAhgBIiQ...",
        },
    ),
    delta(3, type="text_delta", text="It is sunny and 75°F in New York City today."),
    block_stop(3),
    *message_end(
        "end_turn",
        input_tokens=10682,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=0,
        output_tokens=510,
        server_tool_use={"web_search_requests": 1},
    ),
)


def make(server_url: str, **kwargs: Any) -> AnthropicModel:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("retry", FAST)
    return AnthropicModel("claude", "claude-sonnet-4-5", base_url=server_url, **kwargs)


def options(model: Any, **values: Any) -> Any:
    return ModelRegistry([model], default=model.id).options(model, values)


async def run(model: Any, *messages: Message, **kwargs: Any) -> tuple[list[AnyEvent], ModelFailure | None]:
    kwargs.setdefault("options", options(model))
    events: list[AnyEvent] = []
    try:
        async for event in model.stream(ModelRequest(messages=list(messages), **kwargs)):
            events.append(event)
    except ModelFailure as failure:
        return events, failure
    return events, None


def assembled(events: list[AnyEvent]) -> Message:
    assembler = Assembler()
    for event in events:
        assembler.add(event)
    return assembler.messages()[0]


@pytest.fixture
def replay():
    with ReplayServer() as server:
        yield server


@pytest.fixture
async def model(replay):
    m = make(replay.url)
    yield m
    await m.aclose()


# ---- streams ---------------------------------------------------------------------------------


async def test_text_usage_and_the_request_sent(replay, model):
    replay.queue(Reply(body=anthropic_text("Hello", "!", " How can I help?", input_tokens=12, output_tokens=9)))
    opts = options(model, temperature=0.3, topP=0.9, topK=20, stop="END", maxTokens=100)
    events, failure = await run(
        model, Message(role="system", parts=[TextPart(text="Chain system.")]), user("Hi"), system="Be kind.", options=opts
    )
    assert failure is None
    assert [e.chunk for e in events if isinstance(e, TextEvent)] == ["Hello", "!", " How can I help?"]
    assert events[-1] == UsageEvent(input=12, output=9, details={"stop_reason": "end_turn"})
    request = replay.requests[0]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.json() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "stream": True,
        "system": "Be kind.\n\nChain system.",
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 20,
        "stop_sequences": ["END"],
    }


async def test_thinking_signature_is_kept_and_sent_back_unchanged(replay, model):
    replay.queue(Reply(body=THINKING_STREAM), Reply(body=anthropic_text("Yes.")))
    question = user("What is the GCD of 1071 and 462?")
    events, failure = await run(model, question, options=options(model, thinking=True, thinkingBudget=2000, maxTokens=4000))
    assert failure is None
    reasoning = [e for e in events if isinstance(e, ReasoningEvent)]
    assert [e.chunk for e in reasoning[:2]] == [
        "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n1071 = 2 × 462 + 147",
        "\n462 = 3 × 147 + 21\n147 = 7 × 21 + 0\n\nSo GCD(1071, 462) = 21",
    ]
    assert reasoning[2] == ReasoningEvent(chunk="", provider_metadata={"anthropic": {"signature": SIGNATURE}})
    assert replay.requests[0].json()["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    answer = assembled(events)
    thinking, text = answer.parts
    assert isinstance(thinking, ReasoningPart) and thinking.provider_metadata == {"anthropic": {"signature": SIGNATURE}}
    assert isinstance(text, TextPart)
    # the next turn carries the thinking block exactly as it came
    events, failure = await run(model, question, answer, user("Are you sure?"), options=options(model, thinking=True))
    assert failure is None
    body = replay.requests[1].json()
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": thinking.text, "signature": SIGNATURE},
            {"type": "text", "text": "The greatest common divisor of 1071 and 462 is **21**."},
        ],
    }
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] == 8192


async def test_redacted_thinking_and_a_run_of_reasoning_blocks(replay, model):
    stream = anthropic_stream(
        anthropic_message_start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="thinking_delta", thinking="Let me think"),
        delta(0, type="signature_delta", signature="SIG-A"),
        block_stop(0),
        block_start(1, {"type": "redacted_thinking", "data": REDACTED}),
        block_stop(1),
        block_start(2, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(2, type="thinking_delta", thinking=" more."),
        delta(2, type="signature_delta", signature="SIG-B"),
        block_stop(2),
        block_start(3, {"type": "text", "text": ""}),
        delta(3, type="text_delta", text="Done."),
        block_stop(3),
        block_start(4, {"type": "redacted_thinking", "data": REDACTED + "2"}),
        block_stop(4),
        *message_end("end_turn"),
    )
    replay.queue(Reply(body=stream), Reply(body=anthropic_text("ok")))
    events, failure = await run(model, user("Think hard."))
    assert failure is None
    redacted = [e for e in events if isinstance(e, ReasoningEvent) and e.redacted]
    assert len(redacted) == 2 and all(e.chunk == "" for e in redacted)
    answer = assembled(events)
    # the daemon joins consecutive reasoning events into one part; its metadata describes the run
    run_part, _text, last = answer.parts
    assert isinstance(run_part, ReasoningPart) and run_part.text == "Let me think more."
    assert run_part.provider_metadata == {
        "anthropic": {
            "blocks": [
                {"type": "thinking", "length": 12, "signature": "SIG-A"},
                {"type": "redacted_thinking", "data": REDACTED},
                {"type": "thinking", "length": 6, "signature": "SIG-B"},
            ]
        }
    }
    assert isinstance(last, ReasoningPart) and last.redacted and last.provider_metadata == {"anthropic": {"redactedData": REDACTED + "2"}}
    events, failure = await run(model, user("Think hard."), answer, user("Again?"))
    assert failure is None
    assert replay.requests[1].json()["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Let me think", "signature": "SIG-A"},
        {"type": "redacted_thinking", "data": REDACTED},
        {"type": "thinking", "thinking": " more.", "signature": "SIG-B"},
        {"type": "text", "text": "Done."},
        {"type": "redacted_thinking", "data": REDACTED + "2"},
    ]


async def test_tool_use_with_input_json_deltas_and_the_result_turn(replay, model):
    replay.queue(Reply(body=TOOL_STREAM), Reply(body=anthropic_text("It is 62°F.")))
    question = user("What's the weather like in San Francisco?")
    events, failure = await run(model, question, tools=[WEATHER], options=options(model, toolChoice="auto", parallelToolCalls=False))
    assert failure is None
    assert ToolCallNameEvent(chunk="get_weather", tool_call_id="toolu_01T1x1fJ34qAmk2tNTrN7Up6") in events
    args = [e.chunk for e in events if isinstance(e, ToolCallArgsEvent)]
    assert args == ['{"location":', ' "San Fra', 'ncisco, CA"', ', "unit": "fahrenheit"}']  # the empty piece is not sent
    assert events[-1] == UsageEvent(input=472, output=89, details={"stop_reason": "tool_use"})
    body = replay.requests[0].json()
    assert body["tools"] == [{"name": "get_weather", "description": WEATHER.description, "input_schema": WEATHER.input_schema}]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    answer = assembled(events)
    call = answer.parts[1]
    assert isinstance(call, ToolCallPart) and call.arguments == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    results = tool_message(
        tool_result("get_weather", "62°F, foggy", tool_call_id=call.tool_call_id),
        tool_result("get_weather", "", tool_call_id="toolu_orphan", exception="no such call"),
    )
    events, failure = await run(model, question, answer, results, user("Thanks!"), tools=[WEATHER])
    assert failure is None
    messages = replay.requests[1].json()["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Okay, let's check the weather for San Francisco, CA:"},
            {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA", "unit": "fahrenheit"},
            },
        ],
    }
    # one user turn: the result first, then the orphan result as text, then the user's words
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "content": "62°F, foggy"},
            {"type": "text", "text": "[result of tool get_weather]\nError: no such call"},
            {"type": "text", "text": "Thanks!"},
        ],
    }
    assert len(messages) == 3


async def test_a_failed_tool_result_is_marked_as_an_error(replay, model):
    call = Message(role="assistant", parts=[ToolCallPart(name="get_weather", arguments={"location": "Oz"}, tool_call_id="toolu_1")])
    replay.queue(Reply(body=anthropic_text("Sorry.")))
    await run(
        model,
        user("Oz?"),
        call,
        tool_message(tool_result("get_weather", "", tool_call_id="toolu_1", exception="unknown city")),
        tools=[WEATHER],
    )
    assert replay.requests[0].json()["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Error: unknown city", "is_error": True}
    ]


async def test_web_search_as_server_executed_tool_call_and_result(replay, model):
    replay.queue(Reply(body=SEARCH_STREAM), Reply(body=anthropic_text("You're welcome.")))
    question = user("What's the weather in New York City today?")
    events, failure = await run(model, question, options=options(model, webSearch=True, webSearchMaxUses=3))
    assert failure is None
    assert replay.requests[0].json()["tools"] == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    assert ToolCallNameEvent(chunk="web_search", tool_call_id="srvtoolu_014hJH82Qum7Td6UV8gDXThB", server_executed=True) in events
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert result.server_executed and result.name == "web_search" and result.tool_call_id == "srvtoolu_014hJH82Qum7Td6UV8gDXThB"
    assert json.loads(result.output) == SEARCH_RESULTS
    assert events[-1] == UsageEvent(
        input=10682, output=510, details={"server_tool_use": {"web_search_requests": 1}, "stop_reason": "end_turn"}
    )
    answer = assembled(events)
    assert [p.type for p in answer.parts] == ["text", "tool_call", "tool_result", "text"]
    assert answer.parts[2].server_executed
    # the next turn sends the search and its (encrypted) results back unchanged
    events, failure = await run(model, question, answer, user("Thanks"))
    assert failure is None
    content = replay.requests[1].json()["messages"][1]["content"]
    assert content[1] == {
        "type": "server_tool_use",
        "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
        "name": "web_search",
        "input": {"query": "weather NYC today"},
    }
    assert content[2] == {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "content": SEARCH_RESULTS}
    assert [b["type"] for b in content] == ["text", "server_tool_use", "web_search_tool_result", "text"]


async def test_a_web_search_error_result(replay, model):
    stream = anthropic_stream(
        anthropic_message_start(),
        block_start(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        delta(0, type="input_json_delta", partial_json='{"query": "x"}'),
        block_stop(0),
        block_start(
            1,
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"},
            },
        ),
        block_stop(1),
        *message_end("end_turn"),
    )
    replay.queue(Reply(body=stream))
    events, _failure = await run(model, user("search"), options=options(model, webSearch=True))
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert result.exception == "max_uses_exceeded" and result.server_executed


# ---- switching providers mid-conversation -------------------------------------------------------


async def test_history_from_another_provider(replay, model):
    # An OpenAI-compatible model answered before: its reasoning has no Anthropic signature
    # and its tool call ids are OpenAI's. A cut-off call (a cancel) has no result.
    earlier = Message(
        role="assistant",
        parts=[
            ReasoningPart(text="deepseek thoughts"),
            TextPart(text="Checking."),
            ToolCallPart(name="get_weather", arguments={"location": "Paris"}, tool_call_id="call_abc123"),
            ToolCallPart(name="get_weather", tool_call_id="call_cut", provider_metadata={"parley": {"partialArguments": "{"}}),
        ],
    )
    history = [user("Weather in Paris?"), earlier, tool_message(tool_result("get_weather", "Rainy", tool_call_id="call_abc123"))]
    replay.queue(Reply(body=anthropic_text("It's rainy.")))
    _events, failure = await run(model, *history, tools=[WEATHER], options=options(model, thinking=True))
    assert failure is None
    body = replay.requests[0].json()
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"location": "Paris"}},
    ]
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_abc123", "content": "Rainy"}]
    # thinking would make Anthropic refuse this turn (the open tool loop has no thinking block): left off
    assert "thinking" not in body
    assert "deepseek thoughts" not in replay.requests[0].body.decode()


async def test_anthropic_history_to_an_openai_compatible_model(replay, model):
    replay.queue(Reply(body=THINKING_STREAM), Reply(body=SEARCH_STREAM), Reply(body=openai_text("Sure.")))
    first, _ = await run(model, user("GCD?"), options=options(model, thinking=True))
    second, _ = await run(model, user("Weather?"), options=options(model, webSearch=True))
    other = OpenAIChatModel("gpt", "gpt-4o", base_url=replay.url + "/v1", retry=FAST)
    try:
        _events, failure = await run(other, user("GCD?"), assembled(first), user("Weather?"), assembled(second), user("Thanks"))
        assert failure is None
        sent = replay.requests[2].json()["messages"]
        assert sent[1] == {"role": "assistant", "content": "The greatest common divisor of 1071 and 462 is **21**."}
        assert sent[3] == {
            "role": "assistant",
            "content": "I'll check the current weather in New York City for you.It is sunny and 75°F in New York City today.",
        }
        raw = replay.requests[2].body.decode()
        assert SIGNATURE not in raw and "encrypted_content" not in raw and "srvtoolu" not in raw
    finally:
        await other.aclose()


# ---- input parts ---------------------------------------------------------------------------------


async def test_images_pdfs_and_text_documents(replay, model, tmp_path):
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.7 a tiny pdf")
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 8
    replay.queue(Reply(body=anthropic_text("Seen.")))
    _events, failure = await run(
        model,
        user(
            "Describe these.",
            attachment(content=png),
            attachment(url="https://upload.wikimedia.org/cat.jpg"),
            attachment(path=str(pdf)),
            attachment(url="https://arxiv.org/pdf/1706.03762.pdf", mime_type="application/pdf"),
            attachment(content=b"some notes", mime_type="text/markdown"),
        ),
    )
    assert failure is None
    assert replay.requests[0].json()["messages"][0]["content"] == [
        {"type": "text", "text": "Describe these."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()}},
        {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf.read_bytes()).decode()},
        },
        {"type": "document", "source": {"type": "url", "url": "https://arxiv.org/pdf/1706.03762.pdf"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "some notes"}},
    ]
    _events, failure = await run(model, user("hear", attachment(content=b"RIFF\x00\x00\x00\x00WAVEfmt ")))
    assert failure is not None and failure.kind == "bad_request" and "audio/wav" in failure.message
    assert len(replay.requests) == 1


async def test_options_anthropic_refuses_are_refused_first(replay, model):
    for bad, match in [
        ({"thinking": True, "temperature": 0.5}, "temperature cannot be set with thinking"),
        ({"thinkingBudget": 5000, "maxTokens": 4000}, "maxTokens must be greater than thinkingBudget"),
        ({"thinkingBudget": 100}, "thinkingBudget"),
        ({"thinking": True, "toolChoice": "get_weather"}, "toolChoice cannot force a tool"),
        ({"thinking": True, "maxTokens": 1000}, "over 1024"),
        ({"temperature": 1.5}, "temperature"),
        ({"seed": 1}, "unknown option `seed`"),
    ]:
        with pytest.raises(InvalidParams, match=match):
            options(model, **bad)
    replay.queue(Reply(body=anthropic_text("ok")), Reply(body=anthropic_text("ok")))
    await run(model, user("hi"), tools=[WEATHER], options=options(model, toolChoice="get_weather"))
    assert replay.requests[0].json()["tool_choice"] == {"type": "tool", "name": "get_weather"}
    await run(model, user("hi"), options=options(model, thinking=True, maxTokens=3000))
    body = replay.requests[1].json()
    assert body["max_tokens"] == 3000 and body["thinking"] == {"type": "enabled", "budget_tokens": 2999}


# ---- failures --------------------------------------------------------------------------------------


async def test_overloaded_529_is_retried_after_retry_after(replay, model):
    overloaded = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    replay.queue(json_reply(529, overloaded, {"retry-after": "0"}), Reply(body=anthropic_text("fine")))
    events, failure = await run(model, user("hi"))
    assert failure is None and [e.chunk for e in events if isinstance(e, TextEvent)] == ["fine"]
    assert len(replay.requests) == 2
    replay.queue(*(json_reply(529, overloaded) for _ in range(3)))
    events, failure = await run(model, user("hi"))
    assert failure is not None and failure.kind == "overloaded" and failure.retryable and "Overloaded" in failure.message
    assert len(replay.requests) == 5


async def test_rate_limit_with_a_long_retry_after_goes_to_the_client(replay, model):
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "This request would exceed the rate limit for your organization of 50,000 input tokens per minute.",
        },
    }
    replay.queue(json_reply(429, body, {"retry-after": "120", "anthropic-ratelimit-input-tokens-remaining": "0"}))
    started = time.monotonic()
    _events, failure = await run(model, user("hi"))
    assert time.monotonic() - started < 2
    assert failure is not None and failure.kind == "rate_limited" and failure.retry_after == 120 and failure.retryable
    assert len(replay.requests) == 1


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (401, {"type": "authentication_error", "message": "invalid x-api-key"}, "auth"),
        (403, {"type": "permission_error", "message": "Your API key does not have permission to use the specified resource."}, "auth"),
        (400, {"type": "invalid_request_error", "message": "prompt is too long: 215034 tokens > 200000 maximum"}, "context_length"),
        (400, {"type": "invalid_request_error", "message": "messages.0.content.0.text: field required"}, "bad_request"),
        (404, {"type": "not_found_error", "message": "model: claude-9"}, "bad_request"),
        (413, {"type": "request_too_large", "message": "Request exceeds the maximum allowed number of bytes."}, "bad_request"),
    ],
)
async def test_error_answers_map_to_kinds(replay, model, status, error, kind):
    replay.queue(json_reply(status, {"type": "error", "error": error}))
    _events, failure = await run(model, user("hi"))
    assert failure is not None and failure.kind == kind and not failure.retryable
    assert error["message"] in failure.message and KEY not in failure.message
    assert len(replay.requests) == 1


async def test_an_error_event_before_any_output_is_retried(replay, model):
    error = sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")
    replay.queue(Reply(body=anthropic_stream(anthropic_message_start(), {"type": "ping"}) + [error]), Reply(body=anthropic_text("ok")))
    events, failure = await run(model, user("hi"))
    assert failure is None and [e.chunk for e in events if isinstance(e, TextEvent)] == ["ok"]
    assert len(replay.requests) == 2


async def test_an_error_event_mid_stream_ends_the_response(replay, model):
    error = sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")
    replay.queue(Reply(body=anthropic_text("Part", "ial")[:5] + [error]))
    events, failure = await run(model, user("hi"))
    assert [e.chunk for e in events] == ["Part", "ial"]
    assert failure is not None and failure.kind == "overloaded" and failure.retryable
    assert len(replay.requests) == 1


async def test_dropped_stalled_and_malformed_streams(replay):
    model = make(replay.url, timeouts=Timeouts(read=0.4))
    try:
        replay.queue(Reply(body=anthropic_text("a", "b")[:4] + [Drop()]))
        events, failure = await run(model, user("hi"))
        assert [e.chunk for e in events] == ["a"] and failure.kind == "network"
        replay.queue(Reply(body=anthropic_text("a", "b")[:4] + [Stall()]))
        events, failure = await run(model, user("hi"))
        assert [e.chunk for e in events] == ["a"] and failure.kind == "timeout"
        replay.queue(
            Reply(
                body=anthropic_text("a")[:4]
                + [b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta"\n\n']
            )
        )
        events, failure = await run(model, user("hi"))
        assert [e.chunk for e in events] == ["a"] and failure.kind == "provider_error" and "malformed" in failure.message
        replay.queue(
            Reply(
                body=anthropic_text("a")[:4]
                + [sse({"type": "content_block_delta", "index": 9, "delta": {"type": "text_delta", "text": "?"}}, "content_block_delta")]
            )
        )
        events, failure = await run(model, user("hi"))
        assert failure.kind == "provider_error"
        assert replay.wait_outcomes(4) == ["dropped", "client_closed", "client_closed", "client_closed"] or replay.outcomes[:2] == [
            "dropped",
            "client_closed",
        ]
    finally:
        await model.aclose()


async def test_a_stream_cut_after_message_delta_still_completes(replay, model):
    replay.queue(Reply(body=anthropic_text("done")[:-1]))  # no message_stop
    events, failure = await run(model, user("hi"))
    assert failure is None and events[-1].details == {"stop_reason": "end_turn"}


async def test_cancel_closes_the_upstream_connection(replay, model):
    words = anthropic_text(*["word "] * 300)
    replay.queue(Reply(body=words[:4] + [Pause(0.05)] + words[4:]))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in model.stream(ModelRequest(messages=[user("hi")], options=options(model))):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await replay.await_outcomes(1, timeout=5) == ["client_closed"]


async def test_a_finished_stream_leaves_its_connection_in_the_pool(replay, model):
    replay.queue(Reply(body=THINKING_STREAM), Reply(body=TOOL_STREAM), Reply(body=SEARCH_STREAM))
    for _ in range(3):
        _events, failure = await run(model, user("hi"))
        assert failure is None
    assert replay.wait_outcomes(3) == ["complete"] * 3
    assert replay.connections == 1


async def test_the_base_url_may_end_in_v1(replay):
    model = AnthropicModel("c", "claude-x", base_url=replay.url + "/v1/", betas=["interleaved-thinking-2025-05-14"])
    try:
        replay.queue(Reply(body=anthropic_text("ok")))
        _events, failure = await run(model, user("hi"), assistant("Prefill:"))
        assert failure is None
        request = replay.requests[0]
        assert request.path == "/v1/messages" and "x-api-key" not in request.headers
        assert request.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
        assert request.json()["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "Prefill:"}]}
    finally:
        await model.aclose()


def test_server_tool_results_are_not_client_tool_results():
    # a guard for the pairing rules: a server result never answers a client call
    from parleyd._models._http._model import paired_tool_ids

    history = [
        Message(role="assistant", parts=[ToolCallPart(name="web_search", tool_call_id="srvtoolu_1", server_executed=True)]),
        Message(role="tool", parts=[ToolResultPart(name="web_search", output="[]", tool_call_id="srvtoolu_1", server_executed=True)]),
    ]
    assert paired_tool_ids(history) == set()
