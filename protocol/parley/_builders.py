"""Builders for messages, in the style of llm 0.32: ``user("Hi")``, ``assistant("Hello")``."""

from __future__ import annotations

import json
from typing import Any

from ._types import AnyPart, Attachment, AttachmentPart, Message, TextPart, ToolResultPart

MessageContent = str | Attachment | AnyPart


def _parts(content: tuple[MessageContent, ...]) -> list[AnyPart]:
    parts: list[AnyPart] = []
    for item in content:
        if isinstance(item, str):
            parts.append(TextPart(text=item))
        elif isinstance(item, Attachment):
            parts.append(AttachmentPart(attachment=item))
        else:
            parts.append(item)
    return parts


def user(*content: MessageContent) -> Message:
    """A user message from strings, attachments and parts, in order."""
    return Message(role="user", parts=_parts(content))


def assistant(*content: MessageContent) -> Message:
    return Message(role="assistant", parts=_parts(content))


def system(*content: MessageContent) -> Message:
    return Message(role="system", parts=_parts(content))


def tool_message(*results: ToolResultPart) -> Message:
    """The message that carries tool results back to the model."""
    return Message(role="tool", parts=list(results))


def tool_result(name: str, output: Any, *, tool_call_id: str | None = None, exception: str | None = None) -> ToolResultPart:
    return ToolResultPart(
        name=name,
        output=output if isinstance(output, str) else json.dumps(output, default=str),
        tool_call_id=tool_call_id,
        exception=exception,
    )


def attachment(*, path: str | None = None, url: str | None = None, content: bytes | None = None, mime_type: str | None = None) -> Attachment:
    return Attachment(mime_type=mime_type, url=url, path=path, content=content)  # bytes: Attachment encodes them


def text_of(message: Message) -> str:
    """The concatenated text parts of a message."""
    return "".join(p.text for p in message.parts if isinstance(p, TextPart))
