"""llm's stream events as parley's events, and a plugin's exceptions as parley's error kinds.

llm's ``StreamEvent``s map one to one: ``text``, ``reasoning`` (with ``redacted`` and its
``provider_metadata``), ``tool_call_name`` / ``tool_call_args`` (``server_executed`` kept), and
``tool_result``, whose chunks are gathered into one parley ``tool_result`` event. Tool calls a
plugin adds with ``response.add_tool_call()`` instead of streaming them, and the usage it sets,
come after the stream ends. A call llm streams without an id (Gemini's) gets one per part.

Provider metadata (Anthropic's thinking signatures, Gemini's ``thoughtSignature``, OpenAI's
``encrypted_content``) is kept under the ``llm`` key of parley's ``providerMetadata``, and given
back to the plugin on the next turn (``_bridge``): parley's own providers' metadata never reaches
a plugin, nor a plugin's them. Parley's events carry it on reasoning only.
"""

from __future__ import annotations

from typing import Any

import msgspec

from parley._types import AnyEvent, ReasoningEvent, TextEvent, ToolCallArgsEvent, ToolCallNameEvent, ToolResultEvent, UsageEvent

from .._base import ModelFailure

META_KEY = "llm"  # where a plugin's provider metadata lives in parley's providerMetadata


def wrap(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    return {META_KEY: metadata} if metadata else None


def unwrap(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    return (metadata or {}).get(META_KEY) or None


class EventMapper:
    """Feed it llm's events in order (their ``part_index`` resolved, as llm's responses yield them)."""

    def __init__(self) -> None:
        self._call_ids: dict[int, str] = {}  # part index -> the tool call id parley shows
        self._streamed: set[str] = set()
        self._result: Any = None  # the tool_result part being gathered: its first event
        self._result_chunks: list[str] = []

    def feed(self, event: Any) -> list[AnyEvent]:
        out = self._end_result() if self._result is not None and not self._continues_result(event) else []
        kind = event.type
        if kind == "text" and event.chunk:
            out.append(TextEvent(chunk=event.chunk))
        elif kind == "reasoning" and (event.chunk or event.redacted or event.provider_metadata):
            out.append(ReasoningEvent(chunk=event.chunk, redacted=event.redacted, provider_metadata=wrap(event.provider_metadata)))
        elif kind == "tool_call_name":
            out.append(ToolCallNameEvent(chunk=event.chunk, tool_call_id=self._call_id(event), server_executed=event.server_executed))
        elif kind == "tool_call_args":
            out.append(ToolCallArgsEvent(chunk=event.chunk, tool_call_id=self._call_id(event)))
        elif kind == "tool_result":
            if self._result is None:
                self._result = event
            self._result_chunks.append(event.chunk)
        return out

    def finish(self, tool_calls: list[Any], usage: Any) -> list[AnyEvent]:
        """What follows the stream: the calls added with ``add_tool_call()``, then the usage."""
        out = self._end_result()
        for call in tool_calls:
            if call.tool_call_id in self._streamed:
                continue
            call_id = call.tool_call_id or f"call_{len(self._call_ids) + len(out)}"
            out.append(ToolCallNameEvent(chunk=call.name, tool_call_id=call_id))
            out.append(ToolCallArgsEvent(chunk=msgspec.json.encode(call.arguments or {}).decode(), tool_call_id=call_id))
        if usage is not None and (usage.input is not None or usage.output is not None or usage.details):
            out.append(UsageEvent(input=usage.input, output=usage.output, details=usage.details or None))
        return out

    def _call_id(self, event: Any) -> str:
        known = self._call_ids.get(event.part_index)
        if known is None:
            known = self._call_ids[event.part_index] = event.tool_call_id or f"call_{event.part_index}"
            self._streamed.add(known)
        return known

    def _continues_result(self, event: Any) -> bool:
        return event.type == "tool_result" and event.part_index == self._result.part_index

    def _end_result(self) -> list[AnyEvent]:
        first, chunks = self._result, self._result_chunks
        if first is None:
            return []
        self._result, self._result_chunks = None, []
        return [
            ToolResultEvent(
                tool_call_id=first.tool_call_id or self._call_ids.get(first.part_index, f"call_{first.part_index}"),
                name=first.tool_name or "",
                output="".join(chunks),
                server_executed=first.server_executed,
            )
        ]


#: HTTP statuses a provider SDK's exception may carry, as parley's error kinds.
_STATUS_KINDS = {400: "bad_request", 401: "auth", 403: "auth", 404: "bad_request", 408: "timeout", 413: "context_length", 422: "bad_request", 429: "rate_limited", 529: "overloaded"}
_RETRYABLE = {"rate_limited", "overloaded", "network", "timeout", "provider_error"}


def failure(exc: BaseException) -> ModelFailure:
    """A plugin's exception as the error a client can act on: llm's ``NeedsKeyException`` is
    ``auth``; an SDK exception with an HTTP status (``status_code``, or ``response.status_code``)
    is that status's kind; a connection or timeout error (by its class name, as SDKs each have
    their own) is ``network`` / ``timeout``; anything else is ``model_error``."""
    if isinstance(exc, ModelFailure):
        return exc
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    names = [cls.__name__ for cls in type(exc).__mro__]
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if "NeedsKeyException" in names:
        kind = "auth"
    elif isinstance(status, int):
        kind = _STATUS_KINDS.get(status, "provider_error" if status >= 500 else "bad_request")
    elif any("Timeout" in name for name in names):
        kind = "timeout"
    elif any("Connect" in name for name in names) or isinstance(exc, ConnectionError):
        kind = "network"
    elif "ConversationNotSupported" in names or isinstance(exc, ValueError) and "pydantic" in type(exc).__module__:
        kind = "bad_request"
    else:
        kind = "model_error"
    return ModelFailure(kind, message, retryable=kind in _RETRYABLE)
