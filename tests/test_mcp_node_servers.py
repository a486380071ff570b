"""The MCP reference servers from npm (stdio, Node): images, progress, cancellation, a filesystem."""

from __future__ import annotations

import asyncio
import json

import pytest

from mcp_support import answer_approvals, approvals, call, node_server, rounds, servers_ready, start_daemon


@pytest.fixture
def everything(tmp_path):
    """server-everything, trusted (its read-only tools run unasked), its stdin teed to a file."""
    server = node_server("everything", "stdio")
    wire = tmp_path / "to-server.jsonl"
    command = f'tee -a "$0" | exec "{server["command"]}" ' + " ".join(f'"{a}"' for a in server["args"])
    proc = start_daemon(tmp_path / "home", {"everything": {"command": "sh", "args": ["-c", command, str(wire)], "trusted": True}})
    proc.wire = wire
    yield proc
    proc.stop()


async def test_an_image_result_is_an_attachment_of_the_tool_result(everything):
    conn = await everything.connect("unix")
    await servers_ready(conn, "everything")
    rid = (await conn.request("prompt", {"prompt": rounds(call("everything__get-tiny-image", "c1", {})), "mcpServers": ["everything"]}))["responseId"]
    events = await conn.until_done(rid, timeout=30)
    assert not approvals(conn)  # trusted, and read-only by its own word
    [result] = [e for e in events if e["type"] == "tool_result"]
    [image] = result["attachments"]
    assert image["mimeType"] == "image/png" and image["content"].startswith("iVBORw0KGgo")
    assert "image you requested" in result["output"]
    record = await conn.request("response/get", {"responseId": rid})
    assert record["messages"][1]["parts"][0]["attachments"][0]["mimeType"] == "image/png"


async def test_progress_arrives_and_cancelling_cancels_the_call_on_the_server(everything):
    conn = await everything.connect("unix")
    await servers_ready(conn, "everything")
    script = rounds(call("everything__trigger-long-running-operation", "c1", {"duration": 20, "steps": 100}))
    rid = (await conn.request("prompt", {"prompt": script, "mcpServers": ["everything"]}))["responseId"]
    await asyncio.sleep(0.5)
    progress = [e for e in conn.events(rid) if e["type"] == "tool_progress"]
    assert progress and progress[0]["toolCallId"] == "c1" and progress[0]["total"] == 100
    assert (await conn.request("response/cancel", {"responseId": rid}))["status"] == "cancelled"
    events = await conn.until_done(rid)
    assert events[-1]["status"] == "cancelled"
    for _ in range(50):
        sent = [json.loads(line) for line in everything.wire.read_text().splitlines() if line.strip()]
        cancels = [m for m in sent if m.get("method") == "notifications/cancelled"]
        if cancels:
            break
        await asyncio.sleep(0.1)
    [tool_call] = [m for m in sent if m.get("method") == "tools/call"]
    assert cancels and cancels[0]["params"]["requestId"] == tool_call["id"]
    # the server goes on serving
    rid = (await conn.request("prompt", {"prompt": rounds(call("everything__echo", "c2", {"message": "still here"})), "mcpServers": ["everything"]}))["responseId"]
    [result] = [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"]
    assert result["output"] == "Echo: still here"


@pytest.fixture
def filesystem(tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    (root / "notes.txt").write_text("the original text\n")
    proc = start_daemon(tmp_path / "home", {"fs": node_server("filesystem", str(root))})
    proc.root = root
    yield proc
    proc.stop()


async def test_a_denied_write_changes_nothing_and_an_allowed_read_returns_the_text(filesystem):
    conn = await filesystem.connect("unix")
    listed = await servers_ready(conn, "fs")
    names = {t["name"] for t in listed["fs"]["tools"]}
    assert {"fs__write_file", "fs__read_text_file"} <= names
    notes = str(filesystem.root / "notes.txt")
    write = rounds(call("fs__write_file", "w1", {"path": notes, "content": "overwritten"}))
    rid = (await conn.request("prompt", {"prompt": write, "mcpServers": ["fs"]}))["responseId"]
    [asked] = await answer_approvals(conn, "deny")
    assert asked["params"]["name"] == "write_file" and asked["params"]["arguments"]["content"] == "overwritten"
    [result] = [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"]
    assert result["exception"].startswith("not run: the user denied it")
    assert (filesystem.root / "notes.txt").read_text() == "the original text\n"
    read = rounds(call("fs__read_text_file", "r1", {"path": notes}))
    rid = (await conn.request("prompt", {"prompt": read, "mcpServers": ["fs"]}))["responseId"]
    await answer_approvals(conn, "allow_once")
    [result] = [e for e in await conn.until_done(rid, timeout=30) if e["type"] == "tool_result"]
    assert result["output"] == "the original text\n"
