"""One conversation whatever API replays it, however the history is re-serialised.

Clients re-send their whole history each turn, and not always in the form they got it: a
string becomes a list of text parts, an assistant turn of tool calls has ``content: null``
or ``""``, one turn comes through Chat Completions and the next through Anthropic's Messages
or OpenAI's Responses. The store hashes messages by what they say, so every variant lands
in one conversation, and each message is stored once.
"""

from __future__ import annotations

import sqlite3

import httpx

from rpc import echo_script


def post(daemon, path: str, body: dict) -> dict:
    response = httpx.post(daemon.http_url + path, json=body, headers={"x-api-key": daemon.token, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200, response.text
    return response.json()


def chat(daemon, messages: list[dict]) -> str:
    return post(daemon, "/v1/chat/completions", {"model": "echo", "messages": messages})["choices"][0]["message"]["content"]


def stored_nodes(daemon) -> int:
    with sqlite3.connect(daemon.home / "data" / "parley.db") as conn:
        return conn.execute("SELECT count(*) FROM messages").fetchone()[0]


def conversations(daemon) -> list:
    import parley

    with parley.connect(f"unix://{daemon.socket}") as client:
        return [client.conversation(c.id) for c in client.conversations()]


def test_five_turns_through_three_apis_and_re_serialised_histories_are_one_conversation(http_daemon):
    call = echo_script({"type": "tool_call_name", "toolCallId": "call_1", "chunk": "lookup"}, {"type": "tool_call_args", "toolCallId": "call_1", "chunk": "{}"})
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    # 1: chat completions, a tool call; its result; the answer to it
    reply = post(http_daemon, "/v1/chat/completions", {"model": "echo", "messages": [{"role": "user", "content": call}], "tools": [tool]})
    calls = reply["choices"][0]["message"]["tool_calls"]
    history = [
        {"role": "user", "content": call},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "found it"},
    ]
    history.append({"role": "assistant", "content": chat(http_daemon, history)})
    assert history[-1]["content"] == "lookup: found it"
    # 3: the same history re-serialised: text as parts, the tool-call turn's content as ""
    variant = [
        {"role": "user", "content": [{"type": "text", "text": call}]},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "found it"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "lookup: found it"}]},
        {"role": "user", "content": "third"},
    ]
    assert chat(http_daemon, variant) == "third"
    # 4: Anthropic's Messages API, the history in its blocks
    anthropic_history = [
        {"role": "user", "content": call},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "found it"}]},
        {"role": "assistant", "content": "lookup: found it"},
        {"role": "user", "content": [{"type": "text", "text": "third"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "third"}]},
        {"role": "user", "content": "fourth"},
    ]
    answer = post(http_daemon, "/v1/messages", {"model": "echo", "max_tokens": 100, "messages": anthropic_history})
    assert answer["content"][0]["text"] == "fourth"
    # 5: OpenAI's Responses API, the whole input replayed as items
    items = [
        {"role": "user", "content": call},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "found it"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "lookup: found it"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "third"}]},
        {"role": "assistant", "content": "third"},
        {"role": "user", "content": "fourth"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "fourth"}]},
        {"role": "user", "content": "fifth"},
    ]
    response = post(http_daemon, "/v1/responses", {"model": "echo", "input": items})
    assert response["output"][-1]["content"][0]["text"] == "fifth"

    [conversation] = conversations(http_daemon)
    assert len(conversation.response_ids) == 5
    texts = [" ".join(getattr(p, "text", "") or getattr(p, "output", "") or getattr(p, "name", "") for p in m.parts) for m in conversation.messages]
    assert texts == [call, "lookup", "found it", "lookup: found it", "third", "third", "fourth", "fourth", "fifth", "fifth"]
    assert stored_nodes(http_daemon) == 10, "each message stored once"
