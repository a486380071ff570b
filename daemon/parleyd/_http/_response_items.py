"""The Responses API's items and response object, and the parley messages they stand for.

In, ``input_messages`` groups a request's items into parley's messages: an assistant's
reasoning, text and function calls are items of their own in the API and parts of one
message in parley, and consecutive ``function_call_output`` items are one ``tool`` message.
Out, every output part is an item (text: a ``message``; reasoning: a ``reasoning`` item with
``reasoning_text`` content, since parley's reasoning is the model's own, not a summary; a
client tool call: a ``function_call``); calls the provider ran itself, and attachments, are
not the client's and are left out. An item's id is made of the response id and the part's
place, so one item has one id whether streamed, answered or retrieved.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from parley._types import (
    AnyPart,
    Attachment,
    AttachmentPart,
    Message,
    ReasoningPart,
    ResponseRecord,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)

from .._finish import cut_by_token_limit
from ._errors import HttpError
from ._parts import image_url, json_arguments


class InputItem(msgspec.Struct):
    """Any input item: a message (``type`` may be left out), ``function_call``,
    ``function_call_output`` or ``reasoning``; each kind sets the fields it has."""

    type: str = "message"
    role: str | None = None
    content: str | list[dict[str, Any]] | None = None  # a message's parts, or a reasoning item's text
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[dict[str, Any]] | None = None
    summary: list[dict[str, Any]] | None = None


_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


def input_messages(items: list[InputItem], calls: dict[str, str]) -> list[Message]:
    """parley's messages for ``items``. ``calls``: the function names of the call ids known so
    far (a ``function_call_output`` does not repeat its call's name); the items' calls are added."""
    out: list[Message] = []
    for item in items:
        if item.type == "message":
            role = _ROLES.get(item.role or "")
            if role is None:
                raise HttpError.bad_request(f"unknown message role {item.role!r}")
            if role == "assistant":
                _turn(out, "assistant").extend(_content(item.content))
            else:
                out.append(Message(role=role, parts=_content(item.content)))  # type: ignore[arg-type]
        elif item.type == "reasoning":
            texts = [p.get("text", "") for p in item.content or []] if isinstance(item.content, list) else []
            texts = texts or [p.get("text", "") for p in item.summary or []]
            _turn(out, "assistant").append(ReasoningPart(text="\n".join(map(str, texts))))
        elif item.type == "function_call":
            if not item.call_id or not item.name:
                raise HttpError.bad_request("a function_call item needs its `call_id` and `name`")
            calls[item.call_id] = item.name
            call = ToolCallPart(name=item.name, arguments=json_arguments(item.arguments or ""), tool_call_id=item.call_id)
            _turn(out, "assistant").append(call)
        elif item.type == "function_call_output":
            if not item.call_id:
                raise HttpError.bad_request("a function_call_output item needs its `call_id`")
            text, images = _tool_output(item.output)
            result = ToolResultPart(name=calls.get(item.call_id, ""), output=text, tool_call_id=item.call_id, attachments=images or None)
            _turn(out, "tool").append(result)
        else:
            raise HttpError.unsupported(f"input items of type {item.type!r} are not served over parley's HTTP endpoints")
    return out


def _turn(messages: list[Message], role: str) -> list[AnyPart]:
    """The parts of the message of ``role`` that the next item continues (a new one if the last is another's)."""
    if not messages or messages[-1].role != role:
        messages.append(Message(role=role, parts=[]))  # type: ignore[arg-type]
    return messages[-1].parts


def _content(content: str | list[dict[str, Any]] | None) -> list[AnyPart]:
    if content is None or isinstance(content, str):
        return [TextPart(text=content or "")]
    parts: list[AnyPart] = []
    for part in content:
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append(TextPart(text=str(part.get("text", ""))))
        elif kind == "refusal":
            parts.append(TextPart(text=str(part.get("refusal", ""))))
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            parts.append(AttachmentPart(attachment=image_url(part["image_url"])))
        else:
            what = "images by file_id" if kind == "input_image" else f"content parts of type {kind!r}"
            raise HttpError.unsupported(f"{what} are not served over parley's HTTP endpoints yet")
    return parts


def _tool_output(output: str | list[dict[str, Any]] | None) -> tuple[str, list[Attachment]]:
    """A function call's output: its text, and the images it holds."""
    parts = _content(output if isinstance(output, list) else [{"type": "input_text", "text": output or ""}])
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    return text, [p.attachment for p in parts if isinstance(p, AttachmentPart)]


# ---- out ---------------------------------------------------------------------------


def item_id(prefix: str, response_id: str, *place: object) -> str:
    return "_".join([prefix, response_id.removeprefix("resp_"), *map(str, place)])


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def reasoning_text(text: str) -> dict[str, Any]:
    return {"type": "reasoning_text", "text": text}


def message_item(id: str, status: str, texts: list[str]) -> dict[str, Any]:
    return {"id": id, "type": "message", "role": "assistant", "status": status, "content": [output_text(t) for t in texts]}


def reasoning_item(id: str, status: str, texts: list[str]) -> dict[str, Any]:
    return {"id": id, "type": "reasoning", "status": status, "summary": [], "content": [reasoning_text(t) for t in texts]}


def function_call_item(id: str, status: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": id, "type": "function_call", "status": status, "call_id": call_id, "name": name, "arguments": arguments}


def _assistant_item(part: AnyPart, response_id: str, place: tuple[object, ...], status: str) -> dict[str, Any] | None:
    """The output item of one part of an assistant message, if it is one the client sees."""
    if isinstance(part, TextPart):
        return message_item(item_id("msg", response_id, *place), status, [part.text])
    if isinstance(part, ReasoningPart):
        return reasoning_item(item_id("rs", response_id, *place), status, [part.text])
    if isinstance(part, ToolCallPart) and not part.server_executed:
        partial = (part.provider_metadata or {}).get("parley", {}).get("partialArguments")  # cut off mid-call
        arguments = partial if partial is not None else json.dumps(part.arguments)
        return function_call_item(item_id("fc", response_id, *place), status, part.tool_call_id or "", part.name, arguments)
    return None


def output_items(record: ResponseRecord, status: str) -> list[dict[str, Any]]:
    """The response's output items; the last one of a response that did not complete is
    ``in_progress`` while it runs, else ``incomplete``."""
    items = []
    for m, message in enumerate(record.messages):
        if message.role == "assistant":
            items += [item for p, part in enumerate(message.parts) if (item := _assistant_item(part, record.id, (m, p), "completed"))]
    if items and status != "completed":
        items[-1]["status"] = "in_progress" if status == "in_progress" else "incomplete"
    return items


def input_items(record: ResponseRecord) -> list[dict[str, Any]]:
    """What the response was given (its whole history), as items, oldest first."""
    items: list[dict[str, Any]] = []
    for k, message in enumerate(record.prompt.messages):
        if message.role in ("user", "system"):
            content = [_input_content(part) for part in message.parts if isinstance(part, TextPart | AttachmentPart)]
            items.append({"id": item_id("msg", record.id, "in", k), "type": "message", "role": message.role, "status": "completed", "content": content})
        for p, part in enumerate(message.parts):
            if message.role == "assistant" and (item := _assistant_item(part, record.id, ("in", k, p), "completed")):
                items.append(item)
            elif message.role == "tool" and isinstance(part, ToolResultPart) and not part.server_executed:
                id = item_id("fco", record.id, "in", k, p)
                items.append({"id": id, "type": "function_call_output", "status": "completed", "call_id": part.tool_call_id, "output": part.output})
    return items


def _input_content(part: TextPart | AttachmentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    attachment = part.attachment
    url = attachment.url or (f"data:{attachment.mime_type or ''};base64,{attachment.content}" if attachment.content else None)
    if (attachment.mime_type or "image/").startswith("image/"):
        return {"type": "input_image", "detail": "auto", "image_url": url}
    return {"type": "input_file", "file_url": url, "filename": attachment.path}


# ---- the response object -------------------------------------------------------------

#: The API's error codes (a closed list) for parley's error kinds; the rest are ``server_error``.
_ERROR_CODES = {"rate_limited": "rate_limit_exceeded", "bad_request": "invalid_prompt", "context_length": "invalid_prompt"}


def status(record: ResponseRecord) -> str:
    """The API's status: a response cut off by its token limit is ``incomplete``."""
    if record.status == "completed":
        return "incomplete" if cut_by_token_limit(record.usage.details if record.usage else None) else "completed"
    return {"running": "in_progress", "cancelled": "cancelled"}.get(record.status, "failed")


def response_object(record: ResponseRecord, *, output: list[dict[str, Any]] | None = None, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """The response as the API shows it. The settings come from what the store keeps of the
    request (its system prompt and options); ``request``: fields the request gave, repeated."""
    state = status(record)
    options = record.prompt.options or {}
    choice = options.get("toolChoice")
    schema = options.get("schema")
    error = record.error
    response = {
        "id": record.id,
        "object": "response",
        "created_at": int(datetime.fromisoformat(record.created_at).timestamp()),
        "status": state,
        "model": record.model,
        "output": output_items(record, state) if output is None else output,
        "error": {"code": _ERROR_CODES.get(error.code, "server_error"), "message": error.message} if error and state == "failed" else None,
        "incomplete_details": {"reason": "max_output_tokens"} if state == "incomplete" else None,
        "instructions": record.prompt.system,
        "usage": usage(record.usage),
        "max_output_tokens": options.get("maxTokens"),
        "temperature": options.get("temperature"),
        "top_p": options.get("topP"),
        "tool_choice": "auto" if choice is None else choice if choice in ("none", "required", "auto") else {"type": "function", "name": choice},
        "tools": [_function_tool(tool) for tool in record.prompt.tools or []],
        "parallel_tool_calls": True,
        "text": {"format": {"type": "json_schema", "name": "output", "schema": schema} if schema else {"type": "text"}},
        "previous_response_id": None,
        "metadata": {},
        "store": True,
        "background": False,
        "truncation": "disabled",
    }
    return response | (request or {})


def usage(given: Usage | None) -> dict[str, Any] | None:
    """The API's usage; cache and reasoning counts where the provider reported them (in OpenAI's or Anthropic's names)."""
    if given is None:
        return None
    details = given.details or {}
    cached = (details.get("prompt_tokens_details") or {}).get("cached_tokens") or details.get("cache_read_input_tokens") or 0
    written = details.get("cache_creation_input_tokens") or 0
    reasoning = (details.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    read, made = given.input or 0, given.output or 0
    return {
        "input_tokens": read,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": made,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": read + made,
    }


def _function_tool(tool: ToolSpec) -> dict[str, Any]:
    """A stored tool as the API's function tool."""
    return {"type": "function", "name": tool.name, "description": tool.description, "parameters": tool.input_schema, "strict": False}
