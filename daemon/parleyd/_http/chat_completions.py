"""``POST /v1/chat/completions``: OpenAI's Chat Completions API over the daemon's ``prompt``.

A request becomes a ``prompt`` with the whole history as ``messages`` and no conversation
id, so a client that re-sends its history every turn continues one stored conversation
(PROTOCOL.md, ``prompt``), visible to the editors while it streams. Text in and out,
system and developer messages, ``max_tokens``/``max_completion_tokens``, ``temperature``,
``top_p``, ``stop``, ``seed``, streaming with ``stream_options.include_usage``; tools
(``tool_choice`` becomes the model's ``toolChoice`` option), the model's calls as
``tool_calls`` (streamed with their ``index``, ``id`` and ``name`` in the first fragment
only) and the client's results as ``tool`` messages; images in (``image_url``); reasoning
out as ``reasoning_content``, mirrored as ``reasoning``, and both taken in;
``response_format`` ``json_schema`` (and ``json_object``) as the model's ``schema``
option, for models that take one. Not served, and refused with a 400 that says so: other
content parts (audio, files), ``n`` > 1. A response that fails before its first output
answers with the HTTP status of its error; one that fails later ends its stream with
``data: {"error": …}``. A client that disconnects mid-stream cancels the response (its
partial output is kept).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from parley._types import (
    AttachmentPart,
    ErrorEvent,
    Message,
    PromptParams,
    ReasoningEvent,
    ReasoningPart,
    TextEvent,
    TextPart,
    ToolCallArgsEvent,
    ToolCallNameEvent,
    ToolCallPart,
    ToolResultPart,
    UsageEvent,
)

from .._finish import cut_by_token_limit
from ._errors import HttpError, openai_error, openai_kind
from ._parts import image_url, json_arguments, output_schema, tool_spec
from ._tool_calls import ToolCalls
from ._turn import Turn, prompt, read_body

if TYPE_CHECKING:
    from .._models import ModelRegistry


class _Function(msgspec.Struct):
    name: str
    arguments: str = ""


class _ToolCall(msgspec.Struct):
    id: str
    function: _Function
    type: str = "function"


class ChatMessage(msgspec.Struct):
    role: str
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None  # what some servers (vLLM, OpenRouter) call it


class _FunctionSpec(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class _Tool(msgspec.Struct):
    function: _FunctionSpec
    type: str = "function"


class StreamOptions(msgspec.Struct):
    include_usage: bool = False


class ChatRequest(msgspec.Struct):
    """The fields parley reads; others (``user``, ``logprobs``: false…) are ignored."""

    model: str
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    tools: list[_Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(ChatRequest).decode
_encode = msgspec.json.encode
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


async def create(request: Request) -> Response:
    try:
        body = await read_body(request, _decode)
        turn = await prompt(request, _prompt_params(body, request.app.state.daemon.models))
    except HttpError as exc:
        return openai_error(exc)
    chat = _Chat(turn.id, turn.model)
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(turn.guarded(_stream(chat, turn, include_usage), _stream_error), media_type="text/event-stream")
    return await _complete(chat, turn)


def _prompt_params(body: ChatRequest, models: ModelRegistry) -> PromptParams:
    if body.n not in (None, 1):
        raise HttpError.unsupported("n > 1 is not served: parley answers once per request")
    if not body.messages:
        raise HttpError.bad_request("`messages` must not be empty")
    options = {
        "maxTokens": body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens,
        "temperature": body.temperature,
        "topP": body.top_p,
        "stop": body.stop,
        "seed": body.seed,
        "toolChoice": _tool_choice(body.tool_choice),
        "schema": output_schema(body.model, body.response_format, models),
    }
    options = {k: v for k, v in options.items() if v is not None}
    tools = [tool_spec(t.function.name, t.function.description, t.function.parameters or None) for t in body.tools or []]
    return PromptParams(model=body.model, messages=_messages(body.messages), options=options or None, tools=tools or None)


def _tool_choice(choice: str | dict[str, Any] | None) -> str | None:
    """The ``toolChoice`` option; none for ``auto``, every model's default (echo takes no options)."""
    if isinstance(choice, dict):
        return str(choice.get("function", {}).get("name", ""))
    return None if choice == "auto" else choice


def _messages(chat: list[ChatMessage]) -> list[Message]:
    """parley's messages; consecutive ``tool`` messages become one, as parley keeps results."""
    names: dict[str, str] = {}  # tool call id -> the function's name: tool messages do not repeat it
    out: list[Message] = []
    for message in chat:
        if message.role == "tool":
            result = ToolResultPart(name=names.get(message.tool_call_id or "", ""), output=_text(message.content), tool_call_id=message.tool_call_id)
            if out and out[-1].role == "tool":
                out[-1].parts.append(result)
            else:
                out.append(Message(role="tool", parts=[result]))
            continue
        role = _ROLES.get(message.role)
        if role is None:
            raise HttpError.bad_request(f"unknown message role {message.role!r}")
        thought = message.reasoning_content or message.reasoning
        parts: list[Any] = ([ReasoningPart(text=thought)] if thought else []) + _content(message.content)
        for call in message.tool_calls or []:
            names[call.id] = call.function.name
            parts.append(ToolCallPart(name=call.function.name, arguments=json_arguments(call.function.arguments), tool_call_id=call.id))
        out.append(Message(role=role, parts=parts))  # type: ignore[arg-type]
    return out


def _content(content: str | list[dict[str, Any]] | None) -> list[Any]:
    """A message's content as parts: text, and images (``image_url``: a URL or a data: URL)."""
    if content is None or isinstance(content, str):
        return [TextPart(text=content or "")]
    parts: list[Any] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append(TextPart(text=str(part.get("text", ""))))
        elif kind == "image_url":
            parts.append(AttachmentPart(attachment=image_url(str((part.get("image_url") or {}).get("url", "")))))
        else:
            raise HttpError.unsupported(f"content parts of type {kind!r} are not served over parley's HTTP endpoints yet")
    return parts


def _text(content: str | list[dict[str, Any]] | None) -> str:
    """The text of a tool message's content."""
    return "".join(p.text for p in _content(content) if isinstance(p, TextPart))


class _Chat:
    """What every chunk of one completion repeats, and what the completion adds up to."""

    def __init__(self, response_id: str, model: str) -> None:
        self.id = f"chatcmpl-{response_id}"
        self.model = model
        self.created = int(time.time())
        self.usage: dict[str, int] | None = None
        self.finish_reason = "stop"
        self.tools = ToolCalls()

    def tool_fragment(self, event: ToolCallNameEvent | ToolCallArgsEvent) -> dict[str, Any] | None:
        """Take a tool call event; the ``tool_calls`` delta it makes, if any."""
        began = isinstance(event, ToolCallNameEvent) and event.tool_call_id not in self.tools
        call = self.tools.add(event)
        if call is None:
            return None
        if began:
            self.finish_reason = "tool_calls"
            return {"index": call.index, "id": call.id, "type": "function", "function": {"name": event.chunk, "arguments": ""}}
        if isinstance(event, ToolCallNameEvent):  # a name in several chunks: it was sent with the first
            return None
        return {"index": call.index, "function": {"arguments": event.chunk}}

    def add_usage(self, event: UsageEvent) -> None:
        given, made = event.input or 0, event.output or 0  # a provider may not report them
        self.usage = {"prompt_tokens": given, "completion_tokens": made, "total_tokens": given + made}
        if cut_by_token_limit(event.details) and not self.tools:
            self.finish_reason = "length"

    def envelope(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, **fields}


async def _complete(chat: _Chat, turn: Turn) -> Response:
    text: list[str] = []
    thought: list[str] = []
    async for event in turn:
        if isinstance(event, TextEvent):
            text.append(event.chunk)
        elif isinstance(event, ReasoningEvent):
            thought.append(event.chunk)
        elif isinstance(event, ToolCallNameEvent | ToolCallArgsEvent):
            chat.tool_fragment(event)
        elif isinstance(event, UsageEvent):
            chat.add_usage(event)
        elif isinstance(event, ErrorEvent):
            return openai_error(HttpError.from_event(event))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or (None if chat.tools else "")}
    if thought:
        message["reasoning_content"] = message["reasoning"] = "".join(thought)
    if chat.tools:
        message["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in chat.tools]
    choice = {"index": 0, "message": message, "finish_reason": chat.finish_reason, "logprobs": None}
    return JSONResponse(chat.envelope("chat.completion", choices=[choice], usage=chat.usage))


def _stream_error(error: HttpError) -> bytes:
    """A failure after the stream began: what OpenAI's clients raise as an APIError."""
    body = {"error": {"message": error.message, "type": openai_kind(error.status), "param": None, "code": error.code}}
    return b"data: " + _encode(body) + b"\n\n"


async def _stream(chat: _Chat, turn: Turn, include_usage: bool) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return b"data: " + _encode(chat.envelope("chat.completion.chunk", choices=[choice])) + b"\n\n"

    yield chunk({"role": "assistant", "content": ""})
    async for event in turn:
        if isinstance(event, TextEvent) and event.chunk:
            yield chunk({"content": event.chunk})
        elif isinstance(event, ReasoningEvent) and event.chunk:
            yield chunk({"reasoning_content": event.chunk, "reasoning": event.chunk})
        elif isinstance(event, ToolCallNameEvent | ToolCallArgsEvent):
            if (fragment := chat.tool_fragment(event)) is not None:
                yield chunk({"tool_calls": [fragment]})
        elif isinstance(event, UsageEvent):
            chat.add_usage(event)
        elif isinstance(event, ErrorEvent):
            yield _stream_error(HttpError.from_event(event))
            return
    yield chunk({}, chat.finish_reason)
    if include_usage:
        yield b"data: " + _encode(chat.envelope("chat.completion.chunk", choices=[], usage=chat.usage)) + b"\n\n"
    yield b"data: [DONE]\n\n"
