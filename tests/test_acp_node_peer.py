"""`parley acp` driven by a second, independent peer: the official TypeScript SDK's client.

tests/acp_peer/peer.mjs runs under node (the SDK pinned in tests/acp_peer/package-lock.json,
installed by `npm ci` there) and prints a summary of its session; this checks it. The SDK reports
what it cannot parse with console.error, which the script collects: none may come.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from acp_driver import PEER_DIR, call, parley_acp_argv, rounds
from conftest import missing

NODE = shutil.which("node")
if NODE is None:
    missing("node (for the ACP TypeScript SDK peer)")
if not (PEER_DIR / "node_modules" / "@agentclientprotocol" / "sdk").is_dir():
    missing("the ACP TypeScript SDK (run `npm ci` in tests/acp_peer)")


def run_peer(daemon, cwd, prompt: str) -> dict:
    env = dict(daemon.env, ACP_PEER_ARGV=json.dumps(parley_acp_argv()), ACP_PEER_CWD=str(cwd), ACP_PEER_PROMPT=prompt)
    with open(daemon.home / "acp.log", "ab") as stderr:
        done = subprocess.run([NODE, str(PEER_DIR / "peer.mjs")], env=env, cwd=PEER_DIR, stdout=subprocess.PIPE, stderr=stderr, timeout=90)
    assert done.returncode == 0, done
    return json.loads(done.stdout)


def test_the_typescript_sdk_runs_a_session_with_a_tool_call_it_allows(daemon, tmp_path):
    script = rounds([
        {"type": "reasoning", "chunk": "Thinking it over."},
        {"type": "text", "chunk": "Adding up."},
        *call("read_text_file", "c1", {"path": "numbers.txt"}),
    ])
    (tmp_path / "numbers.txt").write_text("1 2 3\n")
    summary = run_peer(daemon, tmp_path, script)

    assert summary.get("error") is None, summary.get("error")
    assert summary["sdkErrors"] == []
    assert summary["exit"] == {"code": 0, "signal": None}
    init = summary["initialize"]
    assert init["protocolVersion"] == 1 and init["agentCapabilities"]["loadSession"] is True

    # the options, as the SDK parsed them: model set to echo, reasoning to another value
    sid = summary["newSession"]["sessionId"]
    model = next(o for o in summary["setModel"]["configOptions"] if o["category"] == "model")
    assert model["currentValue"] == "echo"
    reasoning = next(o for o in summary["setReasoning"]["configOptions"] if o["category"] == "thought_level")
    assert reasoning["currentValue"] == summary["reasoningValue"] == "hidden"

    # the turn: text, no thoughts (hidden), the call asked for and allowed, an end
    assert summary["prompt"] == {"stopReason": "end_turn"}
    updates = [u["update"] for u in summary["updates"] if u["sessionId"] == sid]
    wire = summary["wire"]  # the agent's frames in the order they came, before the SDK parsed them
    assert not [w for w in wire if w.startswith("not JSON")], wire
    assert wire.count("stop end_turn") == 1 and "session/update" not in wire[wire.index("stop end_turn"):], wire
    kinds = [u["sessionUpdate"] for u in updates]
    assert "agent_thought_chunk" not in kinds
    assert {"agent_message_chunk", "tool_call", "tool_call_update"} <= set(kinds), kinds
    text = "".join(u["content"]["text"] for u in updates if u["sessionUpdate"] == "agent_message_chunk")
    assert text.startswith("Adding up.") and "read_text_file: 1 2 3" in text, text
    [asked] = summary["permissionRequests"]
    assert asked["sessionId"] == sid and asked["toolCall"]["toolCallId"] in [u["toolCallId"] for u in updates if u["sessionUpdate"] == "tool_call"]
    # once allowed, parley read the file through the client, and asked nothing else
    assert [(r["sessionId"], r["path"]) for r in summary["reads"]] == [(sid, str(tmp_path / "numbers.txt"))]
    assert summary["agentRequests"] == []
    assert sid in [s["sessionId"] for s in summary["list"]["sessions"]]
