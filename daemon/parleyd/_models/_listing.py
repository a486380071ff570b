"""The models a provider lists at ``GET /v1/models``: cached on disk, refreshed in the background.

The daemon starts with the cached list (or the catalog's built-in one), so it never waits on
the network; a refresh runs at start and then every few hours. A failed refresh keeps the
last good list and logs one line. The cache file holds, per endpoint, its base URL, the
fetch time and the model ids; never a key, which is read from ``_keys`` at each fetch.

OpenAI's list has no capability field and holds embeddings, speech, image and moderation
models too, so chat models are told by name: an id containing one of :data:`OPENAI_NOT_CHAT`
is dropped. That is a deny-list: a new kind of non-chat model shows up until it is added.
Anthropic lists only Messages models, newest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from .._keys import find_key

log = logging.getLogger(__name__)

REFRESH_EVERY = 4 * 3600.0  # seconds between two fetches of one list

#: Words of OpenAI model ids that are not chat-completions models (embeddings, speech,
#: images, moderation, legacy completions, and the models served only by the Responses API).
OPENAI_NOT_CHAT = (
    "embed", "tts", "whisper", "transcribe", "audio", "realtime", "dall-e", "image", "sora",
    "moderation", "davinci", "babbage", "instruct", "computer-use", "codex", "deep-research", "-pro",
)  # fmt: skip

_MAX_PAGES = 50


@dataclass(frozen=True)
class Source:
    """An endpoint whose models are listed; ``key`` and ``key_env`` say where its key is found."""

    name: str
    type: str  # "openai" or "anthropic"
    base_url: str
    key: str
    key_env: str


class Listing(msgspec.Struct):
    base_url: str
    fetched_at: float  # Unix time
    models: list[str]
    context_windows: dict[str, int] = {}  # of the models whose entry gave one


class Entry(msgspec.Struct):
    """A listed model: its id and, where the server says, its context window in tokens (OpenRouter's
    and LM Studio's ``context_length``, vLLM's ``max_model_len``, Anthropic's ``max_input_tokens``).
    Those are taken as any JSON: a server that sends them otherwise still has its list read."""

    id: str
    context_length: Any = None
    max_model_len: Any = None
    max_input_tokens: Any = None

    @property
    def context_window(self) -> int | None:
        given = (self.context_length, self.max_model_len, self.max_input_tokens)
        return next((n for n in given if type(n) is int and n > 0), None)


class _Page(msgspec.Struct):
    """One page of either provider's list (OpenAI's has no paging fields)."""

    data: list[Entry]
    has_more: bool = False
    last_id: str | None = None


class ListingFailed(Exception):
    """A list could not be fetched; the message names neither the key nor a response body."""


def chat_models(kind: str, ids: Iterable[str]) -> list[str]:
    """The ids a chat model can be asked for, in the provider's order."""
    if kind != "openai":
        return list(ids)
    return [i for i in ids if not any(word in i.lower() for word in OPENAI_NOT_CHAT)]


async def fetch(source: Source, key: str | None) -> list[Entry]:
    """Every model the provider lists, following Anthropic's pages (``has_more``/``after_id``)."""
    import httpx  # here, not at import: a daemon with no provider key never loads it

    from ._http._model import LOOPBACK
    from ._http.anthropic import API_VERSION

    base = source.base_url.rstrip("/")
    if source.type == "openai":
        url, headers = f"{base}/models", ({"authorization": f"Bearer {key}"} if key else {})
    else:
        url = f"{base}/models" if base.endswith("/v1") else f"{base}/v1/models"
        headers = {"anthropic-version": API_VERSION, **({"x-api-key": key} if key else {})}
    entries: list[Entry] = []
    after: str | None = None
    async with httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=10.0), trust_env=True, mounts=LOOPBACK) as client:
        for _ in range(_MAX_PAGES):
            params = {"limit": 1000, **({"after_id": after} if after else {})} if source.type == "anthropic" else {}
            try:
                response = await client.get(url, headers=headers, params=params)
            except httpx.HTTPError as exc:
                raise ListingFailed(f"{type(exc).__name__}: {exc}".replace(key or "\0", "…")) from None
            if response.status_code != 200:
                raise ListingFailed(f"HTTP {response.status_code}")  # not the body: a 401's echoes part of the key
            try:
                page = msgspec.json.decode(response.content, type=_Page)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise ListingFailed("not a model list") from None
            entries += page.data
            if not (page.has_more and page.last_id):
                return entries
            after = page.last_id
    raise ListingFailed(f"more than {_MAX_PAGES} pages")


class ModelLists:
    """Each listed endpoint's last good list; :attr:`version` goes up whenever one changes."""

    def __init__(self, path: Path, *, every: float = REFRESH_EVERY) -> None:
        self.path = path
        self.every = every
        self.version = 0
        self._lists = _load(path)
        self._tasks: dict[Source, asyncio.Task[None]] = {}

    def models(self, source: Source) -> list[str] | None:
        """The cached ids, or None before the first fetch from this base URL."""
        listing = self._lists.get(source.name)
        return listing.models if listing is not None and listing.base_url == source.base_url else None

    def context_window(self, source: Source, model_id: str) -> int | None:
        """The context window the provider's list gave for this model, if it gave one."""
        listing = self._lists.get(source.name)
        return listing.context_windows.get(model_id) if listing is not None and listing.base_url == source.base_url else None

    def watch(self, sources: Iterable[Source]) -> None:
        """Keep one refresh task per source, and none for the others. Outside an event loop
        (a registry built by a test or a tool) nothing is started."""
        wanted = set(sources)
        for source in [s for s in self._tasks if s not in wanted]:
            self._tasks.pop(source).cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for source in wanted - self._tasks.keys():
            self._tasks[source] = loop.create_task(self._refresh_forever(source), name=f"model list of {source.name}")

    async def _refresh_forever(self, source: Source) -> None:
        while True:
            await self.refresh(source)
            await asyncio.sleep(self.every)

    async def refresh(self, source: Source) -> bool:
        """Fetch one list now; whether it changed. A failure keeps the last list and logs one line."""
        try:
            entries = await fetch(source, find_key(stored=source.key, env=source.key_env))
            ids = chat_models(source.type, [entry.id for entry in entries])
            if not ids:
                raise ListingFailed("no chat models listed")
        except ListingFailed as exc:
            kept = self.models(source)
            log.warning("%s: could not list its models (%s); %s", source.name, exc, f"keeping the {len(kept)} listed before" if kept else "serving the built-in list")
            return False
        chat = set(ids)
        windows = {e.id: window for e in entries if e.id in chat and (window := e.context_window) is not None}
        before = self._lists.get(source.name)
        changed = ids != self.models(source) or windows != (before.context_windows if before is not None else {})
        self._lists[source.name] = Listing(source.base_url, time.time(), ids, windows)
        self._save()
        if changed:
            self.version += 1
            log.info("%s: %d models listed", source.name, len(ids))
        return changed

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(msgspec.json.format(msgspec.json.encode(self._lists), indent=2))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.path, exc)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks = {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _load(path: Path) -> dict[str, Listing]:
    try:
        return msgspec.json.decode(path.read_bytes(), type=dict[str, Listing])
    except FileNotFoundError:
        return {}
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}
