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


def listening_addresses(port: int) -> set[str]:
    """The local addresses bound to this TCP port, from the kernel's own table."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                found.add(address)
    return found


def test_tcp_and_websocket_default_to_loopback(tmp_path):
    from conftest import DaemonProcess, free_port

    tcp, ws = free_port(), free_port()
    proc = DaemonProcess(tmp_path, extra_args=["--tcp", f":{tcp}", "--ws", f":{ws}"])  # no host given
    proc.start()
    try:
        assert listening_addresses(tcp) == {"0100007F"}  # 127.0.0.1, little-endian hex
        assert listening_addresses(ws) == {"0100007F"}
    finally:
        proc.stop()
