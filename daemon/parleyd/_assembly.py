"""Turning a response's events into its output messages.

The assembler is also what assigns ``partIndex`` and ``messageIndex``: a chunk
continues the last part when it is of the same kind (and, for tool calls, the
same ``toolCallId``); otherwise it opens a new part. A tool chain's output has
several messages: each round's assistant message, and after it the ``tool``
message with the results of the tools the client ran. It is used live, while
a response streams, and after a crash, to rebuild a partial output from the
stored events (which carry their message index already).
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
    Role,
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
        self._messages: list[tuple[Role, list[_Draft]]] = [("assistant", [])]
        self.usage: Usage | None = None
        self.error: ErrorInfo | None = None

    @property
    def message_index(self) -> int:
        return len(self._messages) - 1

    @property
    def _parts(self) -> list[_Draft]:
        return self._messages[-1][1]

    def open_message(self, role: Role) -> None:
        """Start the next output message (a round of a tool chain)."""
        self._messages.append((role, []))

    def add(self, event: AnyEvent) -> None:
        """Take one event, stamping the indices of the part events."""
        if type(event) is TextEvent and event.message_index < 0:  # the common case, live text
            parts = self._messages[-1][1]
            if parts and (last := parts[-1]).kind == "text":
                last.chunks.append(event.chunk)
                event.part_index, event.message_index = last.index, len(self._messages) - 1
                return
        stamped = getattr(event, "message_index", -1)
        while stamped > self.message_index:  # replaying stored events of a chain
            client_result = isinstance(event, ToolResultEvent) and not event.server_executed
            self.open_message("tool" if client_result and stamped == self.message_index + 1 else "assistant")
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
            draft = self._chunk(event, "tool_call", event.tool_call_id)
            draft.chunks.append(event.chunk)
            if event.server_executed:
                draft.fields["server_executed"] = True
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

    def pending_tool_calls(self) -> list[ToolCallPart]:
        """The calls of the current message that the client, not the provider, must run."""
        calls = [_part(d) for d in self._parts if d.kind == "tool_call"]
        return [c for c in calls if isinstance(c, ToolCallPart) and not c.server_executed]

    def messages(self) -> list[Message]:
        """The output so far; messages with no part yet are left out."""
        return [Message(role=role, parts=[_part(d) for d in parts]) for role, parts in self._messages if parts]


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
        server_executed = draft.fields.get("server_executed", False)
        if isinstance(arguments, dict):
            return ToolCallPart(name=text, arguments=arguments, tool_call_id=draft.key, server_executed=server_executed)
        # Cut off mid-stream (cancel, crash): keep what arrived rather than lose it.
        return ToolCallPart(
            name=text, tool_call_id=draft.key, server_executed=server_executed, provider_metadata={"parley": {"partialArguments": raw}}
        )
    event = draft.fields["event"]
    if draft.kind == "tool_result":
        return ToolResultPart(
            name=event.name,
            output=event.output,
            tool_call_id=event.tool_call_id,
            exception=event.exception,
            server_executed=event.server_executed,
            attachments=event.attachments,
            structured_content=event.structured_content,
        )
    return AttachmentPart(attachment=Attachment(mime_type=event.mime_type, content=event.content, url=event.url))
