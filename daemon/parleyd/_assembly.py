"""Turning a response's events into its output messages.

The assembler is also what assigns ``partIndex`` and ``messageIndex``: a chunk
continues the last part when it is of the same kind (and, for tool calls, the
same ``toolCallId``); otherwise it opens a new part. It is used live, while a
response streams, and after a crash, to rebuild a partial output from the
stored events.
"""

from __future__ import annotations

import json
from typing import Any

from parley._types import (
    AnyEvent,
    AnyPart,
    Attachment,
    AttachmentEvent,
    AttachmentPart,
    ErrorEvent,
    ErrorInfo,
    Message,
    ReasoningEvent,
    ReasoningPart,
    TextEvent,
    TextPart,
    ToolCallArgsEvent,
    ToolCallNameEvent,
    ToolCallPart,
    ToolResultEvent,
    ToolResultPart,
    Usage,
    UsageEvent,
)


class _Draft:
    """A part being built: its kind, key and accumulated chunks."""

    __slots__ = ("index", "kind", "key", "chunks", "args", "fields")

    def __init__(self, index: int, kind: str, key: str | None, fields: dict[str, Any] | None = None) -> None:
        self.index = index
        self.kind = kind
        self.key = key
        self.chunks: list[str] = []
        self.args: list[str] = []
        self.fields = fields or {}


class Assembler:
    def __init__(self) -> None:
        self._parts: list[_Draft] = []
        self.message_index = 0
        self.usage: Usage | None = None
        self.error: ErrorInfo | None = None

    def add(self, event: AnyEvent) -> None:
        """Take one event, stamping the indices of the chunk events."""
        if isinstance(event, TextEvent):
            self._chunk(event, "text", None).chunks.append(event.chunk)
        elif isinstance(event, ReasoningEvent):
            draft = self._chunk(event, "reasoning", None)
            draft.chunks.append(event.chunk)
            if event.redacted:
                draft.fields["redacted"] = True
            if event.provider_metadata:
                draft.fields.setdefault("provider_metadata", {}).update(event.provider_metadata)
        elif isinstance(event, ToolCallNameEvent):
            self._chunk(event, "tool_call", event.tool_call_id).chunks.append(event.chunk)
        elif isinstance(event, ToolCallArgsEvent):
            self._chunk(event, "tool_call", event.tool_call_id).args.append(event.chunk)
        elif isinstance(event, ToolResultEvent):
            self._stamp(event, self._open("tool_result", event.tool_call_id, {"event": event}))
        elif isinstance(event, AttachmentEvent):
            self._stamp(event, self._open("attachment", None, {"event": event}))
        elif isinstance(event, UsageEvent):
            self.usage = Usage(input=event.input, output=event.output, details=event.details)
        elif isinstance(event, ErrorEvent):
            self.error = ErrorInfo(
                code=event.code, message=event.message, retryable=event.retryable, retry_after=event.retry_after
            )

    def _chunk(self, event: Any, kind: str, key: str | None) -> _Draft:
        draft = self._continue(kind, key) or self._open(kind, key)
        self._stamp(event, draft)
        return draft

    def _stamp(self, event: Any, draft: _Draft) -> None:
        event.part_index = draft.index
        event.message_index = self.message_index

    def _continue(self, kind: str, key: str | None) -> _Draft | None:
        """The part this chunk continues: the last one, or (tool calls) the one with its id."""
        if self._parts and self._parts[-1].kind == kind and self._parts[-1].key == key:
            return self._parts[-1]
        if kind == "tool_call":  # parallel calls may interleave their chunks
            return next((d for d in self._parts if d.kind == kind and d.key == key), None)
        return None

    def _open(self, kind: str, key: str | None, fields: dict[str, Any] | None = None) -> _Draft:
        draft = _Draft(len(self._parts), kind, key, fields)
        self._parts.append(draft)
        return draft

    def messages(self) -> list[Message]:
        """The output so far: one assistant message, or none before the first part."""
        if not self._parts:
            return []
        return [Message(role="assistant", parts=[_part(d) for d in self._parts])]


def _part(draft: _Draft) -> AnyPart:
    text = "".join(draft.chunks)
    if draft.kind == "text":
        return TextPart(text=text)
    if draft.kind == "reasoning":
        return ReasoningPart(
            text=text, redacted=draft.fields.get("redacted", False), provider_metadata=draft.fields.get("provider_metadata")
        )
    if draft.kind == "tool_call":
        raw = "".join(draft.args)
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            arguments = None
        if isinstance(arguments, dict):
            return ToolCallPart(name=text, arguments=arguments, tool_call_id=draft.key)
        # Cut off mid-stream (cancel, crash): keep what arrived rather than lose it.
        return ToolCallPart(name=text, tool_call_id=draft.key, provider_metadata={"parley": {"partialArguments": raw}})
    event = draft.fields["event"]
    if draft.kind == "tool_result":
        return ToolResultPart(
            name=event.name,
            output=event.output,
            tool_call_id=event.tool_call_id,
            exception=event.exception,
            server_executed=event.server_executed,
        )
    return AttachmentPart(attachment=Attachment(mime_type=event.mime_type, content=event.content, url=event.url))
