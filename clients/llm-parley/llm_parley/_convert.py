"""Between llm's shapes and parley's: a history sent to the daemon, and its events back as llm's."""

from __future__ import annotations

from typing import Any

import llm
import parley
from llm import parts as llm_parts


def stream_event(event: Any, meta: dict[str, Any]) -> Any:
    """A parley event as llm's ``StreamEvent`` (None for those llm has no event for), carrying
    ``meta``: the parley conversation, kept by llm with the part it assembles."""
    if event.type == "text":
        return llm_parts.StreamEvent(type="text", chunk=event.chunk, provider_metadata=meta)
    if event.type == "reasoning":
        return llm_parts.StreamEvent(type="reasoning", chunk=event.chunk, redacted=event.redacted, provider_metadata=meta)
    if event.type in ("tool_call_name", "tool_call_args"):
        server = getattr(event, "server_executed", False)
        return llm_parts.StreamEvent(type=event.type, chunk=event.chunk, tool_call_id=event.tool_call_id, server_executed=server, provider_metadata=meta)
    if event.type == "tool_result" and event.server_executed:  # the client's own results are llm's to run
        return llm_parts.StreamEvent(type="tool_result", chunk=event.output, tool_call_id=event.tool_call_id, tool_name=event.name, server_executed=True, provider_metadata=meta)
    return None


def parley_messages(messages: list[Any]) -> list[Any]:
    """llm ``Message``s as parley's, for a history the daemon has not stored."""
    out = []
    for message in messages:
        converted = [p for p in map(_part, message.parts) if p is not None]
        if converted:
            out.append(parley.Message(role=message.role, parts=converted))
    return out


def parley_tool_results(results: list[Any]) -> list[Any]:
    """llm's ``ToolResult``s (this turn's) as one parley tool message, or none."""
    if not results:
        return []
    parts = [
        parley.ToolResultPart(name=r.name, output=r.output, tool_call_id=r.tool_call_id, exception=_exception(r.exception), attachments=[attachment(a) for a in r.attachments] or None)
        for r in results
    ]
    return [parley.Message(role="tool", parts=parts)]


def _part(part: Any) -> Any:
    if isinstance(part, llm_parts.TextPart):
        return parley.TextPart(text=part.text)
    if isinstance(part, llm_parts.ReasoningPart):
        return parley.ReasoningPart(text=part.text, redacted=part.redacted)
    if isinstance(part, llm_parts.ToolCallPart):
        return parley.ToolCallPart(name=part.name, arguments=part.arguments or {}, tool_call_id=part.tool_call_id, server_executed=part.server_executed)
    if isinstance(part, llm_parts.ToolResultPart):
        attachments = [attachment(a) for a in part.attachments] or None
        return parley.ToolResultPart(name=part.name, output=part.output, tool_call_id=part.tool_call_id, exception=part.exception, server_executed=part.server_executed, attachments=attachments)
    if isinstance(part, llm_parts.AttachmentPart) and part.attachment is not None:
        return parley.AttachmentPart(attachment=attachment(part.attachment))
    return None


def attachment(given: llm.Attachment) -> Any:
    """An llm attachment as parley's."""
    return parley.Attachment(type=given.resolve_type(), path=given.path, url=given.url, content=given.content)


def _exception(exception: Any) -> str | None:
    if exception is None or isinstance(exception, str):
        return exception
    return f"{type(exception).__name__}: {exception}"
