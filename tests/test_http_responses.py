"""OpenAI's Responses API on the HTTP front door, used by the official ``openai`` SDK.

A real daemon serves HTTP on 127.0.0.1; the SDK talks to it with strict response
validation and no retries, against the echo model and its scripts. Raw httpx checks the
stream's framing, which the SDK does not: event names, numbering, every item closed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import httpx
import pytest

from conftest import missing
from rpc import echo_script

if importlib.util.find_spec("openai") is None or importlib.util.find_spec("uvicorn") is None:
    missing("the HTTP front door tests need pip install -e '.[test]' (openai, starlette, uvicorn)")

import openai  # noqa: E402
import parley  # noqa: E402


@pytest.fixture
def client(http_daemon):
    with openai.OpenAI(base_url=http_daemon.http_url + "/v1", api_key=http_daemon.token, max_retries=0, _strict_response_validation=True) as client:
        yield client


def conversations(http_daemon) -> list[tuple[int, list[str]]]:
    """Each stored conversation as parley's own clients see it: its response count and messages (role: text)."""
    with parley.connect(f"unix://{http_daemon.socket}") as parley_client:
        return [
            (summary.response_count, [f"{m.role}: {parley.text_of(m)}" for m in parley_client.conversation(summary.id).messages])
            for summary in parley_client.conversations()
        ]


WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": False}
TIME = {"type": "function", "name": "get_time", "parameters": None, "strict": False}
THINK_SAY_CALL = echo_script(
    {"type": "reasoning", "chunk": "The user "},
    {"type": "reasoning", "chunk": "wants weather."},
    {"type": "text", "chunk": "Let me "},
    {"type": "text", "chunk": "look."},
    {"type": "tool_call_name", "toolCallId": "call_1", "chunk": "get_weather"},
    {"type": "tool_call_args", "toolCallId": "call_1", "chunk": '{"city": '},
    {"type": "tool_call_args", "toolCallId": "call_1", "chunk": '"Paris"}'},
    {"type": "usage", "input": 7, "output": 5},
)


def test_a_response_its_text_and_usage(client):
    response = client.responses.create(model="echo", input="Hello there", instructions="be brief")
    assert response.object == "response" and response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == "Hello there" and response.model == "echo" and response.instructions == "be brief"
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert [c.text for c in message.content] == ["Hello there"]
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (2, 2, 4)
    assert response.usage.input_tokens_details.cached_tokens == 0 and response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.error is None and response.incomplete_details is None and response.tools == []
    # items in: a developer message, and a user message of text parts
    items = [{"role": "developer", "content": "answer in kind"}, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one "}, {"type": "input_text", "text": "two"}]}]
    assert client.responses.create(model="echo", input=items, metadata={"run": "7"}).output_text == "one two"


def test_a_stream_of_reasoning_text_and_a_function_call(client):
    with client.responses.stream(model="echo", input=THINK_SAY_CALL, tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert kinds.count("response.reasoning_text.delta") == 2 and kinds.count("response.output_text.delta") == 2
    assert kinds.count("response.function_call_arguments.delta") == 2
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]
    reasoning, message, call = final.output
    assert [c.text for c in reasoning.content] == ["The user wants weather."] and reasoning.summary == []
    assert final.output_text == "Let me look." and message.status == "completed"
    assert (call.call_id, call.name, call.arguments, call.status) == ("call_1", "get_weather", '{"city": "Paris"}', "completed")
    assert final.status == "completed" and final.usage.output_tokens == 5 and final.tools[0].name == "get_weather"
    assert [t.name for t in client.responses.retrieve(final.id).tools] == ["get_weather"], "the store keeps a response's tools"
    # the same response, not streamed, and retrieved: the same items, ids included
    answered = client.responses.create(model="echo", input=THINK_SAY_CALL, tools=[WEATHER])
    assert [item.type for item in answered.output] == ["reasoning", "message", "function_call"]
    assert json.loads(answered.output[2].arguments) == {"city": "Paris"}
    retrieved = client.responses.retrieve(final.id)
    assert [item.id for item in retrieved.output] == [item.id for item in final.output]
    assert retrieved.output_text == "Let me look." and retrieved.output[0].content[0].text == "The user wants weather."


def test_a_function_call_round_trip_through_previous_response_id(client, http_daemon):
    first = client.responses.create(model="echo", input=THINK_SAY_CALL, tools=[WEATHER, TIME], tool_choice="auto")
    [call] = [item for item in first.output if item.type == "function_call"]
    results = [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    second = client.responses.create(model="echo", previous_response_id=first.id, input=results, tools=[WEATHER, TIME])
    assert second.output_text == "get_weather: sunny", "the result went back with its call's name"
    assert second.previous_response_id == first.id and second.status == "completed"
    [(count, messages)] = conversations(http_daemon)
    assert count == 2 and messages[0] == f"user: {THINK_SAY_CALL}"
    assert messages[2:] == ["tool: ", "assistant: get_weather: sunny"]


def test_a_chain_of_previous_response_ids_is_one_conversation(client, http_daemon):
    previous = None
    for turn in range(3):
        response = client.responses.create(model="echo", input=f"turn {turn}", previous_response_id=previous, instructions="be brief")
        assert response.output_text == f"turn {turn}"
        previous = response.id
    [(count, messages)] = conversations(http_daemon)
    assert count == 3
    assert messages == ["user: turn 0", "assistant: turn 0", "user: turn 1", "assistant: turn 1", "user: turn 2", "assistant: turn 2"]
    assert client.responses.retrieve(previous).instructions == "be brief", "a reply keeps its chain's system prompt"


def test_a_replayed_input_is_one_conversation_of_unique_messages(client, http_daemon):
    history: list = []
    for turn in range(5):
        history.append({"role": "user", "content": f"turn {turn}"})
        response = client.responses.create(model="echo", input=history)
        assert response.output_text == f"turn {turn}"
        history += [item.model_dump(exclude_none=True) for item in response.output]  # as a client carries its output on
    [(count, messages)] = conversations(http_daemon)
    assert count == 5
    assert messages == [f"{role}: turn {turn}" for turn in range(5) for role in ("user", "assistant")]


def test_retrieve_list_input_items_and_delete(client, http_daemon):
    picture = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}
    first = client.responses.create(model="echo", input=[{"role": "user", "content": [{"type": "input_text", "text": "What is this?"}, picture]}])
    assert first.output_text == "What is this?"
    second = client.responses.create(model="echo", input="And this?", previous_response_id=first.id)
    retrieved = client.responses.retrieve(second.id)
    assert (retrieved.id, retrieved.status, retrieved.output_text, retrieved.usage.output_tokens) == (second.id, "completed", "And this?", 2)
    assert retrieved.created_at == second.created_at and retrieved.output[0].id == second.output[0].id
    # its input: the whole history, newest first by default
    page = client.responses.input_items.list(second.id)
    assert [item.type for item in page.data] == ["message", "message", "message"] and page.has_more is False
    newest, answer, oldest = page.data
    assert (newest.role, newest.content[0].text) == ("user", "And this?")
    assert (answer.role, answer.content[0].text) == ("assistant", "What is this?")
    assert [c.type for c in oldest.content] == ["input_text", "input_image"] and oldest.content[1].image_url == picture["image_url"]
    assert page.first_id == newest.id and page.last_id == oldest.id
    ascending = client.responses.input_items.list(second.id, order="asc")
    assert [item.id for item in ascending.data] == [oldest.id, answer.id, newest.id]
    one_by_one = client.responses.input_items.list(second.id, limit=1)
    assert len(one_by_one.data) == 1 and one_by_one.has_more is True
    assert [item.id for item in one_by_one] == [newest.id, answer.id, oldest.id], "the SDK pages on with `after`"
    # deleting: the response goes, its conversation stays with the first
    assert client.responses.delete(second.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="echo", input="more", previous_response_id=second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(second.id)
    [(count, messages)] = conversations(http_daemon)
    assert count == 1 and messages == ["user: What is this?", "assistant: What is this?"]
    client.responses.delete(first.id)
    assert conversations(http_daemon) == [], "its last response gone, the conversation goes"


def test_errors_come_in_openais_envelope(client, http_daemon):
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-9", input="hi")
    assert "gpt-9" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="echo", input="hi", previous_response_id="resp_nope")
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_nope")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="echo", input="hi", tools=[{"type": "web_search"}])
    assert "not served" in caught.value.message and caught.value.code == "unsupported"
    with pytest.raises(openai.BadRequestError, match="item_reference"):
        client.responses.create(model="echo", input=[{"type": "item_reference", "id": "msg_1"}])
    # the daemon holds the answer to the schema: a failure after output is a failed response
    failed = client.responses.create(model="echo", input="hi", text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}})
    assert failed.status == "failed" and failed.error.code == "server_error" and "not JSON" in failed.error.message  # the API's codes are a closed list
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="echo", input="hi", temperature=0.5)  # echo takes no options
    with pytest.raises(openai.BadRequestError, match="input"):
        client.responses.create(model="echo", input=[])
    script = echo_script({"type": "error", "code": "rate_limited", "message": "slow down", "retryAfter": 2})
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="echo", input=script)
    assert caught.value.response.headers["retry-after"] == "2"
    for body in (b'{"model": "echo", "input": 42}', b'{"model": "echo"}', b"{not json"):
        bad = httpx.post(http_daemon.http_url + "/v1/responses", headers={"x-api-key": http_daemon.token}, content=body)
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error", body


def test_a_failure_mid_stream_ends_with_response_failed(client):
    script = echo_script({"type": "text", "chunk": "partial"}, {"type": "error", "code": "network", "message": "upstream dropped"})
    events = list(client.responses.create(model="echo", input=script, stream=True))
    assert [e.type for e in events[-3:]] == ["response.content_part.done", "response.output_item.done", "response.failed"]
    assert events[-2].item.status == "incomplete"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error" and failed.error.message == "upstream dropped"
    assert failed.output_text == "partial"
    # not streamed: the response object, failed, with what it made
    answered = client.responses.create(model="echo", input=script)
    assert (answered.status, answered.error.message, answered.output_text) == ("failed", "upstream dropped", "partial")
    assert client.responses.retrieve(answered.id).status == "failed"


def test_a_token_limit_ends_with_response_incomplete(client):
    script = echo_script({"type": "text", "chunk": "cut"}, {"type": "usage", "input": 1, "output": 1, "details": {"stop_reason": "length"}})
    events = list(client.responses.create(model="echo", input=script, stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.status == "incomplete" and events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert client.responses.retrieve(events[-1].response.id).status == "incomplete"


async def test_a_client_that_disconnects_mid_stream_cancels_the_response(client, http_daemon):
    chunks = [{"type": "text", "chunk": f"{i} ", "delayMs": 50} for i in range(100)]
    body = {"model": "echo", "input": echo_script(*chunks), "stream": True}
    async with httpx.AsyncClient() as http:
        async with http.stream("POST", http_daemon.http_url + "/v1/responses", headers={"x-api-key": http_daemon.token}, json=body) as response:
            deltas = 0
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    response_id = data["response"]["id"] if data["type"] == "response.created" else response_id
                    deltas += data["type"] == "response.output_text.delta"
                    if deltas == 3:
                        running = client.responses.retrieve(response_id)  # while it streams
                        break  # and close the connection
    assert running.status == "in_progress" and running.output[0].status == "in_progress"
    assert running.output_text.startswith("0 1 2 ")
    for _ in range(100):
        retrieved = client.responses.retrieve(response_id)
        if retrieved.status != "in_progress":
            break
        await asyncio.sleep(0.05)
    assert retrieved.status == "cancelled" and retrieved.error is None
    assert retrieved.output_text.startswith("0 1 2 ") and retrieved.output[-1].status == "incomplete"


def sse(response: httpx.Response) -> list[tuple[str, dict]]:
    """A stream's events as (the `event:` line's name, the data), checking each block's form."""
    events = []
    for block in response.text.split("\n\n"):
        if block:
            name, data = block.split("\n")
            assert name.startswith("event: ") and data.startswith("data: "), block
            events.append((name[7:], json.loads(data[6:])))
    return events


def test_the_streams_framing_without_the_sdk(http_daemon):
    script = echo_script(
        {"type": "reasoning", "chunk": "hmm"},
        {"type": "text", "chunk": "Two calls."},
        {"type": "tool_call_name", "toolCallId": "call_1", "chunk": "get_weather"},
        {"type": "tool_call_name", "toolCallId": "call_2", "chunk": "get_time"},
        {"type": "tool_call_args", "toolCallId": "call_1", "chunk": '{"city": '},
        {"type": "tool_call_args", "toolCallId": "call_2", "chunk": "{}"},
        {"type": "tool_call_args", "toolCallId": "call_1", "chunk": '"Oslo"}'},
        {"type": "tool_call_name", "toolCallId": "srv_1", "chunk": "web_search", "serverExecuted": True},
        {"type": "tool_call_args", "toolCallId": "srv_1", "chunk": "{}"},
    )
    body = {"model": "echo", "input": script, "stream": True, "tools": [WEATHER, TIME]}
    response = httpx.post(http_daemon.http_url + "/v1/responses", headers={"x-api-key": http_daemon.token}, json=body)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse(response)
    assert all(name == data["type"] for name, data in events), "each event is named by its type"
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    kinds = [name for name, _ in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert kinds.count("response.created") == kinds.count("response.completed") == 1
    assert events[0][1]["response"]["status"] == "in_progress" and events[0][1]["response"]["output"] == []
    # every item added once, at the next output_index, and done before the end; its deltas between
    open_items: dict[int, str] = {}
    done: list[dict] = []
    parts: set[tuple[int, int]] = set()
    for name, data in events[2:-1]:
        if name == "response.output_item.added":
            assert data["output_index"] == len(done) + len(open_items) and data["item"]["status"] == "in_progress"
            open_items[data["output_index"]] = data["item"]["id"]
        elif name == "response.output_item.done":
            assert open_items.pop(data["output_index"]) == data["item"]["id"]
            assert (data["output_index"], 0) not in parts, "its content part was done first"
            done.append(data["item"])
        elif name == "response.content_part.added":
            parts.add((data["output_index"], data["content_index"]))
        elif name == "response.content_part.done":
            parts.remove((data["output_index"], data["content_index"]))
        else:
            assert open_items.get(data["output_index"]) == data["item_id"], f"{name} outside its item"
    assert open_items == {} and parts == set()
    assert [(item["type"], item.get("name")) for item in done] == [
        ("reasoning", None), ("message", None), ("function_call", "get_weather"), ("function_call", "get_time")
    ], "the provider's own call is left out"
    arguments = {data["item_id"]: data["arguments"] for name, data in events if name == "response.function_call_arguments.done"}
    deltas: dict[str, str] = {}
    for name, data in events:
        if name == "response.function_call_arguments.delta":
            deltas[data["item_id"]] = deltas.get(data["item_id"], "") + data["delta"]
    assert arguments == deltas and sorted(arguments.values()) == ['{"city": "Oslo"}', "{}"]
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["output"] == done, "the final output is the items as they were done"
