"""The built-in OpenAI and Anthropic endpoints serve the models their provider lists.

The providers are a replay server on 127.0.0.1 answering ``GET /v1/models`` in each one's
documented format; the built-in endpoints are moved there with OPENAI_BASE_URL and
ANTHROPIC_BASE_URL, as the providers' SDKs are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse

import pytest

from conftest import DaemonProcess
from parleyd._models._listing import ModelLists, Source
from replay_server import ReplayServer, Reply, anthropic_models, json_reply, openai_models, openai_text

KEY = "sk-test-0123456789abcdef0123456789abcdef"
OPENAI_LIST = ["gpt-test-1", "text-embedding-3-small", "gpt-4o-mini", "whisper-1", "tts-1", "dall-e-3", "omni-moderation-latest", "gpt-image-1"]
OPENAI_CHAT = {"gpt-test-1", "gpt-4o-mini"}


@pytest.fixture
def home(provider_free_home):
    (provider_free_home / "config" / "config.toml").write_text('default_model = "echo"\n')
    return provider_free_home


def started(home) -> DaemonProcess:
    daemon = DaemonProcess(home)
    daemon.start()
    return daemon


async def served(daemon: DaemonProcess, provider: str, until=lambda models: bool(models), timeout: float = 10.0) -> dict[str, dict]:
    """Poll ``models/list`` until ``until`` holds for the provider's models; those models."""
    conn = await daemon.connect("unix")
    deadline = time.monotonic() + timeout
    try:
        while True:
            models = {m["id"]: m for m in (await conn.request("models/list"))["models"] if m["provider"] == provider}
            if until(models):
                return models
            if time.monotonic() > deadline:
                raise AssertionError(f"{provider} serves {sorted(models)}")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def until_logged(daemon: DaemonProcess, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in daemon.log:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged:\n{daemon.log}")
        time.sleep(0.05)
    return daemon.log


async def test_openai_chat_models_are_listed_cached_and_served_offline(home, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ReplayServer() as upstream:
        monkeypatch.setenv("OPENAI_BASE_URL", upstream.url + "/v1")
        upstream.queue(openai_models(*OPENAI_LIST))
        daemon = started(home)
        try:
            models = await served(daemon, "openai", lambda m: set(m) == OPENAI_CHAT)
            assert models["gpt-4o-mini"]["aliases"] == ["4o-mini"]
            request = upstream.requests[0]
            assert (request.method, request.path) == ("GET", "/v1/models")
            assert request.headers["authorization"] == f"Bearer {KEY}"

            upstream.queue(Reply(body=openai_text("listed", " and", " served")))
            conn = await daemon.connect("unix")
            answer = await conn.request("prompt", {"model": "gpt-test-1", "prompt": "hi"})
            events = await conn.until_done(answer["responseId"])
            assert "".join(e.get("chunk", "") for e in events) == "listed and served"
            assert upstream.requests[-1].json()["model"] == "gpt-test-1"
            await conn.close()
        finally:
            daemon.stop()

    cache = home / "data" / "provider-models.json"
    text = cache.read_text()
    assert KEY not in text
    listing = json.loads(text)["openai"]
    assert listing["models"] == ["gpt-test-1", "gpt-4o-mini"]
    assert listing["base_url"] == upstream.url + "/v1" and time.time() - listing["fetched_at"] < 60

    # the replay server is gone: the cached list is served from the start, and the failure logged once
    daemon = started(home)
    try:
        assert set(await served(daemon, "openai", timeout=0)) == OPENAI_CHAT
        log = until_logged(daemon, "openai: could not list its models")
        assert "keeping the 2 listed before" in log and KEY not in log
    finally:
        daemon.stop()
    assert json.loads(cache.read_text())["openai"] == listing, "a failure keeps the last good list"


async def test_before_a_first_list_the_built_in_models_are_served(home, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ReplayServer() as upstream:
        monkeypatch.setenv("OPENAI_BASE_URL", upstream.url + "/v1")
        upstream.queue(json_reply(500, {"error": {"message": f"Incorrect API key provided: {KEY[:8]}…"}}))
        daemon = started(home)
        try:
            models = await served(daemon, "openai", timeout=0)
            assert "gpt-5.5" in models and models["gpt-4o-mini"]["aliases"] == ["4o-mini"]
            log = until_logged(daemon, "openai: could not list its models (HTTP 500); serving the built-in list")
            assert KEY[:8] not in log, "not the error body, which may quote the key"
        finally:
            daemon.stop()
    assert not (home / "data" / "provider-models.json").exists()


async def test_a_changed_list_replaces_the_served_models(home, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ReplayServer() as upstream:
        monkeypatch.setenv("OPENAI_BASE_URL", upstream.url + "/v1")
        cache = home / "data" / "provider-models.json"
        cache.parent.mkdir(parents=True)
        cache.write_text(json.dumps({"openai": {"base_url": upstream.url + "/v1", "fetched_at": 0, "models": ["gpt-old", "gpt-kept"]}}))
        upstream.queue(openai_models("gpt-kept", "gpt-new"))
        daemon = started(home)
        try:
            await served(daemon, "openai", lambda m: set(m) == {"gpt-kept", "gpt-new"})
        finally:
            daemon.stop()
        assert json.loads(cache.read_text())["openai"]["models"] == ["gpt-kept", "gpt-new"]


async def test_anthropic_lists_every_page(home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with ReplayServer() as upstream:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", upstream.url)
        upstream.queue(
            anthropic_models("claude-opus-9", "claude-sonnet-9", has_more=True),
            anthropic_models("claude-sonnet-8-20260101", "claude-haiku-8"),
        )
        daemon = started(home)
        try:
            models = await served(daemon, "anthropic", lambda m: len(m) == 4)
        finally:
            daemon.stop()
    assert list(models) == ["claude-opus-9", "claude-sonnet-9", "claude-sonnet-8-20260101", "claude-haiku-8"]
    assert [models[m]["aliases"] for m in models] == [["opus"], ["sonnet"], [], ["haiku"]], "the newest of each family"
    first, second = upstream.requests
    assert [urllib.parse.urlsplit(r.path).path for r in upstream.requests] == ["/v1/models", "/v1/models"]
    assert "after_id" not in urllib.parse.parse_qs(urllib.parse.urlsplit(first.path).query)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(second.path).query)["after_id"] == ["claude-sonnet-9"]
    assert all(r.headers["x-api-key"] == KEY and r.headers["anthropic-version"] == "2023-06-01" for r in upstream.requests)


async def test_a_configured_endpoint_without_models_serves_its_list(home):
    with ReplayServer() as upstream:
        (home / "config" / "config.toml").write_text(
            f'default_model = "echo"\n\n[[endpoints]]\nname = "gateway"\ntype = "openai"\nbase_url = "{upstream.url}/v1"\n'
        )
        upstream.queue(openai_models("llama3.2", "nomic-embed-text"))
        daemon = started(home)
        try:
            assert list(await served(daemon, "gateway")) == ["llama3.2"]
        finally:
            daemon.stop()
    assert "authorization" not in upstream.requests[0].headers, "no key is configured"


async def test_a_failed_refresh_keeps_the_last_list(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path))
    monkeypatch.setenv("TEST_LIST_KEY", KEY)
    caplog.set_level(logging.INFO, "parleyd")
    replies = [openai_models("gpt-a"), json_reply(503, {"error": {"message": KEY}})]
    with ReplayServer(lambda request: replies.pop(0) if replies else openai_models("gpt-a", "gpt-b")) as upstream:
        source = Source("openai", "openai", upstream.url + "/v1", key="openai", key_env="TEST_LIST_KEY")
        lists = ModelLists(tmp_path / "lists.json")
        assert await lists.refresh(source) is True
        assert await lists.refresh(source) is False
        assert lists.models(source) == ["gpt-a"], "the 503 kept the first list"
        assert await lists.refresh(source) is True
        assert lists.models(source) == ["gpt-a", "gpt-b"] and lists.version == 2

        again = ModelLists(tmp_path / "lists.json", every=0.01)  # read back from the cache
        assert again.models(source) == ["gpt-a", "gpt-b"]
        again.watch([source])
        try:
            deadline = time.monotonic() + 5
            while len(upstream.requests) < 6 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            await again.aclose()
        assert len(upstream.requests) >= 6, "refreshed at start and then every `every` seconds"
        assert again.version == 0, "an unchanged list is no change"
    failures = [r.getMessage() for r in caplog.records if "could not list" in r.getMessage()]
    assert failures == ["openai: could not list its models (HTTP 503); keeping the 1 listed before"]
    assert KEY not in caplog.text
