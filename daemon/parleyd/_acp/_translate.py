"""parley → ACP: a response's events, or a stored conversation, as ``session/update``s.

The ids are derived, never stored, so that a live turn and its replay by
``session/load`` (in this process or another) carry the same ones:

* an output message's ``messageId`` is ``uuid5(f"{responseId}/{messageIndex}")``
  (its reasoning and its text are one message, as in parley), a user message's
  ``uuid5(f"{conversationId}/user/{position}")``, its index in the conversation;
* a ``toolCallId`` is ``f"{responseId}/{messageIndex}/{the model's call id}"``:
  models reuse call ids across turns (and scripts across rounds), ACP wants them
  unique in the session.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from parley._types import (
    AnyEvent,
    AttachmentEvent,
    AttachmentPart,
    DoneEvent,
    ErrorEvent,
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
    UsageEvent,
)

from ._types import (
    AgentMessageChunk,
    AgentThoughtChunk,
    AnyUpdate,
    AudioContent,
    ContentBlock,
    Diff,
    ImageContent,
    ResourceLink,
    TextContent,
    ToolCallContent,
    ToolCallProgress,
    ToolCallStart,
    ToolKind,
    UsageUpdate,
    UserMessageChunk,
)

_NAMESPACE = uuid.UUID("0f6f8a43-8d4c-5b0e-9a57-7061726c6579")  # "parley", for uuid5


def message_id(response_id: str, message_index: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{response_id}/{message_index}"))


def user_message_id(conversation_id: str, position: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{conversation_id}/user/{position}"))


def tool_call_id(response_id: str | None, message_index: int, call_id: str | None, fallback: str) -> str:
    return f"{response_id}/{message_index}/{call_id or fallback}" if response_id else (call_id or fallback)


#: Tool kinds by name, for the tools this agent offers and names models commonly use.
_KINDS: dict[str, ToolKind] = {
    "read_text_file": "read",
    "read_file": "read",
    "write_text_file": "edit",
    "write_file": "edit",
    "edit_file": "edit",
    "search": "search",
    "grep": "search",
    "web_search": "fetch",
    "fetch": "fetch",
}


def tool_kind(name: str) -> ToolKind:
    return _KINDS.get(name, "other")


def _arguments(raw: str) -> Any:
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"partialArguments": raw}


def result_updates(acp_id: str, output: str, exception: str | None, extra: list[ToolCallContent | Diff] | None = None) -> ToolCallProgress:
    text = exception if exception is not None else output
    content: list[ToolCallContent | Diff] = list(extra or [])
    if text:
        content.append(ToolCallContent(content=TextContent(text=text)))
    raw: dict[str, Any] = {"output": output}
    if exception is not None:
        raw["exception"] = exception
    return ToolCallProgress(
        tool_call_id=acp_id,
        status="failed" if exception is not None else "completed",
        content=content,
        raw_output=raw,
    )


def attachment_block(mime_type: str | None, content: str | None, url: str | None, path: str | None = None) -> ContentBlock:
    mime = mime_type or "application/octet-stream"
    if content is not None and mime.startswith("image/"):
        return ImageContent(data=content, mime_type=mime)
    if content is not None and mime.startswith("audio/"):
        return AudioContent(data=content, mime_type=mime)
    uri = url or (f"file://{path}" if path else f"data:{mime};base64,{content or ''}")
    name = (url or path or "attachment").rstrip("/").rsplit("/", 1)[-1] or "attachment"
    return ResourceLink(uri=uri, name=name, mime_type=mime_type)


class _Call:
    __slots__ = ("acp_id", "name", "args", "reported_name", "reported_args", "finished", "extra")

    def __init__(self, acp_id: str, name: str) -> None:
        self.acp_id = acp_id
        self.name = name
        self.args = ""
        self.reported_name = name
        self.reported_args: str | None = None
        self.finished = False
        self.extra: list[ToolCallContent | Diff] = []  # content the tool's runner adds (a diff)


class LiveTurn:
    """The events of one running response, translated one by one (``feed``)."""

    def __init__(self, response_id: str, context_window: int | None) -> None:
        self.response_id = response_id
        self.context_window = context_window
        self.calls: dict[tuple[int, str], _Call] = {}  # (message index, the model's call id) -> the call
        self.latest: dict[str, _Call] = {}  # the model's call id -> its latest call, for results
        self.error: ErrorEvent | None = None
        self.done: DoneEvent | None = None
        self.last_seq = 0

    def feed(self, event: AnyEvent) -> list[AnyUpdate]:
        self.last_seq = event.seq
        kind = type(event)
        if kind is ToolCallNameEvent or kind is ToolCallArgsEvent:
            return self._tool_chunk(event)  # type: ignore[arg-type]
        updates = self.flush_calls()
        if kind is TextEvent:
            if event.chunk:  # type: ignore[union-attr]
                updates.append(AgentMessageChunk(content=TextContent(text=event.chunk), message_id=self._mid(event)))  # type: ignore[union-attr]
        elif kind is ReasoningEvent:
            if event.chunk and not event.redacted:  # type: ignore[union-attr]
                updates.append(AgentThoughtChunk(content=TextContent(text=event.chunk), message_id=self._mid(event)))  # type: ignore[union-attr]
        elif kind is ToolResultEvent:
            updates.extend(self._result(event))  # type: ignore[arg-type]
        elif kind is AttachmentEvent:
            block = attachment_block(event.mime_type, event.content, event.url)  # type: ignore[union-attr]
            updates.append(AgentMessageChunk(content=block, message_id=self._mid(event)))
        elif kind is UsageEvent:
            if self.context_window:
                used = (event.input or 0) + (event.output or 0)  # type: ignore[union-attr]
                updates.append(UsageUpdate(used=used, size=self.context_window))
        elif kind is ErrorEvent:
            self.error = event  # type: ignore[assignment]
        elif kind is DoneEvent:
            self.done = event  # type: ignore[assignment]
            for call in self.calls.values():
                if not call.finished:  # never run: the chain limit, a cancel, an error, or left to the client
                    call.finished = True
                    updates.append(ToolCallProgress(tool_call_id=call.acp_id, status="failed"))
        return updates

    def call(self, model_call_id: str, name: str) -> tuple[_Call, list[AnyUpdate]]:
        """The call with this id, reported first if no event named it (a ``tool/execute`` ahead of its events)."""
        call = self.latest.get(model_call_id)
        if call is not None:
            return call, self.flush_calls()
        call = self._new_call(-1, model_call_id, name)
        return call, [ToolCallStart(tool_call_id=call.acp_id, title=name, kind=tool_kind(name), status="pending")]

    def flush_calls(self) -> list[AnyUpdate]:
        """A ``tool_call_update`` for each call whose name or arguments grew since last reported."""
        updates: list[AnyUpdate] = []
        for call in self.calls.values():
            if call.finished or (call.reported_args == call.args and call.reported_name == call.name):
                continue
            title = call.name if call.name != call.reported_name else None
            call.reported_name, call.reported_args = call.name, call.args
            updates.append(ToolCallProgress(tool_call_id=call.acp_id, title=title, raw_input=_arguments(call.args)))
        return updates

    def _new_call(self, message_index: int, model_call_id: str, name: str) -> _Call:
        call = _Call(tool_call_id(self.response_id, message_index, model_call_id, "call"), name)
        self.calls[(message_index, model_call_id)] = self.latest[model_call_id] = call
        return call

    def _tool_chunk(self, event: ToolCallNameEvent | ToolCallArgsEvent) -> list[AnyUpdate]:
        call = self.calls.get((event.message_index, event.tool_call_id))
        updates: list[AnyUpdate] = []
        if call is None:
            name = event.chunk if type(event) is ToolCallNameEvent else ""
            call = self._new_call(event.message_index, event.tool_call_id, name)
            updates.append(ToolCallStart(tool_call_id=call.acp_id, title=name or "tool call", kind=tool_kind(name), status="pending"))
            call.reported_name = name
            if type(event) is ToolCallArgsEvent:
                call.args += event.chunk
        elif type(event) is ToolCallNameEvent:
            call.name += event.chunk
        else:
            call.args += event.chunk
        return updates

    def _result(self, event: ToolResultEvent) -> list[AnyUpdate]:
        updates: list[AnyUpdate] = []
        call = self.latest.get(event.tool_call_id)
        if call is None:  # a result with no call streamed (a provider's own tool)
            call, updates = self.call(event.tool_call_id, event.name)
        call.finished = True
        updates.append(result_updates(call.acp_id, event.output, event.exception, call.extra))
        return updates

    def _mid(self, event: Any) -> str:
        return message_id(self.response_id, event.message_index)


# ---- replay --------------------------------------------------------------------


def replay(conversation_id: str, chain: list[Message], owners: list[tuple[str, int] | None]) -> list[AnyUpdate]:
    """The updates that show a stored chain of messages: ``owners[i]`` is the (response id, output
    index) that produced message ``i``, or None for the client's input."""
    results: dict[str, ToolResultPart] = {}
    for message in chain:
        for part in message.parts:
            if type(part) is ToolResultPart and part.tool_call_id:
                results[part.tool_call_id] = part
    acp_ids: dict[str, str] = {}  # the model's call id -> the ACP one, as the calls come
    updates: list[AnyUpdate] = []
    for position, message in enumerate(chain):
        owner = owners[position]
        response_id = owner[0] if owner else None
        if message.role == "system":
            continue
        if message.role == "user":
            mid = user_message_id(conversation_id, position)
            for part in message.parts:
                if type(part) is TextPart and part.text:
                    updates.append(UserMessageChunk(content=TextContent(text=part.text), message_id=mid))
                elif type(part) is AttachmentPart:
                    a = part.attachment
                    updates.append(UserMessageChunk(content=attachment_block(a.mime_type, a.content, a.url, a.path), message_id=mid))
            continue
        mid = message_id(owner[0], owner[1]) if owner else user_message_id(conversation_id, position)
        for index, part in enumerate(message.parts):
            kind = type(part)
            if kind is TextPart and part.text:  # type: ignore[union-attr]
                updates.append(AgentMessageChunk(content=TextContent(text=part.text), message_id=mid))  # type: ignore[union-attr]
            elif kind is ReasoningPart and part.text and not part.redacted:  # type: ignore[union-attr]
                updates.append(AgentThoughtChunk(content=TextContent(text=part.text), message_id=mid))  # type: ignore[union-attr]
            elif kind is ToolCallPart:
                assert isinstance(part, ToolCallPart)
                acp_id = tool_call_id(response_id, owner[1] if owner else 0, part.tool_call_id, f"{position}.{index}")
                if part.tool_call_id:
                    acp_ids[part.tool_call_id] = acp_id
                has_result = part.tool_call_id in results
                updates.append(
                    ToolCallStart(
                        tool_call_id=acp_id,
                        title=part.name,
                        kind=tool_kind(part.name),
                        status="pending" if has_result else "failed",
                        raw_input=part.arguments,
                    )
                )
            elif kind is ToolResultPart:
                assert isinstance(part, ToolResultPart)
                acp_id = acp_ids.get(part.tool_call_id or "") or tool_call_id(response_id, owner[1] if owner else 0, part.tool_call_id, f"{position}.{index}")
                if part.tool_call_id not in acp_ids:  # a result whose call is not in the chain
                    updates.append(ToolCallStart(tool_call_id=acp_id, title=part.name, kind=tool_kind(part.name), status="pending"))
                updates.append(result_updates(acp_id, part.output, part.exception))
            elif kind is AttachmentPart:
                a = part.attachment  # type: ignore[union-attr]
                updates.append(AgentMessageChunk(content=attachment_block(a.mime_type, a.content, a.url, a.path), message_id=mid))
    return updates
