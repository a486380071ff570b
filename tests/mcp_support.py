"""Helpers for the MCP tests: a daemon with an mcp.json, the real servers they run, approvals.

The servers are real and offline: ``mcp-server-time`` from PyPI (in the test venv),
and the reference servers from npm in tests/mcp_servers (``npm ci`` there).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from conftest import ROOT, DaemonProcess, missing
from rpc import RawConnection

NODE_MODULES = ROOT / "tests" / "mcp_servers" / "node_modules" / "@modelcontextprotocol"


def time_server() -> dict[str, Any]:
    command = Path(sys.executable).with_name("mcp-server-time")
    if not command.exists():
        missing("mcp-server-time is not installed (pip install -e '.[test]')")
    return {"command": str(command), "args": ["--local-timezone", "UTC"]}


def node_server(package: str, *args: str) -> dict[str, Any]:
    """``@modelcontextprotocol/server-<package>`` from tests/mcp_servers, run by node."""
    entry = NODE_MODULES / f"server-{package}" / "dist" / "index.js"
    node = shutil.which("node")
    if node is None or not entry.exists():
        missing(f"@modelcontextprotocol/server-{package} is not installed (cd tests/mcp_servers && npm ci)")
    return {"command": node, "args": [str(entry), *args]}


def write_config(home: Path, servers: dict[str, Any]) -> Path:
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config / "mcp.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"mcpServers": servers}))
    os.replace(tmp, path)
    return path


def start_daemon(home: Path, servers: dict[str, Any], *extra_args: str) -> DaemonProcess:
    home.mkdir(parents=True, exist_ok=True)
    write_config(home, servers)
    proc = DaemonProcess(home, extra_args=list(extra_args))
    proc.start()
    return proc


async def servers_ready(conn: RawConnection, *names: str, timeout: float = 60) -> dict[str, dict]:
    """``mcp/list``'s servers, once each named one is ready (failing when one is not in time)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = {s["name"]: s for s in (await conn.request("mcp/list"))["servers"]}
        if all(listed.get(n, {}).get("state") == "ready" for n in names):
            return listed
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.2)


def rounds(*rounds_: list[dict]) -> str:
    return json.dumps({"rounds": list(rounds_)})


def call(name: str, call_id: str, args: dict) -> list[dict]:
    return [
        {"type": "tool_call_name", "chunk": name, "toolCallId": call_id},
        {"type": "tool_call_args", "chunk": json.dumps(args), "toolCallId": call_id},
    ]


def approvals(conn: RawConnection) -> list[dict]:
    return [n for n in conn.notifications if n.get("method") == "tool/approve"]


async def answer_approvals(conn: RawConnection, decision: str, *, count: int = 1, timeout: float = 30) -> list[dict]:
    """Answer the first ``count`` tool/approve requests not yet answered with ``decision``."""
    answered = getattr(conn, "_approvals_answered", 0)
    found = await conn.wait_for(lambda: approvals(conn)[answered : answered + count] if len(approvals(conn)) >= answered + count else None, timeout=timeout)
    for request in found:
        await conn.send({"jsonrpc": "2.0", "id": request["id"], "result": {"decision": decision}})
    conn._approvals_answered = answered + count  # type: ignore[attr-defined]
    return found


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[-1].startswith("Z"):
                    continue  # a zombie has exited
            alive.append(pid)
        except FileNotFoundError:
            pass
    return alive
