"""Security by default: private socket and token, tokens on TCP/WebSocket, no browsers."""

from __future__ import annotations

import stat

import pytest
import websockets


def test_socket_and_token_are_private(daemon):
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE((daemon.home / "run" / "parley.token").stat().st_mode) == 0o600
    assert stat.S_IMODE((daemon.home / "run").stat().st_mode) == 0o700


@pytest.mark.parametrize("transport", ["tcp", "ws"])
@pytest.mark.parametrize("token", [None, "wrong"])
async def test_network_transports_need_the_token(daemon, transport, token):
    conn = await daemon.connect(transport, initialize=False)
    params = {"protocolVersion": 1, "clientInfo": {"name": "intruder"}}
    if token:
        params["authToken"] = token
    answer = await conn.call("initialize", params)
    assert answer["error"]["code"] == -32020
    assert daemon.token not in str(answer)
    with pytest.raises(ConnectionError):
        await conn.call("models/list", timeout=5)


async def test_websocket_refuses_browser_origins(daemon):
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(f"ws://127.0.0.1:{daemon.ws_port}", origin="https://evil.example")
    assert info.value.response.status_code == 403


async def test_tcp_listens_on_loopback_only(daemon):
    import socket

    with socket.create_connection(("127.0.0.1", daemon.tcp_port), timeout=2):
        pass
    out = daemon.log
    assert f"tcp://127.0.0.1:{daemon.tcp_port}" in out
