"""The OpenAI-compatible provider, over real sockets.

Two peers: a replay server (tests/replay_server.py) that sends byte streams in OpenAI's
documented chunk format, for what a real server will not do on demand (reasoning deltas,
usage chunks, parallel tool calls, errors with retry-after, a dropped or stalled stream,
malformed SSE); and the llama.cpp OpenAI-compatible server (``llama_cpp.server``) running
SmolLM2 (as tests/llama_server.py starts it), for a real peer. Tiny-model answers are weak: those tests assert the structure of
the stream, except one known-stable fact at temperature 0 with a system message.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ROOT, free_port, missing
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
    ToolResultPart,
    ToolSpec,
    UsageEvent,
)
from parleyd._assembly import Assembler
from parleyd._models import ModelFailure, ModelRegistry, ModelRequest
from parleyd._models._http import OpenAIChatModel, RetryPolicy, Timeouts
from parleyd._models.local import smollm2_gguf
from parleyd._models._http._sse import SSEDecoder
from replay_server import (
    Drop,
    Pause,
    ReplayServer,
    Reply,
    Reset,
    Stall,
    json_reply,
    openai_chunk,
    openai_stream,
    openai_text,
    sse,
)

KEY = "sk-proj-Zq3Xv9TESTKEY0123456789abcdef"
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_wait=5)
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city",
    input_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def make(server_url: str, **kwargs: Any) -> OpenAIChatModel:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("retry", FAST)
    return OpenAIChatModel("gpt", "gpt-4o", base_url=server_url + "/v1", **kwargs)


def options(model: OpenAIChatModel, **values: Any) -> Any:
    """Options as the daemon makes them: through the registry's validation."""
    return ModelRegistry([model], default=model.id).options(model, values)


async def run(model: OpenAIChatModel, *messages: Message, **kwargs: Any) -> tuple[list[AnyEvent], ModelFailure | None]:
    kwargs.setdefault("options", options(model))
    events: list[AnyEvent] = []
    try:
        async for event in model.stream(ModelRequest(messages=list(messages), **kwargs)):
            events.append(event)
    except ModelFailure as failure:
        return events, failure
    return events, None


def assembled(events: list[AnyEvent]) -> Message:
    """The output message the daemon stores for these events."""
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


# ---- the SSE decoder ---------------------------------------------------------------------


def test_sse_decoder_handles_every_line_ending_and_split():
    stream = (
        b"\xef\xbb\xbf: a comment\r\n"
        b"event: first\r\ndata: one\r\ndata:  two\r\n\r\n"
        b"data: cr only\r\rid: 7\nretry: 1500\ndata: lf\n\n"
        b"data\n\n"
        b'data: {"unterminated": true}'
    )
    whole = SSEDecoder()
    expected = whole.feed(stream) + whole.close()
    assert [(e.event, e.data) for e in expected] == [
        ("first", "one\n two"),
        ("message", "cr only"),
        ("message", "lf"),
        ("message", ""),
        ("message", '{"unterminated": true}'),
    ]
    assert expected[2].id == "7" and expected[2].retry == 1500
    for size in (1, 2, 3, 5, 7):  # every split point, CRLF and the BOM across chunks included
        decoder = SSEDecoder()
        got = []
        for i in range(0, len(stream), size):
            got += decoder.feed(stream[i : i + size])
        got += decoder.close()
        assert [(e.event, e.data, e.id) for e in got] == [(e.event, e.data, e.id) for e in expected]


def test_sse_decoder_keeps_multibyte_characters_split_across_chunks():
    data = sse({"content": "héllo — 日本"})
    decoder = SSEDecoder()
    events = [e for b in data for e in decoder.feed(bytes([b]))]
    assert json.loads(events[0].data) == {"content": "héllo — 日本"}


# ---- streams -------------------------------------------------------------------------------


async def test_text_usage_and_the_request_sent(replay, model):
    usage = {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0, "accepted_prediction_tokens": 0},
    }
    replay.queue(Reply(body=openai_text("The", " capital", " is", " Paris", ".", usage=usage)))
    opts = options(model, temperature=0.2, maxTokens=50, topP=0.9, seed=7, stop=["\n\n"], presencePenalty=0.5)
    events, failure = await run(model, user("Capital of France?"), system="Be brief.", options=opts)
    assert failure is None
    assert [type(e) for e in events] == [TextEvent] * 5 + [UsageEvent]
    assert "".join(e.chunk for e in events) == "The capital is Paris."
    assert events[-1] == UsageEvent(
        input=19, output=10, details={"completion_tokens_details": {"reasoning_tokens": 4}, "stop_reason": "stop"}
    )
    request = replay.requests[0]
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json() == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["\n\n"],
        "presence_penalty": 0.5,
        "max_tokens": 50,
    }


async def test_reasoning_deltas_in_either_field(replay, model):
    # DeepSeek, vLLM and llama.cpp send reasoning_content; OpenRouter and Ollama send reasoning.
    replay.queue(
        Reply(
            body=openai_stream(
                openai_chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
                openai_chunk({"content": None, "reasoning_content": "The user asks"}),
                openai_chunk({"content": None, "reasoning_content": " for 2+2."}),
                openai_chunk({"content": "4", "reasoning_content": None}),
                openai_chunk({}, "stop"),
            )
        ),
        Reply(
            body=openai_stream(
                openai_chunk({"role": "assistant", "content": "", "reasoning": "Hmm"}),
                openai_chunk({"content": "", "reasoning": ", easy."}),
                openai_chunk({"content": "4"}),
                openai_chunk({}, "stop"),
            )
        ),
    )
    for expected in (["The user asks", " for 2+2."], ["Hmm", ", easy."]):
        events, failure = await run(model, user("2+2?"))
        assert failure is None
        assert [e.chunk for e in events if isinstance(e, ReasoningEvent)] == expected
        assert [e.chunk for e in events if isinstance(e, TextEvent)] == ["4"]
        message = assembled(events)
        assert [p.type for p in message.parts] == ["reasoning", "text"]


async def test_parallel_tool_calls_by_index(replay, model):
    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"index": index, **fields}

    replay.queue(
        Reply(
            body=openai_stream(
                openai_chunk({"role": "assistant", "content": None}),
                openai_chunk({"tool_calls": [call(0, id="call_A", type="function", function={"name": "get_weather", "arguments": ""})]}),
                openai_chunk({"tool_calls": [call(0, function={"arguments": '{"ci'})]}),
                openai_chunk({"tool_calls": [call(1, id="call_B", type="function", function={"name": "get_weather", "arguments": ""})]}),
                openai_chunk({"tool_calls": [call(1, function={"arguments": '{"city": "Rome"}'})]}),
                openai_chunk({"tool_calls": [call(0, function={"arguments": 'ty": "Paris"}'})]}),
                openai_chunk({}, "tool_calls"),
                openai_chunk(usage={"prompt_tokens": 80, "completion_tokens": 40, "total_tokens": 120}, choices=False),
            )
        )
    )
    events, failure = await run(model, user("Weather in Paris and Rome?"), tools=[WEATHER], options=options(model, toolChoice="required"))
    assert failure is None
    names = [(e.chunk, e.tool_call_id) for e in events if isinstance(e, ToolCallNameEvent)]
    assert names == [("get_weather", "call_A"), ("get_weather", "call_B")]
    message = assembled(events)
    calls = [(p.tool_call_id, p.name, p.arguments) for p in message.parts if isinstance(p, ToolCallPart)]
    assert calls == [("call_A", "get_weather", {"city": "Paris"}), ("call_B", "get_weather", {"city": "Rome"})]
    assert events[-1] == UsageEvent(input=80, output=40, details={"stop_reason": "tool_calls"})
    body = replay.requests[0].json()
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "The weather in a city", "parameters": WEATHER.input_schema},
        }
    ]
    assert body["tool_choice"] == "required"


async def test_a_name_repeated_in_every_chunk_is_not_concatenated(replay, model):
    # llama-cpp-python repeats id, name (and function_call) in every chunk of a call.
    def piece(arguments: str) -> dict[str, Any]:
        fn = {"name": "get_weather", "arguments": arguments}
        return {
            "role": None,
            "content": None,
            "function_call": fn,
            "tool_calls": [{"index": 0, "id": "call__0_get_weather_cmpl-1", "type": "function", "function": fn}],
        }

    replay.queue(
        Reply(body=openai_stream(*(openai_chunk(piece(a)) for a in ["{", ' "city', '": "Oslo"', " }"]), openai_chunk({}, "tool_calls")))
    )
    events, failure = await run(model, user("Oslo?"), tools=[WEATHER], options=options(model, toolChoice="get_weather"))
    assert failure is None
    assert [e.chunk for e in events if isinstance(e, ToolCallNameEvent)] == ["get_weather"]
    part = assembled(events).parts[0]
    assert isinstance(part, ToolCallPart) and part.name == "get_weather" and part.arguments == {"city": "Oslo"}
    assert replay.requests[0].json()["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


async def test_tool_calls_without_ids_or_index_get_ids(replay, model):
    replay.queue(
        Reply(
            body=openai_stream(
                openai_chunk({"tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Lima"}}}]}),
                openai_chunk({}, "tool_calls"),
            )
        )
    )
    events, failure = await run(model, user("Lima?"), tools=[WEATHER])
    assert failure is None
    name, args = events[0], events[1]
    assert isinstance(name, ToolCallNameEvent) and isinstance(args, ToolCallArgsEvent)
    assert name.tool_call_id.startswith("call_") and args.tool_call_id == name.tool_call_id
    assert json.loads(args.chunk) == {"city": "Lima"}


async def test_a_whole_json_answer_to_a_stream_request(replay, model):
    # Some servers ignore `stream: true` (older Ollama did, with tools).
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi!", "reasoning_content": "greet"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    replay.queue(json_reply(200, completion))
    events, failure = await run(model, user("Hello"))
    assert failure is None
    assert events == [ReasoningEvent(chunk="greet"), TextEvent(chunk="Hi!"), UsageEvent(input=3, output=2, details={"stop_reason": "stop"})]


# ---- the input chain ----------------------------------------------------------------------


async def test_history_attachments_and_what_other_providers_left(replay, model, tmp_path):
    wav = tmp_path / "clip.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 20)
    pdf = base64.b64encode(b"%PDF-1.4 tiny").decode()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8).decode()
    history = [
        Message(role="system", parts=[TextPart(text="Old system note.")]),
        user(
            "Look:",
            attachment(url="https://example.com/cat.jpg"),
            attachment(content=base64.b64decode(png)),
            attachment(path=str(wav)),
            attachment(content=b"%PDF-1.4 tiny", mime_type="application/pdf"),
            attachment(content=b"plain notes", mime_type="text/plain"),
        ),
        Message(
            role="assistant",
            parts=[
                ReasoningPart(text="thinking from Claude", provider_metadata={"anthropic": {"signature": "EqQBCgIYAhIM"}}),
                TextPart(text="Let me check."),
                ToolCallPart(name="web_search", arguments={"query": "cats"}, tool_call_id="srvtoolu_01", server_executed=True),
                ToolResultPart(name="web_search", output="[]", tool_call_id="srvtoolu_01", server_executed=True),
                ToolCallPart(name="get_weather", arguments={"city": "Paris"}, tool_call_id="toolu_01"),
                ToolCallPart(name="get_weather", tool_call_id="call_cut", provider_metadata={"parley": {"partialArguments": '{"ci'}}),
            ],
        ),
        tool_message(tool_result("get_weather", "Sunny", tool_call_id="toolu_01"), tool_result("lost", "42", tool_call_id="call_gone")),
        user("Thanks. And Rome?"),
    ]
    replay.queue(Reply(body=openai_text("Rainy.")))
    _events, failure = await run(model, *history, system="Be brief.")
    assert failure is None
    sent = replay.requests[0].json()["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1] == {"role": "system", "content": "Old system note."}
    assert sent[2] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav.read_bytes()).decode(), "format": "wav"}},
            {"type": "file", "file": {"filename": "attachment.pdf", "file_data": f"data:application/pdf;base64,{pdf}"}},
            {"type": "text", "text": "plain notes"},
        ],
    }
    # reasoning, the server tool and the cut-off call are left out; the answered call goes back
    assert sent[3] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [{"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}],
    }
    assert sent[4] == {"role": "tool", "tool_call_id": "toolu_01", "content": "Sunny"}
    assert sent[5] == {"role": "user", "content": "[result of tool lost]\n42"}
    assert sent[6] == {"role": "user", "content": "Thanks. And Rome?"}
    assert "signature" not in replay.requests[0].body.decode()


async def test_attachments_the_model_does_not_take_are_refused_before_sending(replay):
    from parley._types import ModelCapabilities

    text_only = make(replay.url, capabilities=ModelCapabilities(tools=False, attachments=[]))
    try:
        _events, failure = await run(text_only, user("see", attachment(content=b"\x89PNG\r\n\x1a\n0000")))
        assert failure is not None and failure.kind == "bad_request" and "image/png" in failure.message
        _events, failure = await run(text_only, user("hi"), tools=[WEATHER])
        assert failure is not None and failure.kind == "bad_request"
        _events, failure = await run(text_only, user("see", attachment(path="/nonexistent/cat.png")))
        assert failure is not None and failure.kind == "bad_request" and "/nonexistent/cat.png" in failure.message
        assert replay.requests == []
    finally:
        await text_only.aclose()


async def test_options_are_validated_per_model(replay):
    model = make(replay.url)
    local = make(replay.url, options=["temperature", "maxTokens", "topK", "repeatPenalty", "schema"], schema_format="json_object")
    try:
        with pytest.raises(InvalidParams, match="temperature"):
            options(model, temperature=3)
        with pytest.raises(InvalidParams, match="unknown option `topK`"):
            options(model, topK=40)
        with pytest.raises(InvalidParams, match="unknown option `seed`"):
            options(local, seed=1)
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
        replay.queue(Reply(body=openai_text("{}")), Reply(body=openai_text("{}")))
        await run(model, user("json"), options=options(model, schema=schema))
        await run(local, user("json"), options=options(local, topK=40, repeatPenalty=1.1, schema=schema))
        assert replay.requests[0].json()["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
        second = replay.requests[1].json()
        assert second["response_format"] == {"type": "json_object", "schema": schema}
        assert second["top_k"] == 40 and second["repeat_penalty"] == 1.1
        with pytest.raises(ValueError, match="unknown option 'nope'"):
            make(replay.url, options=["nope"])
    finally:
        await model.aclose()
        await local.aclose()


# ---- failures -----------------------------------------------------------------------------


async def test_auth_failure_never_shows_the_key(replay, model):
    echoed = f"Incorrect API key provided: sk-proj-********************************cdef. You used {KEY}."
    replay.queue(json_reply(401, {"error": {"message": echoed, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}))
    events, failure = await run(model, user("hi"))
    assert events == [] and failure is not None
    assert failure.kind == "auth" and not failure.retryable
    assert KEY not in failure.message and KEY[:10] not in failure.message and "cdef" not in failure.message
    assert "Incorrect API key provided" in failure.message
    assert len(replay.requests) == 1  # not retried


async def test_a_missing_key_and_a_key_that_changes(replay):
    keys = {"now": None}
    model = make(replay.url, api_key=lambda: keys["now"], key_hint="set OPENAI_API_KEY or run `parley keys set openai`")
    try:
        _events, failure = await run(model, user("hi"))
        assert failure is not None and failure.kind == "auth" and "OPENAI_API_KEY" in failure.message
        assert replay.requests == []
        keys["now"] = "sk-new"
        replay.queue(Reply(body=openai_text("ok")))
        _events, failure = await run(model, user("hi"))
        assert failure is None and replay.requests[0].headers["authorization"] == "Bearer sk-new"
        model.set_api_key(None)
        local = make(replay.url, api_key=None)
        replay.queue(Reply(body=openai_text("ok")))
        _events, failure = await run(local, user("hi"))
        assert failure is None and "authorization" not in replay.requests[1].headers
        await local.aclose()
    finally:
        await model.aclose()


async def test_rate_limit_is_retried_after_retry_after(replay, model):
    limited = {"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "code": "rate_limit_exceeded"}}
    replay.queue(json_reply(429, limited, {"retry-after-ms": "150"}), Reply(body=openai_text("ok")))
    started = time.monotonic()
    events, failure = await run(model, user("hi"))
    assert failure is None and events[0] == TextEvent(chunk="ok")
    assert time.monotonic() - started >= 0.15
    assert len(replay.requests) == 2


async def test_rate_limit_that_outlasts_the_retries_reaches_the_client_with_retry_after(replay, model):
    limited = {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}
    replay.queue(*(json_reply(429, limited, {"retry-after": "0"}) for _ in range(3)))
    _events, failure = await run(model, user("hi"))
    assert failure is not None and failure.kind == "rate_limited" and failure.retryable and failure.retry_after == 0
    assert len(replay.requests) == 3  # the first try and two retries
    replay.queue(json_reply(429, limited, {"retry-after": "3600"}))
    _events, failure = await run(model, user("hi"))
    assert failure.kind == "rate_limited" and failure.retry_after == 3600  # too long to wait here
    assert len(replay.requests) == 4
    replay.queue(
        json_reply(
            429, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}
        )
    )
    _events, failure = await run(model, user("hi"))
    assert failure.kind == "rate_limited" and not failure.retryable
    assert len(replay.requests) == 5


@pytest.mark.parametrize(
    ("status", "body", "kind", "tries"),
    [
        (
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
            "context_length",
            1,
        ),
        (
            400,
            {
                "error": {
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                    "code": 400,
                }
            },
            "context_length",
            1,
        ),
        (400, {"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error", "code": None}}, "bad_request", 1),
        (
            404,
            {"error": {"message": "The model `gpt-9` does not exist", "type": "invalid_request_error", "code": "model_not_found"}},
            "bad_request",
            1,
        ),
        (500, {"error": {"message": "The server had an error", "type": "server_error"}}, "provider_error", 3),
        (503, "Service Unavailable", "overloaded", 3),
    ],
)
async def test_error_answers_map_to_kinds(replay, model, status, body, kind, tries):
    replay.queue(*(json_reply(status, body) for _ in range(3)))
    _events, failure = await run(model, user("hi"))
    assert failure is not None and failure.kind == kind, failure.message
    assert len(replay.requests) == tries


async def test_an_error_inside_the_stream(replay, model):
    error = {"error": {"message": "upstream overloaded", "type": "server_error", "code": 503}}
    replay.queue(Reply(body=openai_stream(openai_chunk({"content": "Par"}), error, done=False)))
    events, failure = await run(model, user("hi"))
    assert events == [TextEvent(chunk="Par")]
    assert failure is not None and failure.kind == "overloaded" and "upstream overloaded" in failure.message
    assert len(replay.requests) == 1  # an event was sent: not retried


async def test_a_connection_dropped_mid_stream_ends_the_response(replay, model):
    replay.queue(Reply(body=openai_text("Hello", " there")[:3] + [Drop()]))
    events, failure = await run(model, user("hi"))
    assert [e.chunk for e in events] == ["Hello", " there"]
    assert failure is not None and failure.kind == "network" and failure.retryable
    assert len(replay.requests) == 1
    assert replay.wait_outcomes(1) == ["dropped"]


async def test_a_connection_lost_before_any_event_is_retried(replay, model):
    replay.queue(
        Reply(body=[Reset()]),
        Reply(body=openai_text()[:1] + [Drop()]),  # only the role chunk: nothing to show yet
        Reply(body=openai_text("fine")),
    )
    events, failure = await run(model, user("hi"))
    assert failure is None and [e.chunk for e in events if isinstance(e, TextEvent)] == ["fine"]
    assert len(replay.requests) == 3
    assert replay.wait_outcomes(3) == ["reset", "dropped", "complete"]


async def test_a_stream_that_ends_without_done_or_finish_reason(replay, model):
    replay.queue(Reply(body=openai_stream(openai_chunk({"content": "half"}), done=False)))
    events, failure = await run(model, user("hi"))
    assert events == [TextEvent(chunk="half")]
    assert failure is not None and failure.kind == "network" and "ended before" in failure.message


async def test_malformed_sse(replay, model):
    replay.queue(Reply(body=[sse(openai_chunk({"content": "ok"})), b'data: {"choices": [{"delta": {"content": "bro\n\n']))
    events, failure = await run(model, user("hi"))
    assert events == [TextEvent(chunk="ok")]
    assert failure is not None and failure.kind == "provider_error" and "malformed" in failure.message
    replay.queue(Reply(body=[b"<html>hello</html>\n\n"]), Reply(body=[b"<html>hello</html>\n\n"]), Reply(body=[b"<html>hello</html>\n\n"]))
    events, failure = await run(model, user("hi"))
    assert events == [] and failure is not None and failure.kind == "provider_error"


async def test_a_stalled_stream_hits_the_read_timeout(replay):
    model = make(replay.url, timeouts=Timeouts(read=0.5))
    try:
        replay.queue(Reply(body=openai_text("slow")[:2] + [Stall()]))
        started = time.monotonic()
        events, failure = await run(model, user("hi"))
        assert 0.4 < time.monotonic() - started < 3
        assert events == [TextEvent(chunk="slow")]
        assert failure is not None and failure.kind == "timeout" and "0.5s" in failure.message
        assert replay.wait_outcomes(1) == ["client_closed"]
    finally:
        await model.aclose()


async def test_connection_refused(unused_tcp_port):
    model = OpenAIChatModel("x", base_url=f"http://127.0.0.1:{unused_tcp_port}/v1", retry=FAST)
    try:
        _events, failure = await run(model, user("hi"))
        assert failure is not None and failure.kind == "network" and failure.retryable
        assert f"127.0.0.1:{unused_tcp_port}" in failure.message
    finally:
        await model.aclose()


async def test_cancel_closes_the_upstream_connection(replay, model):
    replay.queue(Reply(body=openai_text("one")[:2] + [Pause(0.05)] + openai_text(*["x"] * 200)[1:]))
    first = asyncio.Event()
    seen: list[AnyEvent] = []

    async def consume() -> None:
        async for event in model.stream(ModelRequest(messages=[user("hi")], options=options(model))):
            seen.append(event)
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await replay.await_outcomes(1, timeout=5) == ["client_closed"]
    assert time.monotonic() - started < 1
    assert len(seen) < 50


async def test_a_finished_stream_leaves_its_connection_in_the_pool(replay, model):
    replay.queue(*(Reply(body=openai_text("again")) for _ in range(3)))
    for _ in range(3):
        _events, failure = await run(model, user("hi"))
        assert failure is None
    assert replay.wait_outcomes(3) == ["complete"] * 3
    assert replay.connections == 1


async def test_models_of_one_endpoint_share_one_pooled_client(replay):
    a, b = make(replay.url), make(replay.url)
    other = make(replay.url, timeouts=Timeouts(read=5))
    assert a.client is b.client and a.client is not other.client
    client = a.client
    await a.aclose()
    assert not client.is_closed
    replay.queue(Reply(body=openai_text("still")))
    _events, failure = await run(b, user("hi"))
    assert failure is None
    await b.aclose()
    assert client.is_closed
    with pytest.raises(RuntimeError):
        b.client  # noqa: B018
    await other.aclose()
    assert repr(make.__name__) and KEY not in repr(other)


# ---- a real peer: llama.cpp's OpenAI-compatible server running SmolLM2 ------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    if importlib.util.find_spec("llama_cpp") is None:
        missing("llama-cpp-python[server] is not installed: pip install 'llama-cpp-python[server]' to run the llama.cpp peer tests")
    gguf = smollm2_gguf()
    if gguf is None:
        missing("the SmolLM2 GGUF is not installed: pip install -e '.[test]'")
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    args = [
        sys.executable, str(Path(__file__).with_name("llama_server.py")),
        "--model", str(gguf), "--model_alias", "smollm2", "--interrupt_requests", "False",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--seed", "0",
    ]  # fmt: skip
    with open(log, "wb") as out:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "protocol"), str(ROOT / "daemon")])}
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the llama.cpp server did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
async def smol(llama_server):
    model = OpenAIChatModel(
        "smol", "smollm2", base_url=llama_server, options=["temperature", "maxTokens", "seed", "topK", "toolChoice", "stop"], retry=FAST
    )
    yield model
    await model.aclose()


def _deterministic(model: OpenAIChatModel, **more: Any) -> Any:
    return options(model, temperature=0, seed=0, **more)


async def test_llama_prompt_streams_a_known_fact(smol):
    events, failure = await run(
        smol, user("What is the capital of France?"), system="You are a helpful assistant.", options=_deterministic(smol, maxTokens=30)
    )
    assert failure is None
    texts = [e for e in events if isinstance(e, TextEvent)]
    assert len(texts) > 2  # streamed in pieces, not one block
    assert "Paris" in "".join(e.chunk for e in texts)
    assert isinstance(events[-1], UsageEvent) and events[-1].details["stop_reason"] in ("stop", "length")
    assert all(isinstance(e, TextEvent) for e in events[:-1])


async def test_llama_multi_turn(smol):
    history = [
        user("My name is Ada. Remember it."),
        assistant("Nice to meet you, Ada!"),
        user("What is my name?"),
    ]
    events, failure = await run(smol, *history, system="You are a helpful assistant.", options=_deterministic(smol, maxTokens=30))
    assert failure is None
    message = assembled(events)
    assert message.role == "assistant" and [p.type for p in message.parts] == ["text"]
    assert message.parts[0].text.strip()


async def test_llama_forced_tool_call_and_its_result(smol):
    events, failure = await run(
        smol, user("What is the weather in Paris?"), tools=[WEATHER], options=_deterministic(smol, maxTokens=40, toolChoice="get_weather")
    )
    assert failure is None
    names = [e for e in events if isinstance(e, ToolCallNameEvent)]
    assert [e.chunk for e in names] == ["get_weather"]  # the server repeats it in every chunk
    assert len([e for e in events if isinstance(e, ToolCallArgsEvent)]) > 1
    message = assembled(events)
    call = message.parts[0]
    assert isinstance(call, ToolCallPart) and call.name == "get_weather" and isinstance(call.arguments, dict)
    assert "city" in call.arguments
    assert events[-1].details["stop_reason"] == "tool_calls"
    # the next turn: the call and its result go back; the model answers in text
    history = [
        user("What is the weather in Paris?"),
        message,
        tool_message(tool_result("get_weather", "Sunny, 22 C", tool_call_id=call.tool_call_id)),
    ]
    events, failure = await run(
        smol, *history, tools=[WEATHER], system="You are a helpful assistant.", options=_deterministic(smol, maxTokens=30)
    )
    assert failure is None
    assert any(isinstance(e, TextEvent) and e.chunk for e in events)


async def test_llama_cancel_mid_stream_frees_the_server(smol):
    seen: list[AnyEvent] = []
    three = asyncio.Event()

    async def long_answer() -> None:
        async for event in smol.stream(
            ModelRequest(messages=[user("Write a very long story about a dragon.")], options=_deterministic(smol, maxTokens=1500))
        ):
            seen.append(event)
            if len(seen) == 3:
                three.set()

    task = asyncio.create_task(long_answer())
    await asyncio.wait_for(three.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The server stops generating once it sees the disconnect, so the next prompt is served
    # at once (about 1.5 s on a 2-core VM) rather than after the rest of the 1500 tokens
    # (about 55 s there): the cancel closed the upstream connection.
    started = time.monotonic()
    events, failure = await run(smol, user("Say hi."), options=_deterministic(smol, maxTokens=5))
    assert failure is None and any(isinstance(e, TextEvent) for e in events)
    assert time.monotonic() - started < 10
    assert len([e for e in seen if isinstance(e, TextEvent)]) < 100


async def test_llama_two_concurrent_streams(smol):
    async def ask(question: str) -> list[AnyEvent]:
        events, failure = await run(smol, user(question), system="You are a helpful assistant.", options=_deterministic(smol, maxTokens=25))
        assert failure is None
        return events

    first, second = await asyncio.gather(ask("What is the capital of France?"), ask("Name a color."))
    for events in (first, second):
        assert any(isinstance(e, TextEvent) for e in events)
        assert isinstance(events[-1], UsageEvent)
    assert "Paris" in "".join(e.chunk for e in first)
