"""The daemon's side of a plugin model: its listing, its options, and where it runs.

Options go by llm's names (``example_bool``, ``max_tokens``), or by the wire's camelCase of
them (``exampleBool``, as parley's clients write ``max_tokens``); ``schema`` is parley's
structured-output option, passed to the model as llm's ``schema=``. They are checked when the
prompt arrives against the JSON schema of the plugin's own Options class (read at discovery:
an unknown option, or a value of the wrong type, is -32602 naming it); the class itself checks
them again when the model runs (its validators: a ``bad_request`` error).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from parley._options import wire_name
from parley._types import AnyEvent, ModelCapabilities

from .._base import Model, ModelRequest
from .._worker import Worker
from ._shapes import PREFIX, Described, LlmJob


class LlmOptions(msgspec.Struct, kw_only=True):
    """A plugin model's parsed options: llm's by llm's names, and parley's ``schema``."""

    values: dict[str, Any] = {}
    schema: dict[str, Any] | None = None


class LlmModel(Model):
    """A model registered by an llm plugin, served as ``llm/<model_id>``."""

    Options = LlmOptions

    def __init__(self, described: Described) -> None:
        super().__init__(described.id, [PREFIX + a for a in described.aliases])
        self.described = described
        self.provider = described.provider  # type: ignore[misc] - per model: the plugin's distribution
        self.capabilities = ModelCapabilities(  # type: ignore[misc]
            streaming=described.streaming,
            tools=described.tools,
            reasoning=described.reasoning,
            attachments=list(described.attachments),
            schema=described.schema,
        )
        fields = list(described.options.get("properties", {}))
        self._names = {**{wire_name(f): f for f in fields}, **{f: f for f in fields}}
        self._validator: Any = None

    def parse_options(self, options: dict[str, Any]) -> LlmOptions:
        values: dict[str, Any] = {}
        schema = None
        for name, value in options.items():
            if name == "schema":
                if value is not None and not self.described.schema:
                    raise ValueError(f"option schema: the llm model {self.described.model_id!r} does not support schemas")
                schema = value
            elif name in self._names:
                values[self._names[name]] = value
            elif self.described.options:  # {}: pydantic gave no schema, the model's Options decides
                known = ", ".join(sorted(set(self._names.values()))) or "none"
                raise ValueError(f"unknown option `{name}` (this model takes: {known})")
            else:
                values[name] = value
        if values and self.described.options:
            self._check(values)
        return LlmOptions(values=values, schema=schema)

    def _check(self, values: dict[str, Any]) -> None:
        from jsonschema.exceptions import best_match

        if self._validator is None:
            import jsonschema

            cls = jsonschema.validators.validator_for(self.described.options, default=jsonschema.Draft202012Validator)
            self._validator = cls(self.described.options)
        error = best_match(self._validator.iter_errors(values))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "options"
            raise ValueError(f"option {where}: {error.message}")

    def job(self, request: ModelRequest) -> LlmJob:
        options = request.options if isinstance(request.options, LlmOptions) else LlmOptions()
        return LlmJob(messages=request.messages, system=request.system, options=options.values, schema=options.schema, tools=request.tools)


class InProcessLlmModel(LlmModel):
    """An async plugin model, run in the daemon's event loop; its plugin is imported at the first
    prompt (in a thread, so the loop serves on meanwhile)."""

    def __init__(self, described: Described) -> None:
        super().__init__(described)
        self._model: Any = None
        self._loading: asyncio.Lock | None = None

    async def stream(self, request: ModelRequest) -> AsyncIterator[AnyEvent]:
        from ._bridge import run_async

        model = await self._loaded()
        async with contextlib.aclosing(run_async(model, self.job(request))) as events:
            async for event in events:
                yield event

    async def _loaded(self) -> Any:
        if self._model is None:
            self._loading = self._loading or asyncio.Lock()
            async with self._loading:
                if self._model is None:
                    from ._bridge import load_model

                    d = self.described
                    self._model = await asyncio.to_thread(load_model, d.plugin, d.model_id, want_async=True)
        return self._model


class WorkerLlmModel(LlmModel):
    """A sync plugin model, run in a worker process of its own (``_runner``)."""

    def __init__(self, described: Described, *, unload_after: float | None = None, extra_buffers: str = "auto") -> None:
        super().__init__(described)
        settings = {"plugin": described.plugin, "model_id": described.model_id, "extra_buffers": extra_buffers}
        self.worker = Worker(described.id, "llm", settings, unload_after=unload_after)

    async def stream(self, request: ModelRequest) -> AsyncIterator[AnyEvent]:
        assert self.worker is not None
        async with contextlib.aclosing(self.worker.stream(msgspec.to_builtins(self.job(request)))) as events:
            async for event in events:
                yield event

    async def aclose(self) -> None:
        assert self.worker is not None
        await self.worker.aclose()


def make_model(described: Described, *, unload_after: float | None, extra_buffers: str = "auto") -> LlmModel:
    """The model for a description, where the rule puts it (``Described.in_process``); a worker
    is set up by the config's ``[local]`` table, as a local model's is."""
    if described.in_process:
        return InProcessLlmModel(described)
    return WorkerLlmModel(described, unload_after=unload_after, extra_buffers=extra_buffers)
