"""The clients' side of the daemon's MCP tools: the Python client's ``approve=`` (sync and async),
``parley prompt --mcp`` with y/N/a on a terminal or ``--yes``, and ``parley mcp list``."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

import parley
from mcp_support import call, rounds, start_daemon, time_server

NOW_UTC = rounds(call("time__get_current_time", "c1", {"timezone": "UTC"}))


@pytest.fixture(scope="module")
def time_daemon(tmp_path_factory):
    proc = start_daemon(tmp_path_factory.mktemp("mcp") / "home", {"time": time_server()})
    with parley.connect(proc.socket) as client:  # wait until the server is up
        deadline = time.monotonic() + 60
        while client.mcp_servers().servers[0].state != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    yield proc
    proc.stop()


def test_sync_client_approve_callback(time_daemon):
    asked = []

    def approve(params: parley.ToolApproveParams) -> str:
        asked.append(params)
        return "allow_once"

    with parley.connect(time_daemon.socket, approve=approve) as client:
        response = client.get_model("echo").prompt(NOW_UTC, mcp_servers=["time"])
        text = response.text()
    assert text.startswith("time__get_current_time: {") and '"timezone": "UTC"' in text
    assert [(p.server, p.name, p.arguments) for p in asked] == [("time", "get_current_time", {"timezone": "UTC"})]


def test_no_callback_is_a_deny_the_model_is_told(time_daemon):
    with parley.connect(time_daemon.socket) as client:
        response = client.get_model("echo").prompt(NOW_UTC, mcp_servers=["time"])
        [result] = [e for e in response.stream_events() if e.type == "tool_result"]
    assert result.exception == "not run: the user denied it (this client was given no approve= callback, so nobody could be asked)"


async def test_async_client_async_callback_and_a_raising_one(time_daemon):
    async def approve(params: parley.ToolApproveParams) -> bool:
        return params.arguments.get("timezone") == "UTC"

    async with await parley.connect_async(time_daemon.socket, approve=approve) as client:
        model = await client.get_model("echo")
        assert (await model.prompt(NOW_UTC, mcp_servers=["time"]).text()).startswith("time__get_current_time: {")
        paris = rounds(call("time__get_current_time", "c1", {"timezone": "Europe/Paris"}))
        assert await model.prompt(paris, mcp_servers=["time"]).text() == "time__get_current_time: not run: the user denied it"

        def broken(params):
            raise RuntimeError("no terminal")

        client.approve = broken
        text = await model.prompt(NOW_UTC, mcp_servers=["time"]).text()
        assert text == "time__get_current_time: not run: the user denied it (approve= raised RuntimeError: no terminal)"


def cli(daemon, *args: str, stdin=subprocess.PIPE, timeout: float = 30) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "parleyd", *args], env=daemon.env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_cli_yes_and_not_a_terminal(time_daemon):
    out = subprocess.run([sys.executable, "-m", "parleyd", "prompt", "-m", "echo", "--mcp", "time", "--yes", NOW_UTC], env=time_daemon.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("time__get_current_time: {")
    lines = out.stderr.splitlines()
    assert lines[0] == 'mcp: time: get_current_time({"timezone": "UTC"})  [readOnlyHint, idempotentHint]'
    assert lines[1].startswith("  -> {")
    out = subprocess.run([sys.executable, "-m", "parleyd", "prompt", "-m", "echo", "--mcp", "time", NOW_UTC], env=time_daemon.env, input="", capture_output=True, text=True, timeout=30)
    assert out.stdout == "time__get_current_time: not run: the user denied it\n"
    assert "  -> not run: stdin is not a terminal (pass --yes to run tools)" in out.stderr


@pytest.mark.parametrize(("answer", "ran"), [("n", False), ("y", True), ("a", True)])
def test_cli_asks_on_a_terminal(time_daemon, answer, ran):
    controller, terminal = pty.openpty()
    process = cli(time_daemon, "prompt", "-m", "echo", "--mcp", "time", NOW_UTC, stdin=terminal)
    os.close(terminal)
    try:
        stderr, deadline = b"", time.monotonic() + 30
        while b"Run it? [y/N/a(lways)] " not in stderr:
            assert time.monotonic() < deadline, stderr
            if select.select([process.stderr], [], [], 0.1)[0]:
                chunk = os.read(process.stderr.fileno(), 4096)
                assert chunk, stderr
                stderr += chunk
        os.write(controller, answer.encode() + b"\n")
        stdout, _ = process.communicate(timeout=30)
    finally:
        os.close(controller)
    assert process.returncode == 0
    assert stdout.decode().startswith("time__get_current_time: {") == ran
    if answer == "a":  # asked no more for this tool
        again = subprocess.run([sys.executable, "-m", "parleyd", "prompt", "-m", "echo", "--mcp", "time", NOW_UTC], env=time_daemon.env, input="", capture_output=True, text=True, timeout=30)
        assert again.stdout.startswith("time__get_current_time: {") and "mcp:" not in again.stderr


def test_mcp_list(time_daemon):
    out = subprocess.run([sys.executable, "-m", "parleyd", "mcp", "list"], env=time_daemon.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("time: ready (stdio, pid ")
    assert lines[1].startswith("  log:   ") and lines[1].endswith("mcp-logs/time.log")
    assert lines[2] == "  time__convert_time [readOnlyHint, idempotentHint]: Convert time between timezones"
    listed = json.loads(subprocess.run([sys.executable, "-m", "parleyd", "mcp", "list", "--json"], env=time_daemon.env, capture_output=True, text=True, timeout=30).stdout)
    assert listed["servers"][0]["tools"][1]["tool"] == "get_current_time"
