"""The daemon owns its MCP servers: one process each, restarted when killed, replaced on an edit,
gone when it stops; Streamable HTTP reconnects; no SDK, no start; no answer, no run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, free_port
from mcp_support import (
    answer_approvals,
    call,
    pids_alive,
    rounds,
    servers_ready,
    start_daemon,
    time_server,
    write_config,
)


def children(pid: int, needle: str) -> list[int]:
    """The child processes of ``pid`` whose command line holds ``needle``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().split(") ")[-1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if ppid == pid and needle in cmdline:
            found.append(int(entry))
    return found


async def until(check, timeout: float = 30, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(interval)
    return found


async def test_two_clients_one_process_restarted_after_kill_replaced_on_edit_gone_at_stop(tmp_path):
    proc = start_daemon(tmp_path / "home", {"time": time_server()})
    try:
        first, second = await proc.connect("unix"), await proc.connect("tcp")
        listed = await servers_ready(first, "time")
        pid = listed["time"]["pid"]
        script = rounds(call("time__get_current_time", "c1", {"timezone": "UTC"}))
        for conn in (first, second):
            rid = (await conn.request("prompt", {"prompt": script, "mcpServers": ["time"]}))["responseId"]
            await answer_approvals(conn, "allow_once")
            assert "exception" not in [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"][0]
        assert children(proc.process.pid, "mcp-server-time") == [pid]

        os.kill(pid, signal.SIGKILL)  # noticed, and started again after a backoff

        async def restarted():
            server = (await first.request("mcp/list"))["servers"][0]
            return server if server["state"] == "ready" and server["pid"] not in (None, pid) else None

        server = await until(restarted)
        assert server["restarts"] == 1 and pids_alive([pid]) == []
        assert "the server exited (signal SIGKILL)" in proc.log
        pid = server["pid"]

        write_config(proc.home, {"time": {**time_server(), "env": {"PARLEY_TEST": "edited"}}})  # an edit

        async def replaced():
            server = (await first.request("mcp/list"))["servers"][0]
            return server if server["state"] == "ready" and server["pid"] != pid else None

        server = await until(replaced)
        assert pids_alive([pid]) == [] and children(proc.process.pid, "mcp-server-time") == [server["pid"]]
        pid = server["pid"]
        await first.close()
        await second.close()
    finally:
        proc.stop()
    deadline = time.monotonic() + 5
    while pids_alive([pid]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids_alive([pid]) == []
    assert "edited" not in proc.log  # env values are never logged


@pytest.fixture
def http_server(tmp_path):
    port = free_port()
    token = "secret-header-value"
    script = ROOT / "tests" / "mcp_servers" / "http_server.py"

    def start() -> subprocess.Popen:
        server = subprocess.Popen([sys.executable, str(script), str(port), token], stderr=open(tmp_path / "http.log", "ab"))
        deadline = time.monotonic() + 20
        import socket

        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return server
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "http.log").read_text()
            time.sleep(0.05)

    servers = [start()]
    yield {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Parley-Test": token}}, servers, start
    for server in servers:
        server.kill()
        server.wait()


async def test_streamable_http_killed_mid_call_is_a_tool_error_then_it_reconnects(tmp_path, http_server):
    entry, servers, start = http_server
    proc = start_daemon(tmp_path / "home", {"web": {**entry, "trusted": True}})
    try:
        conn = await proc.connect("unix")
        listed = await servers_ready(conn, "web")
        assert listed["web"]["transport"] == "http" and [t["name"] for t in listed["web"]["tools"]] == ["web__add", "web__slow"]
        rid = (await conn.request("prompt", {"prompt": rounds(call("web__slow", "s1", {"seconds": 30})), "mcpServers": ["web"]}))["responseId"]
        await answer_approvals(conn, "allow_once")
        await asyncio.sleep(1)
        servers[0].kill()
        servers[0].wait()
        [result] = [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"]
        assert result["exception"].startswith("MCP server 'web'"), result
        servers.append(start())
        await servers_ready(conn, "web", timeout=60)
        rid = (await conn.request("prompt", {"prompt": rounds(call("web__add", "a1", {"a": 2, "b": 3})), "mcpServers": ["web"]}))["responseId"]
        await answer_approvals(conn, "allow_once")
        [result] = [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"]
        assert result["output"] == "5" and result["structuredContent"] == {"result": 5}
    finally:
        proc.stop()
    assert "secret-header-value" not in proc.log  # headers are never logged


async def test_without_the_sdk_a_server_is_failed_with_the_reason(tmp_path, monkeypatch):
    shadow = tmp_path / "shadow" / "mcp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('simulated: no mcp here')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    proc = start_daemon(tmp_path / "home", {"time": time_server()})
    try:
        conn = await proc.connect("unix")

        async def failed():
            [server] = (await conn.request("mcp/list"))["servers"]
            return server if server["state"] == "failed" else None

        server = await until(failed, timeout=10)
        assert server["error"] == "the `mcp` package is not installed: pip install 'parleyd[mcp]'"
        rid = (await conn.request("prompt", {"prompt": rounds(call("time__get_current_time", "c1", {})), "mcpServers": ["time"]}))["responseId"]
        [result] = [e for e in await conn.until_done(rid) if e["type"] == "tool_result"]
        assert result["exception"] == f"no tool named 'time__get_current_time' was declared (MCP server 'time' is failed: {server['error']})"
    finally:
        proc.stop()


async def test_no_answer_in_time_is_a_deny(tmp_path):
    proc = start_daemon(tmp_path / "home", {"time": time_server()}, "--approval-timeout", "1")
    try:
        conn = await proc.connect("unix")
        await servers_ready(conn, "time")
        rid = (await conn.request("prompt", {"prompt": rounds(call("time__get_current_time", "c1", {"timezone": "UTC"})), "mcpServers": ["time"]}))["responseId"]
        [result] = [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"]
        assert result["exception"] == "not run: the user did not approve it within 1 s"
        assert any(n["method"] == "$/cancelRequest" for n in conn.notifications)
    finally:
        proc.stop()
