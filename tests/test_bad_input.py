"""Bad input gets its documented error, and the daemon keeps serving everyone."""

from __future__ import annotations

import json

import pytest

from parley._framing import encode_frame


async def assert_still_serving(*conns):
    for c in conns:
        result = await c.request("models/list")
        assert "echo" in [m["id"] for m in result["models"]]


async def test_garbage_bytes_get_a_parse_error(daemon, transport):
    conn = await daemon.connect(transport)
    other = await daemon.connect("unix" if transport != "unix" else "tcp")
    if transport == "ws":
        await conn.send_bytes(b"\x00\x01 not json at all")
    else:
        await conn.send_bytes(b"\x00\x01garbage without headers\r\n\r\nmore garbage")
    answer = await conn.answer(None)
    assert answer["error"]["code"] == -32700
    await assert_still_serving(conn, other)


async def test_bad_json_gets_a_parse_error(conn, transport):
    body = b'{"jsonrpc": "2.0", "id": 7, "method": '
    await conn.send_bytes(body if transport == "ws" else encode_frame(body))
    answer = await conn.answer(None)
    assert answer["error"]["code"] == -32700 and "JSON" in answer["error"]["message"]
    await assert_still_serving(conn)


async def test_not_a_request_is_invalid(conn):
    await conn.send([1, 2, 3])
    assert (await conn.answer(None))["error"]["code"] == -32600
    await conn.send({"jsonrpc": "1.0", "id": 5, "method": "models/list"})
    assert (await conn.answer(5))["error"]["code"] == -32600
    await assert_still_serving(conn)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"prompt": 42}, "params.prompt"),
        ({"prompt": "hi", "bogus": True}, "bogus"),
        ({"messages": [{"role": "robot", "parts": []}]}, "params.messages[0].role"),
        ({"messages": [{"role": "user", "parts": [{"type": "picture"}]}]}, "params.messages[0].parts[0]"),
        ({"attachments": [{"mimeType": "image/png"}]}, "params.attachments[0]"),
        ({}, "one of `prompt`, `messages` or `attachments`"),
        ({"prompt": "hi", "options": {"temperature": 0.5}}, "options"),
        ({"responseId": "r", "afterSeq": -1}, "params.afterSeq"),
        ({"limit": 0}, "params.limit"),
    ],
)
async def test_wrong_params_name_the_field(daemon, params, field):
    conn = await daemon.connect("unix")
    method = "response/subscribe" if "afterSeq" in params else "conversations/list" if "limit" in params else "prompt"
    answer = await conn.call(method, params)
    assert answer["error"]["code"] == -32602, answer
    assert field in answer["error"]["message"]
    assert "Traceback" not in json.dumps(answer)
    await assert_still_serving(conn)


async def test_unknown_method_and_unknown_ids(conn):
    assert (await conn.call("no/such/method"))["error"]["code"] == -32601
    unknown = [
        ("prompt", {"model": "gpt-nonexistent", "prompt": "hi"}, -32010),
        ("response/get", {"responseId": "resp_missing"}, -32011),
        ("response/subscribe", {"responseId": "resp_missing"}, -32011),
        ("reply", {"responseId": "resp_missing", "prompt": "x"}, -32011),
        ("conversations/get", {"conversationId": "conv_missing"}, -32012),
        ("conversations/delete", {"conversationId": "conv_missing"}, -32012),
        ("prompt", {"conversationId": "conv_missing", "prompt": "x"}, -32012),
    ]
    for method, params, code in unknown:
        answer = await conn.call(method, params)
        assert answer["error"]["code"] == code, (method, answer)
    await assert_still_serving(conn)


async def test_requests_before_initialize_are_refused(daemon, transport):
    conn = await daemon.connect(transport, initialize=False)
    answer = await conn.call("models/list")
    assert answer["error"]["code"] == -32002
    token = {"authToken": daemon.token} if transport in ("tcp", "ws") else {}
    await conn.initialize(**token)
    again = await conn.call("initialize", {"protocolVersion": 1, "clientInfo": {"name": "x"}, **token})
    assert again["error"]["code"] == -32600
    await assert_still_serving(conn)


async def test_wrong_protocol_version(daemon):
    conn = await daemon.connect("unix", initialize=False)
    answer = await conn.call("initialize", {"protocolVersion": 99, "clientInfo": {"name": "x"}})
    assert answer["error"]["code"] == -32600 and "version" in answer["error"]["message"]


@pytest.fixture
def small_daemon(tmp_path):
    from conftest import DaemonProcess

    home = tmp_path / "small"
    home.mkdir()
    proc = DaemonProcess(home, extra_args=["--max-message-size", "65536"])
    proc.start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("transport", ["unix", "tcp", "stdio"])
async def test_oversized_message_is_refused_and_the_connection_recovers(small_daemon, transport):
    conn = await small_daemon.connect(transport)
    huge = json.dumps({"jsonrpc": "2.0", "id": 99, "method": "prompt", "params": {"prompt": "x" * 200_000}}).encode()
    await conn.send_bytes(encode_frame(huge))
    answer = await conn.answer(None)
    assert answer["error"]["code"] == -32021 and answer["error"]["data"]["kind"] == "message_too_large"
    await assert_still_serving(conn)
    assert 99 not in conn.answers


async def test_oversized_websocket_message_closes_only_that_connection(small_daemon):
    conn = await small_daemon.connect("ws")
    other = await small_daemon.connect("unix")
    await conn.send({"jsonrpc": "2.0", "id": 1, "method": "prompt", "params": {"prompt": "x" * 200_000}})
    with pytest.raises(ConnectionError):
        await conn.answer(1)
    assert conn._ws.close_code == 1009
    await assert_still_serving(other)


async def test_deep_nesting_is_refused_in_one_log_line(daemon):
    """5,000 levels trip msgspec's recursion limit: a client's fault, with an error answer
    and one line in the log, not a traceback; a flood of them logs a count, not one line each."""
    conn = await daemon.connect("unix")
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    frame = encode_frame(b'{"jsonrpc":"2.0","id":1,"method":"prompt","params":{"prompt":"x","options":' + deep + b"}}")
    for _ in range(50):
        await conn.send_bytes(frame)
        answer = await conn.answer(None)  # its id is past the limit too
        assert answer["error"]["code"] == -32700 and "nested too deeply" in answer["error"]["message"]
    await assert_still_serving(conn)
    log = daemon.log
    assert "Traceback" not in log and "RecursionError" not in log
    lines = [line for line in log.splitlines() if "rejected a message from" in line]
    assert 1 <= len(lines) <= 5 and "parse_error" in lines[0] and "bytes)" in lines[0], lines
