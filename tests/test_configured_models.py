"""Models from config.toml and keys from `parley keys`, served by a real daemon.

The endpoints point at a replay server on 127.0.0.1 speaking the providers' wire formats.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from conftest import DaemonProcess
from replay_server import Drop, ReplayServer, Reply, anthropic_text, openai_text

KEY = "sk-test-0123456789abcdef0123456789abcdef"


def parley(daemon: DaemonProcess, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parleyd", *args], env=daemon.env, input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
def upstream():
    with ReplayServer() as server:
        yield server


@pytest.fixture
def configured(tmp_path, upstream):
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True, mode=0o700)
    (home / "config" / "config.toml").write_text(
        f"""default_model = "echo"

[aliases]
fast = "mini"

[[endpoints]]
name = "local-openai"
type = "openai"
base_url = "{upstream.url}/v1"
key = "local-openai"
models = [{{ id = "mini", name = "upstream-mini", aliases = ["m"] }}]

[[endpoints]]
name = "claude"
type = "anthropic"
base_url = "{upstream.url}"
api_key_env = "TEST_ANTHROPIC_KEY"
models = [{{ id = "sonnet" }}]
"""
    )
    proc = DaemonProcess(home)
    yield proc
    if proc.process is not None:
        proc.stop()


async def test_an_endpoint_from_config_with_a_stored_key(configured, upstream):
    out = parley(configured, "keys", "set", "local-openai", stdin=KEY + "\n")
    assert out.returncode == 0, out.stderr
    keys_file = configured.home / "config" / "keys.json"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert parley(configured, "keys", "list").stdout == "local-openai\n"
    configured.start()
    conn = await configured.connect("unix")
    models = {m["id"]: m for m in (await conn.request("models/list"))["models"]}
    assert models["mini"]["provider"] == "local-openai" and set(models["mini"]["aliases"]) == {"m", "fast"}
    assert models["sonnet"]["provider"] == "claude"

    upstream.queue(Reply(body=openai_text("Hello", " from", " upstream", usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})))
    started = await conn.request("prompt", {"model": "fast", "prompt": "hi", "system": "be brief", "options": {"temperature": 0}})
    events = await conn.until_done(started["responseId"])
    assert "".join(e.get("chunk", "") for e in events) == "Hello from upstream"
    assert events[-1]["status"] == "completed"
    request = upstream.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json()
    assert body["model"] == "upstream-mini" and body["stream"] is True and body["temperature"] == 0
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    # the key never reaches a client or the log
    assert KEY not in json.dumps(conn.notifications) and KEY not in configured.log


async def test_a_missing_key_is_an_auth_error_naming_where_to_set_it(configured, upstream):
    configured.start()
    conn = await configured.connect("unix")
    started = await conn.request("prompt", {"model": "sonnet", "prompt": "hi"})
    events = await conn.until_done(started["responseId"])
    error = events[-2]
    assert error["type"] == "error" and error["code"] == "auth"
    assert "TEST_ANTHROPIC_KEY" in error["message"]
    assert upstream.requests == [], "nothing is sent without a key"


async def test_an_upstream_drop_mid_stream_keeps_the_partial_answer(configured, upstream, monkeypatch):
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", KEY)
    configured.start()
    conn = await configured.connect("unix")
    upstream.queue(Reply(body=anthropic_text("Partial", " answer")[:-2] + [Drop()]))
    started = await conn.request("prompt", {"model": "sonnet", "prompt": "hi"})
    events = await conn.until_done(started["responseId"])
    assert [e["type"] for e in events][-2:] == ["error", "done"]
    assert events[-2]["code"] == "network" and events[-1]["status"] == "error"
    record = await conn.request("response/get", {"responseId": started["responseId"]})
    assert record["status"] == "error"
    assert record["messages"][0]["parts"][0]["text"].startswith("Partial")
    assert upstream.requests[-1].headers["x-api-key"] == KEY


async def test_models_default_and_config_changes_apply_to_a_running_daemon(configured, tmp_path):
    configured.start()
    conn = await configured.connect("unix")
    assert parley(configured, "models", "default").stdout == "echo\n"
    out = parley(configured, "models", "default", "mini")
    assert out.returncode == 0, out.stderr
    listed = (await conn.request("models/list"))["models"]
    assert next(m["id"] for m in listed if m["default"]) == "mini"
    text = (configured.home / "config" / "config.toml").read_text()
    assert text.startswith('default_model = "mini"\n\n[aliases]\nfast = "mini"\n'), "set in place"
    assert text.count("[[endpoints]]") == 2 and text.count("default_model") == 1, "the rest of the file is kept"
    bad = parley(configured, "models", "default", "no-such-model")
    assert bad.returncode == 1 and "no-such-model" in bad.stderr
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    refused = parley(configured, "models", "add-gguf", str(not_gguf))
    assert refused.returncode == 1 and "not a GGUF file" in refused.stderr


async def test_a_broken_config_keeps_the_daemon_serving(configured):
    configured.start()
    conn = await configured.connect("unix")
    (configured.home / "config" / "config.toml").write_text("[[endpoints]]\nname = 3\n")
    listed = (await conn.request("models/list"))["models"]
    assert {"echo", "mini", "sonnet"} <= {m["id"] for m in listed}, "the models stay as they were"
    assert "config.toml" in configured.log and "keeping the models as they were" in configured.log
    out = parley(configured, "models", "default", "echo")
    assert out.returncode == 1 and "config.toml" in out.stderr
