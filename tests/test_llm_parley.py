"""The llm-parley plugin (clients/llm-parley): the ``llm`` CLI talking to a real daemon.

The plugin is installed for llm as its pyproject.toml declares it (``llm_site``); the daemon
gets it too, and must leave it out of its own plugin models (they would be itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DaemonProcess, missing
from llm_site import llm_parley_site, use_llm
from test_llm_plugins import served

pytestmark = pytest.mark.timeout(180)

try:
    import llm  # noqa: F401
except ImportError:
    missing("llm is not installed (pip install -e '.[test]')")

BIN = Path(sys.executable).parent
SCRIPT = {"events": [{"type": "tool_call_name", "chunk": "add", "toolCallId": "c1"}, {"type": "tool_call_args", "chunk": '{"a": 1, "b": 2}', "toolCallId": "c1"}]}


@pytest.fixture
def daemon(tmp_path, monkeypatch):
    use_llm(monkeypatch, tmp_path / "llm", llm_parley_site(tmp_path / "site"))
    home = tmp_path / "home"
    home.mkdir()
    proc = DaemonProcess(home)
    proc.start()
    monkeypatch.setenv("PARLEY_HOME", str(home))
    yield proc
    subprocess.run([BIN / "parley", "stop"], capture_output=True, timeout=30)  # one the plugin started, if any
    proc.stop()


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=90, check=check, env=os.environ)


async def test_llm_prompts_and_continues_a_parley_conversation(daemon):
    assert "parley/echo" in run("llm", "models").stdout
    assert run("llm", "-m", "parley/echo", "hi").stdout == "hi\n"
    assert run("llm", "-m", "parley/echo", "-c", "again").stdout == "again\n"

    [conversation] = json.loads(run("parley", "logs", "--json").stdout)
    texts = [(m["role"], "".join(p.get("text", "") for p in m["parts"])) for m in conversation["messages"]]
    assert texts == [("user", "hi"), ("assistant", "hi"), ("user", "again"), ("assistant", "again")]
    assert len(conversation["responseIds"]) == 2
    assert "again" in run("parley", "logs", "-n", "1").stdout

    conn = await daemon.connect("unix")
    listed = await conn.request("conversations/list")
    assert [c["responseCount"] for c in listed["conversations"]] == [2] and listed["conversations"][0]["model"] == "echo"
    models = await served(conn, "llm/echo")
    assert not any(m.startswith("llm/parley") for m in models), "the daemon leaves llm-parley's models out"


async def test_tool_calls_run_by_llm_go_back_to_the_same_conversation(daemon):
    done = run("llm", "-m", "parley/echo", "--functions", "def add(a: int, b: int) -> int:\n    return a + b", "--td", json.dumps(SCRIPT))
    assert done.stdout.strip() == "add: 3" and "add({'a': 1, 'b': 2})" in done.stderr
    [conversation] = json.loads(run("parley", "logs", "--json").stdout)
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert conversation["messages"][2]["parts"] == [{"type": "tool_result", "name": "add", "output": "3", "toolCallId": "c1"}]


async def test_options_are_checked_by_the_daemon_and_the_list_outlives_it(daemon):
    failed = run("llm", "-m", "parley/echo", "-o", "bogus", "1", "hi", check=False)
    assert failed.returncode != 0 and "unknown option `bogus`" in failed.stderr
    daemon.stop()
    assert "parley/echo" in run("llm", "models").stdout, "no daemon: the list it gave last"
    assert run("llm", "-m", "parley/echo", "started again").stdout == "started again\n", "the first prompt starts one"
