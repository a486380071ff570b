"""`parley stdio` — what editors launch: it starts the daemon if none runs, and every bridge shares it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from conftest import DaemonProcess
from rpc import RawConnection, echo_script


async def bridge(env: dict) -> tuple[asyncio.subprocess.Process, RawConnection]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parleyd", "stdio", env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**24
    )
    return proc, RawConnection(proc.stdout, proc.stdin)


async def test_two_editors_share_one_autostarted_daemon(tmp_path):
    home = DaemonProcess(tmp_path)  # nothing started: the first bridge starts the daemon
    home.pin_echo()
    (tmp_path / "run").mkdir(mode=0o700)
    vscode_proc, vscode = await bridge(home.env)
    nvim_proc, nvim = await bridge(home.env)
    try:
        await vscode.initialize()
        await nvim.initialize()
        script = echo_script(*({"type": "text", "chunk": f"{i} ", "delayMs": 10} for i in range(30)))
        started = await vscode.request("prompt", {"prompt": script})
        rid = started["responseId"]
        await vscode.wait_for(lambda: True if len(vscode.events(rid)) >= 5 else None)
        # the other editor finds the running conversation and attaches to it mid-stream
        listed = await nvim.request("conversations/list", {})
        assert listed["conversations"][0]["id"] == started["conversationId"]
        await nvim.request("response/subscribe", {"responseId": rid, "afterSeq": 2})
        theirs = await nvim.until_done(rid)
        mine = await vscode.until_done(rid)
        assert theirs == mine[2:]
        status = await nvim.request("daemon/status")
        assert status["connections"] == 2
    finally:
        for proc in (vscode_proc, nvim_proc):
            proc.stdin.close()
            await asyncio.wait_for(proc.wait(), 10)
        pid = int((tmp_path / "run" / "parley.lock").read_text())
        os.kill(pid, signal.SIGTERM)
