"""Anthropic's Messages API at the front door (``/v1/messages``), used by the official ``anthropic`` SDK.

A real daemon serves HTTP on 127.0.0.1; the SDK talks to it with strict response validation
and no retries, as Claude Code or an application would, against the echo model (its scripts
stand in for a provider's reasoning, signatures, tool calls and failures). Raw httpx checks
what the SDK does not: the framing of the stream, the envelopes, x-api-key.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import httpx
import pytest

from conftest import missing
from rpc import echo_script, only_response_settled

if importlib.util.find_spec("anthropic") is None or importlib.util.find_spec("uvicorn") is None:
    missing("the HTTP front door tests need pip install -e '.[test]' (anthropic, starlette, uvicorn)")

import anthropic  # noqa: E402
import parley  # noqa: E402


@pytest.fixture
def client(http_daemon):
    with anthropic.Anthropic(base_url=http_daemon.http_url, api_key=http_daemon.token, max_retries=0, _strict_response_validation=True) as client:
        yield client


def user(content) -> dict:
    return {"role": "user", "content": content}


WEATHER = {"name": "get_weather", "description": "The weather in a city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
THINK_THEN_CALL = echo_script(
    {"type": "reasoning", "chunk": "The user "},
    {"type": "reasoning", "chunk": "wants the weather."},
    {"type": "reasoning", "chunk": "", "providerMetadata": {"anthropic": {"signature": "sig-abc"}}},
    {"type": "text", "chunk": "Let me "},
    {"type": "text", "chunk": "look."},
    {"type": "tool_call_name", "toolCallId": "toolu_1", "chunk": "get_weather"},
    {"type": "tool_call_args", "toolCallId": "toolu_1", "chunk": '{"city": '},
    {"type": "tool_call_args", "toolCallId": "toolu_1", "chunk": '"Paris"}'},
    {"type": "usage", "input": 5, "output": 9},
)
#: Parallel calls whose chunks interleave, text between the chunks of one, and a call the provider ran itself.
INTERLEAVED = echo_script(
    {"type": "reasoning", "chunk": "Unsigned thought."},
    {"type": "text", "chunk": "Looking."},
    {"type": "tool_call_name", "toolCallId": "srvtoolu_1", "chunk": "web_search", "serverExecuted": True},
    {"type": "tool_call_args", "toolCallId": "srvtoolu_1", "chunk": '{"query": "paris"}'},
    {"type": "tool_result", "toolCallId": "srvtoolu_1", "name": "web_search", "output": "[]", "serverExecuted": True},
    {"type": "tool_call_name", "toolCallId": "toolu_1", "chunk": "get_"},
    {"type": "tool_call_name", "toolCallId": "toolu_1", "chunk": "weather"},
    {"type": "tool_call_name", "toolCallId": "toolu_2", "chunk": "get_time"},
    {"type": "tool_call_args", "toolCallId": "toolu_1", "chunk": '{"city": '},
    {"type": "tool_call_args", "toolCallId": "toolu_2", "chunk": "{}"},
    {"type": "text", "chunk": " (checking)"},
    {"type": "tool_call_args", "toolCallId": "toolu_1", "chunk": '"Paris"}'},
)


def test_a_message_its_usage_and_stop_reason(client):
    message = client.messages.create(
        model="echo", max_tokens=1024, system="be brief", messages=[user("Hello there")], thinking={"type": "enabled", "budget_tokens": 2048}
    )
    assert [(b.type, b.text) for b in message.content] == [("text", "Hello there")]
    assert message.id.startswith("msg_resp_") and message.model == "echo" and message.role == "assistant"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 2)
    script = echo_script({"type": "text", "chunk": "cut"}, {"type": "usage", "input": 7, "output": 1, "details": {"stop_reason": "length"}})
    cut = client.messages.create(model="echo", max_tokens=1, messages=[user(script)])
    assert cut.stop_reason == "max_tokens" and (cut.usage.input_tokens, cut.usage.output_tokens) == (7, 1)


def test_a_stream_of_reasoning_text_and_a_tool_call(client):
    with client.messages.stream(model="echo", max_tokens=1024, messages=[user(THINK_THEN_CALL)], tools=[WEATHER]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Let me look."
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    thinking, said, call = final.content
    assert thinking.thinking == "The user wants the weather." and thinking.signature == "sig-abc"
    assert said.text == "Let me look."
    assert (call.id, call.name, call.input) == ("toolu_1", "get_weather", {"city": "Paris"})
    assert final.stop_reason == "tool_use" and final.id.startswith("msg_resp_")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 9), "the counts come with message_delta"
    # the same answer, not streamed
    whole = client.messages.create(model="echo", max_tokens=1024, messages=[user(THINK_THEN_CALL)], tools=[WEATHER])
    assert [b.model_dump() for b in whole.content] == [b.model_dump() for b in final.content]
    # interleaved parallel calls come whole, each in its own block; the provider's own call not at all
    with client.messages.stream(model="echo", max_tokens=1024, messages=[user(INTERLEAVED)], tools=[WEATHER, TIME]) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use", "text"]
    assert final.content[0].thinking == "Unsigned thought." and final.content[0].signature == "", "no signature: none is made up"
    assert [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"] == [("toolu_1", "get_weather", {"city": "Paris"}), ("toolu_2", "get_time", {})]
    assert final.content[4].text == " (checking)" and final.stop_reason == "tool_use"
    whole = client.messages.create(model="echo", max_tokens=1024, messages=[user(INTERLEAVED)], tools=[WEATHER, TIME])
    assert [b.model_dump() for b in whole.content] == [b.model_dump() for b in final.content]


def test_tool_results_go_back_and_continue_the_conversation(client, http_daemon):
    script = echo_script(
        {"type": "tool_call_name", "toolCallId": "toolu_1", "chunk": "get_weather"},
        {"type": "tool_call_args", "toolCallId": "toolu_1", "chunk": '{"city": "Paris"}'},
        {"type": "tool_call_name", "toolCallId": "toolu_2", "chunk": "get_time"},
    )
    first = client.messages.create(model="echo", max_tokens=1024, messages=[user(script)], tools=[WEATHER, TIME], tool_choice={"type": "auto"})
    assert first.stop_reason == "tool_use" and [b.name for b in first.content] == ["get_weather", "get_time"]
    turn = {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]}
    results = [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "clock broke"}], "is_error": True},
    ]
    answer = client.messages.create(model="echo", max_tokens=1024, messages=[user(script), turn, user(results)], tools=[WEATHER, TIME])
    assert [b.text for b in answer.content] == ["get_weather: sunny\nget_time: clock broke"] and answer.stop_reason == "end_turn"
    # results and text in one user turn: a tool message, then a user message
    mixed = client.messages.create(model="echo", max_tokens=1024, messages=[user(script), turn, user([*results, {"type": "text", "text": "and now?"}])], tools=[WEATHER, TIME])
    assert mixed.content[0].text == "and now?"
    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        branched, replied = parley_client.conversations()  # the latest first
        assert replied.response_count == 2, "the reply with the results continued the conversation of the calls"
        assert branched.response_count == 1, "the mixed turn departs from it after the calls: a new conversation"
        replied_messages = parley_client.conversation(replied.id).messages
        branched_messages = parley_client.conversation(branched.id).messages
    assert [m.role for m in replied_messages] == ["user", "assistant", "tool", "assistant"]
    assert [m.role for m in branched_messages] == ["user", "assistant", "tool", "user", "assistant"]
    stored = replied_messages[2].parts
    assert [(p.name, p.output, p.exception, p.tool_call_id) for p in stored] == [("get_weather", "sunny", None, "toolu_1"), ("get_time", "", "clock broke", "toolu_2")]


def test_an_output_format_holds_the_answer_to_a_schema(client):
    fmt = {"type": "json_schema", "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}
    answer = client.messages.create(model="echo", max_tokens=64, messages=[user('{"name": "Ada"}')], output_config={"format": fmt})
    assert json.loads(answer.content[0].text) == {"name": "Ada"}
    with pytest.raises(anthropic.APIStatusError) as caught:  # the daemon holds the answer to the schema: "hi" is not JSON
        client.messages.create(model="echo", max_tokens=64, messages=[user("hi")], output_config={"format": fmt})
    assert "not JSON" in caught.value.api_message and caught.value.status_code == 502


def test_reasoning_images_and_documents_go_in(client, http_daemon):
    history = [
        user("Hi"),
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "A greeting.", "signature": "sig-xyz"}, {"type": "redacted_thinking", "data": "opaque"}, {"type": "text", "text": "Hello!"}]},
        user([
            {"type": "text", "text": "What are these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
        ]),
    ]
    answer = client.messages.create(model="echo", max_tokens=1024, system=[{"type": "text", "text": "You are terse."}], messages=history)
    assert answer.content[0].text == "What are these?"
    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        [conversation] = parley_client.conversations()
        said, thought, asked, _ = parley_client.conversation(conversation.id).messages
    assert [p.type for p in thought.parts] == ["reasoning", "reasoning", "text"]
    assert thought.parts[0].provider_metadata == {"anthropic": {"signature": "sig-xyz"}}, "kept as parley's Anthropic provider keeps it"
    assert thought.parts[1].redacted and thought.parts[1].provider_metadata == {"anthropic": {"redactedData": "opaque"}}
    pictures = [p.attachment for p in asked.parts[1:]]
    assert [(a.mime_type, a.content, a.url) for a in pictures] == [("image/png", "iVBORw0KGgo=", None), (None, None, "https://example.com/cat.png"), ("text/plain", "bm90ZXM=", None)]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="echo", max_tokens=1024, messages=[user([{"type": "image", "source": {"type": "file", "file_id": "file_1"}}])])
    assert "not served" in caught.value.api_message


def test_count_tokens_is_what_the_model_counts(client):
    history = [user("one two three"), {"role": "assistant", "content": "four five"}, user([{"type": "text", "text": "six"}])]
    counted = client.messages.count_tokens(model="echo", messages=history, system="not read by echo", tools=[WEATHER])
    used = client.messages.create(model="echo", max_tokens=1024, messages=history, system="not read by echo", tools=[WEATHER]).usage.input_tokens
    assert counted.input_tokens == used == 6
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="claude-9", messages=history)


def test_both_auth_headers_and_a_wrong_token(http_daemon):
    url, token = http_daemon.http_url, http_daemon.token
    with anthropic.Anthropic(base_url=url, auth_token=token, max_retries=0, _strict_response_validation=True) as bearer:
        assert bearer.messages.create(model="echo", max_tokens=16, messages=[user("hi")]).content[0].text == "hi"
    answer = httpx.post(url + "/v1/messages", headers={"x-api-key": token, "anthropic-version": "2023-06-01"}, json={"model": "echo", "max_tokens": 16, "messages": [user("hi")]})
    assert answer.status_code == 200 and answer.json()["content"] == [{"type": "text", "text": "hi"}]
    with anthropic.Anthropic(base_url=url, api_key="wrong", max_retries=0) as stranger:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            stranger.messages.create(model="echo", max_tokens=16, messages=[user("hi")])
        assert caught.value.type == "authentication_error"
        with pytest.raises(anthropic.AuthenticationError) as caught:
            stranger.models.list()
        assert caught.value.body == {"type": "error", "error": {"type": "authentication_error", "message": caught.value.api_message}}, "Anthropic's envelope on the models path too"


def test_models_in_anthropics_shape(client, http_daemon):
    models = list(client.models.list())
    assert "echo" in [m.id for m in models] and all(m.type == "model" for m in models)
    echo = client.models.retrieve("echo")
    assert (echo.id, echo.display_name, echo.created_at.year) == ("echo", "echo", 1970)
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.type == "not_found_error" and "no-such-model" in caught.value.api_message
    auth = {"x-api-key": http_daemon.token}
    listed = httpx.get(http_daemon.http_url + "/v1/models", headers={**auth, "anthropic-version": "2023-06-01"}).json()
    assert listed["has_more"] is False and listed["first_id"] == listed["data"][0]["id"] and listed["last_id"] == listed["data"][-1]["id"]
    assert httpx.get(http_daemon.http_url + "/v1/models", headers=auth).json()["object"] == "list", "without the header: OpenAI's shape"


def test_errors_come_in_anthropics_envelope(client):
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="claude-9", max_tokens=16, messages=[user("hi")])
    assert "claude-9" in caught.value.api_message and caught.value.type == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="echo", max_tokens=16, messages=[user("hi")], stop_sequences=["x"])  # echo takes no options
    assert caught.value.type == "invalid_request_error" and "stop" in caught.value.api_message
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="echo", max_tokens=16, messages=[user("hi")], extra_body={"temperature": 0.5})  # as older SDKs send it
    assert "temperature" in caught.value.api_message
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="echo", max_tokens=16, messages=[{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "y"}]}])
    script = echo_script({"type": "error", "code": "rate_limited", "message": "slow down", "retryable": True, "retryAfter": 2})
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="echo", max_tokens=16, messages=[user(script)])
    assert caught.value.response.headers["retry-after"] == "2" and caught.value.api_message == "slow down"
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(model="echo", max_tokens=16, messages=[user(echo_script({"type": "error", "code": "overloaded", "message": "busy"}))])
    assert caught.value.status_code == 529 and caught.value.type == "overloaded_error"
    script = echo_script({"type": "text", "chunk": "partial"}, {"type": "error", "code": "network", "message": "upstream dropped"})
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(model="echo", max_tokens=16, messages=[user(script)]) as stream:
            list(stream)
    assert caught.value.api_message == "upstream dropped" and caught.value.type == "api_error"
    with pytest.raises(anthropic.APIStatusError) as caught:  # not streamed: the failure's status, output or not
        client.messages.create(model="echo", max_tokens=16, messages=[user(script)])
    assert caught.value.status_code == 502 and caught.value.api_message == "upstream dropped"


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a stream, checking each frame is an ``event:`` line and a ``data:`` line."""
    frames = response.read().decode().split("\n\n")
    assert frames[-1] == "", "the stream ends with a whole frame"
    events = []
    for frame in frames[:-1]:
        name, data = frame.split("\n")
        assert name.startswith("event: ") and data.startswith("data: "), frame
        events.append((name[7:], json.loads(data[6:])))
    return events


def test_the_stream_framing_without_the_sdk(http_daemon):
    headers = {"x-api-key": http_daemon.token, "anthropic-version": "2023-06-01"}
    for script in (THINK_THEN_CALL, INTERLEAVED):
        body = {"model": "echo", "max_tokens": 1024, "stream": True, "messages": [user(script)], "tools": [WEATHER, TIME]}
        with httpx.stream("POST", http_daemon.http_url + "/v1/messages", headers=headers, json=body) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
        assert all(name == data["type"] for name, data in events), "each event line names its data's type"
        names = [name for name, _ in events]
        assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
        start = events[0][1]["message"]
        assert start["content"] == [] and start["stop_reason"] is None and start["id"].startswith("msg_resp_") and start["usage"] == {"input_tokens": 0, "output_tokens": 0}
        assert events[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
        assert events[-2][1]["usage"] == ({"input_tokens": 5, "output_tokens": 9} if script is THINK_THEN_CALL else {"input_tokens": 0, "output_tokens": 0})
        # blocks one at a time, their indices 0, 1, 2…; a thinking block's last delta is its one signature
        open_block, next_index, kinds = None, 0, []
        for name, data in events[1:-2]:
            if name == "content_block_start":
                assert open_block is None and data["index"] == next_index
                open_block, deltas = data, []
                kinds.append(data["content_block"]["type"])
            else:
                assert open_block is not None and data["index"] == open_block["index"], (name, data)
                if name == "content_block_delta":
                    deltas.append(data["delta"]["type"])
                else:
                    assert name == "content_block_stop"
                    if open_block["content_block"]["type"] == "thinking":
                        assert deltas.count("signature_delta") == 1 and deltas[-1] == "signature_delta"
                    open_block, next_index = None, next_index + 1
        assert open_block is None
        assert kinds == (["thinking", "text", "tool_use"] if script is THINK_THEN_CALL else ["thinking", "text", "tool_use", "tool_use", "text"])
    assert httpx.post(http_daemon.http_url + "/v1/messages", headers=headers, content=b"{not json").json()["error"]["type"] == "invalid_request_error"
    unknown = httpx.post(http_daemon.http_url + "/messages", headers=headers, json={"model": "echo", "max_tokens": 1, "messages": [user([{"type": "audio"}])]})
    assert unknown.status_code == 400 and unknown.json()["type"] == "error", "no /v1, and a block parley does not know"


def test_a_replayed_conversation_through_the_sdk_is_one_conversation(client, http_daemon):
    history = []
    for turn in range(5):
        history.append(user([{"type": "text", "text": f"turn {turn}"}]))
        answer = client.messages.create(model="echo", max_tokens=1024, messages=history)
        history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in answer.content]})
    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        [conversation] = parley_client.conversations()
        assert conversation.response_count == 5
        stored = [m.parts[0].text for m in parley_client.conversation(conversation.id).messages]
    assert stored == [m["content"][0]["text"] for m in history] and len(stored) == 10


async def test_a_client_that_disconnects_mid_stream_cancels_the_response(http_daemon):
    chunks = [{"type": "text", "chunk": f"{i} ", "delayMs": 50} for i in range(100)]
    body = {"model": "echo", "max_tokens": 1024, "messages": [user(echo_script(*chunks))], "stream": True}
    async with httpx.AsyncClient() as http:
        async with http.stream("POST", http_daemon.http_url + "/v1/messages", headers={"x-api-key": http_daemon.token}, json=body) as response:
            deltas = 0
            async for line in response.aiter_lines():
                deltas += line == "event: content_block_delta"
                if deltas == 3:
                    break  # and close the connection
    record = await only_response_settled(http_daemon)
    assert record["status"] == "cancelled"
    assert record["messages"][0]["parts"][0]["text"].startswith("0 1 2 ")
    assert len(record["messages"][0]["parts"][0]["text"].split()) < 100
