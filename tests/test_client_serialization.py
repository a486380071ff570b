"""Response.to_dict / from_dict: the exact shapes of llm's ResponseDict, round-tripped. No daemon."""

from __future__ import annotations

import copy

import msgspec
import parley
import pytest
from parley import (
    Attachment,
    AttachmentPart,
    Message,
    PromptRecord,
    ReasoningPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    assistant,
    tool_message,
    user,
)
from parley._client._base import prompt_params
from parley._serialization import ResponseData, from_dict, to_dict

# What llm's Response.to_dict() writes for a response with every kind of part.
LLM_DICT = {
    "model": "echo",
    "prompt": {
        "messages": [
            {
                "role": "user",
                "parts": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "attachment", "attachment": {"type": "image/png", "content": "aGVsbG8="}},
                ],
            },
            {
                "role": "assistant",
                "parts": [
                    {"type": "reasoning", "text": "", "redacted": True, "token_count": 12},
                    {
                        "type": "tool_call",
                        "name": "lookup",
                        "arguments": {"query": {"terms": ["cat", None]}},
                        "tool_call_id": "call_1",
                        "provider_metadata": {"openai": {"itemId": "fc_1"}},
                    },
                ],
            },
            {
                "role": "tool",
                "parts": [
                    {
                        "type": "tool_result",
                        "name": "lookup",
                        "output": "a cat",
                        "tool_call_id": "call_1",
                        "attachments": [{"url": "https://example.com/cat.png"}],
                    },
                    {
                        "type": "tool_result",
                        "name": "search",
                        "output": "",
                        "server_executed": True,
                        "exception": "boom",
                    },
                ],
            },
        ],
        "options": {"temperature": 0.2},
        "system": "Be brief",
    },
    "messages": [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "text": "Looking closer"},
                {"type": "text", "text": "A cat"},
                {"type": "text", "text": " on a mat."},
                {"type": "tool_call", "name": "done", "arguments": {}},
            ],
            "provider_metadata": {"anthropic": {"stop": "end_turn"}},
        }
    ],
    "id": "resp_1",
    "usage": {"input": 30, "output": 7, "details": {"cached": 4}},
    "datetime_utc": "2026-01-02T03:04:05.678Z",
}


def test_from_dict_reads_every_part_kind():
    data = from_dict(LLM_DICT, ResponseData)
    first, call, results = data.prompt.messages
    assert first.parts[1] == AttachmentPart(attachment=Attachment(mime_type="image/png", content="aGVsbG8="))
    assert call.parts[0] == ReasoningPart(text="", redacted=True, token_count=12)
    assert call.parts[1] == ToolCallPart(
        name="lookup",
        arguments={"query": {"terms": ["cat", None]}},
        tool_call_id="call_1",
        provider_metadata={"openai": {"itemId": "fc_1"}},
    )
    assert results.parts[0].attachments == [Attachment(url="https://example.com/cat.png")]
    assert results.parts[1] == ToolResultPart(name="search", output="", server_executed=True, exception="boom")
    assert data.prompt.system == "Be brief"
    assert data.prompt.options == {"temperature": 0.2}
    assert data.usage == Usage(input=30, output=7, details={"cached": 4})
    assert data.datetime_utc == "2026-01-02T03:04:05.678Z"


def test_to_dict_writes_llm_shape_exactly():
    assert to_dict(from_dict(LLM_DICT, ResponseData)) == LLM_DICT


def test_round_trip_through_response():
    response = parley.Response.from_dict(copy.deepcopy(LLM_DICT))
    assert response.to_dict() == LLM_DICT
    again = parley.Response.from_dict(response.to_dict())
    assert again.to_dict() == LLM_DICT


def test_absent_optional_keys_are_omitted():
    data = ResponseData(
        model="echo",
        prompt=PromptRecord(messages=[user("Hi")]),
        messages=[Message(role="assistant", parts=[ToolCallPart(name="f"), ReasoningPart(text="r")])],
    )
    assert to_dict(data) == {
        "model": "echo",
        "prompt": {"messages": [{"role": "user", "parts": [{"type": "text", "text": "Hi"}]}]},
        "messages": [
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "name": "f", "arguments": {}}, {"type": "reasoning", "text": "r"}],
            }
        ],
    }


def test_minimal_dict_round_trips():
    minimal = {"model": "m", "prompt": {"messages": []}, "messages": []}
    response = parley.Response.from_dict(minimal)
    assert response.to_dict() == minimal
    assert response.id is None
    assert response.usage() == parley.Usage(input=None, output=None)  # as llm's: counts unknown


def test_from_dict_drops_keys_it_does_not_know():
    # Older llm versions put a role on every part.
    data = {
        "model": "m",
        "prompt": {"messages": [{"role": "user", "parts": [{"role": "user", "type": "text", "text": "Hi"}]}]},
        "messages": [],
    }
    assert from_dict(data, ResponseData).prompt.messages == [user("Hi")]


def test_from_dict_names_what_is_wrong():
    bad = copy.deepcopy(LLM_DICT)
    del bad["messages"][0]["parts"][1]["text"]
    with pytest.raises(msgspec.ValidationError, match="text"):
        parley.Response.from_dict(bad)
    bad = copy.deepcopy(LLM_DICT)
    bad["messages"][0]["parts"][0]["type"] = "hologram"
    with pytest.raises(ValueError):
        parley.Response.from_dict(bad)


def test_detached_response_reads_from_the_dict():
    response = parley.Response.from_dict(LLM_DICT)
    assert response.status == "completed"
    assert response.model == "echo"
    assert response.id == "resp_1"
    assert response.text() == "A cat on a mat."
    assert list(response) == ["A cat on a mat."]
    assert response.reasoning() == "Looking closer"
    assert response.tool_calls() == [ToolCallPart(name="done")]
    assert response.usage() == Usage(input=30, output=7, details={"cached": 4})
    assert response.prompt().system == "Be brief"
    assert response.messages()[0].provider_metadata == {"anthropic": {"stop": "end_turn"}}
    assert list(response.stream_events()) == []


def test_detached_response_needs_a_client_to_reply():
    response = parley.Response.from_dict(LLM_DICT)
    with pytest.raises(parley.ParleyError, match="client="):
        response.reply("And then?")
    with pytest.raises(parley.ParleyError, match="not running"):
        response.cancel()


def test_detached_reply_sends_the_whole_chain():
    response = parley.Response.from_dict(LLM_DICT, client=object())
    _, method, params = response._reply_request(
        "And then?", tool_results=[parley.tool_result("done", {"ok": True}, tool_call_id="x")]
    )
    assert method == "prompt"
    assert params.model == "echo"
    assert params.prompt == "And then?"
    assert params.system == "Be brief"
    assert params.options == {"temperature": 0.2}
    chain = from_dict(LLM_DICT, ResponseData)
    assert params.messages == [
        *chain.prompt.messages,
        *chain.messages,
        tool_message(ToolResultPart(name="done", output='{"ok": true}', tool_call_id="x")),
    ]


def test_prompt_accepts_llm_message_dicts():
    params = prompt_params(
        "echo",
        None,
        messages=[user("Capital of France?"), {"role": "assistant", "parts": [{"type": "text", "text": "Paris"}]}],
    )
    assert params.messages == [user("Capital of France?"), assistant("Paris")]
    assert params.model == "echo"


def test_text_parts_only_for_text():
    response = parley.Response.from_dict(
        to_dict(
            ResponseData(
                model="m",
                prompt=PromptRecord(messages=[user("Hi")]),
                messages=[assistant("a", ReasoningPart(text="r"), "b")],
            )
        )
    )
    assert response.text() == "ab"
    assert response.reasoning() == "r"
