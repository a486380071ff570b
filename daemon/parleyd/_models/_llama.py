"""llama.cpp in a model worker process: the runner behind every local model.

llama-cpp-python is imported here only, and this module runs only in a worker process
(``_worker``): a crash of the native code ends that process, never the daemon.

Extra buffer types: llama.cpp repacks weights into layouts for the CPU at hand (AMX
tiles on Intel Sapphire Rapids and later; interleaved blocks for AVX2 and NEON). The
AMX path segfaults on the first decode of some models (ggml-org/llama.cpp#20824), so
on a CPU that reports ``amx_int8`` a model is loaded without extra buffer types;
elsewhere llama.cpp's own choice stands. The ``extra_buffers`` setting (``[local]`` in
config.toml: ``auto``, ``on``, ``off``) overrides.

Generation: ``create_chat_completion`` samples every token through ``Llama.generate``;
the runner wraps it to count tokens (the stream has no usage) and to stop at the
first token sampled after a cancel, even while llama-cpp-python holds text back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from parley._types import AnyEvent, TextEvent, ToolCallArgsEvent, ToolCallNameEvent, UsageEvent

from ._base import ModelFailure

log = logging.getLogger(__name__)

ExtraBuffers = Literal["auto", "on", "off"]


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux reports them (x86 ``flags``, Arm ``Features``)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def use_extra_buffers(setting: ExtraBuffers, flags: set[str]) -> bool:
    """Whether to let llama.cpp repack weights into extra buffer types on this CPU."""
    if setting != "auto":
        return setting == "on"
    return "amx_int8" not in flags


@contextlib.contextmanager
def model_params(**fields: Any) -> Iterator[None]:
    """While a ``Llama`` is built, its model params get ``fields`` (llama-cpp-python has no
    argument for ``use_extra_bufts``: it takes ``llama_model_default_params()`` as it is)."""
    import llama_cpp.llama_cpp as native

    defaults = native.llama_model_default_params

    def patched() -> Any:
        params = defaults()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    native.llama_model_default_params = patched
    try:
        yield
    finally:
        native.llama_model_default_params = defaults


class LlamaRunner:
    """One GGUF model, loaded once; runs one job at a time (see ``_worker._process``)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.path = settings["path"]
        self.n_ctx: int = settings.get("n_ctx", 4096)
        self.threads: int | None = settings.get("threads")
        self.chat_format: str | None = settings.get("chat_format")
        self.extra_buffers: ExtraBuffers = settings.get("extra_buffers", "auto")
        self._llama: Any = None

    def load(self) -> dict[str, Any]:
        try:
            llama_class = _counting_llama_class()
        except ImportError:
            raise ModelFailure("model_error", "llama-cpp-python is not installed: pip install 'parleyd[local]' (see the README)") from None
        extra = use_extra_buffers(self.extra_buffers, cpu_flags())
        kwargs: dict[str, Any] = {"model_path": self.path, "n_ctx": self.n_ctx, "verbose": False}
        if self.threads:
            kwargs["n_threads"] = self.threads
        if self.chat_format:
            kwargs["chat_format"] = self.chat_format
        try:
            with model_params(use_extra_bufts=extra):
                self._llama = llama_class(**kwargs)
        except Exception as exc:  # noqa: BLE001 - llama-cpp-python raises ValueError for a file it cannot load
            raise ModelFailure("model_error", f"cannot load {self.path}: {exc}") from None
        return {"nCtx": self._llama.n_ctx(), "threads": self._llama.n_threads, "extraBuffers": extra}

    def progress(self) -> int:
        """Tokens in the context now: the prompt and the answer so far (read from any thread)."""
        return self._llama.n_tokens if self._llama is not None else 0

    def run(self, request: dict[str, Any], cancel: threading.Event, stats: dict[str, int]) -> Iterator[AnyEvent]:
        """The events of one chat completion: ``request`` is ``{messages, params, tool}``."""
        llama = self._llama
        params = dict(request["params"])
        if tool := request.get("tool"):
            params["tools"] = [tool]
            params["tool_choice"] = {"type": "function", "function": {"name": tool["function"]["name"]}}
        stats.update(prompt_tokens=0, completion_tokens=0)
        llama.parley_job = (cancel, stats)
        finish = None
        try:
            chunks = llama.create_chat_completion(messages=request["messages"], stream=True, **params)
            try:
                calls: dict[int, str] = {}
                for chunk in chunks:
                    if cancel.is_set():
                        return
                    delta = chunk["choices"][0]["delta"]
                    finish = chunk["choices"][0].get("finish_reason") or finish
                    if text := delta.get("content"):
                        yield TextEvent(chunk=text)
                    for call in delta.get("tool_calls") or ():
                        if call["index"] not in calls:
                            calls[call["index"]] = call["id"]
                            yield ToolCallNameEvent(chunk=call["function"]["name"], tool_call_id=call["id"])
                        if arguments := call["function"].get("arguments"):
                            yield ToolCallArgsEvent(chunk=arguments, tool_call_id=calls[call["index"]])
            finally:
                chunks.close()  # ends llama's own generators here, on this thread
        except ValueError as exc:
            if "context window" in str(exc):
                raise ModelFailure("context_length", f"{exc} (n_ctx {self.n_ctx})") from None
            raise ModelFailure("model_error", str(exc)) from None
        finally:
            llama.parley_job = None
        # the finish reason as the OpenAI provider reports it: "length" when maxTokens cut the answer
        details = {"stop_reason": finish} if finish else None
        yield UsageEvent(input=stats["prompt_tokens"], output=stats["completion_tokens"], details=details)


_LLAMA_CLASS: Any = None


def _counting_llama_class() -> Any:
    """``llama_cpp.Llama`` with a ``generate`` that counts tokens and honours a job's cancel flag."""
    global _LLAMA_CLASS
    if _LLAMA_CLASS is not None:
        return _LLAMA_CLASS
    import llama_cpp

    is_eog = llama_cpp.llama_vocab_is_eog

    class CountingLlama(llama_cpp.Llama):
        parley_job: tuple[threading.Event, dict[str, int]] | None = None

        def generate(self, tokens, *args, **kwargs):  # type: ignore[no-untyped-def]
            tokens = list(tokens)
            inner = super().generate(tokens, *args, **kwargs)
            if self.parley_job is None:
                yield from inner
                return
            cancel, stats = self.parley_job
            stats["prompt_tokens"] = len(tokens)
            vocab = self._model.vocab
            try:
                for token in inner:
                    if cancel.is_set():
                        return
                    if not is_eog(vocab, token):
                        stats["completion_tokens"] += 1
                    yield token
            finally:
                inner.close()

    _LLAMA_CLASS = CountingLlama
    return CountingLlama
