"""Large messages, idle exit, and LSP-style request cancellation."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time

from conftest import DaemonProcess


async def test_a_large_inline_attachment_within_the_limit_is_accepted(daemon, transport):
    conn = await daemon.connect(transport)
    content = base64.b64encode(os.urandom(6 * 1024 * 1024)).decode()  # 8 MiB of base64 in one message
    started = await conn.request("prompt", {"prompt": "describe", "attachments": [{"mimeType": "image/png", "content": content}]}, timeout=60)
    await conn.until_done(started["responseId"], timeout=60)
    record = await conn.request("response/get", {"responseId": started["responseId"]}, timeout=60)
    parts = record["prompt"]["messages"][0]["parts"]
    assert parts[0] == {"type": "text", "text": "describe"}
    assert parts[1]["attachment"]["content"] == content


async def test_cancel_request_notifications_are_harmless(conn):
    await conn.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 12345}})
    await conn.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"wrong": True}})
    await conn.send({"jsonrpc": "2.0", "method": "no/such/notification", "params": {}})
    assert (await conn.request("models/list"))["models"]
    assert None not in conn.answers, "notifications get no answer, not even an error"


def test_idle_timeout_stops_an_unused_daemon(tmp_path):
    proc = DaemonProcess(tmp_path)
    proc.socket.parent.mkdir(parents=True, mode=0o700)
    start = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "parleyd", "serve", "--idle-timeout", "1"], env=proc.env, capture_output=True, text=True, timeout=30
    )
    assert process.returncode == 0
    assert 1 <= time.monotonic() - start < 20
    assert not proc.socket.exists(), "the socket is removed on exit"


def test_a_second_daemon_on_the_same_socket_refuses_to_start(daemon):
    second = subprocess.run([sys.executable, "-m", "parleyd", "serve"], env=daemon.env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert f"pid {daemon.process.pid}" in second.stderr and "already serves" in second.stderr
    assert daemon._listening()
