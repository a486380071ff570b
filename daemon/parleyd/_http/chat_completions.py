"""``POST /v1/chat/completions``: OpenAI's Chat Completions API over the daemon's ``prompt``.

A request becomes a ``prompt`` with the whole history as ``messages`` and no conversation
id, so a client that re-sends its history every turn continues one stored conversation
(PROTOCOL.md, ``prompt``), visible to the editors while it streams. Text in and out,
system and developer messages, ``max_tokens``/``max_completion_tokens``, ``temperature``,
``top_p``, ``stop``, ``seed``, streaming with ``stream_options.include_usage``. Not served
yet, and refused with a 400 that says so: tools and tool messages, images, ``n`` > 1,
``response_format``. A response that fails before its first output answers with the
HTTP status of its error; one that fails later ends its stream with ``data: {"error": …}``.
A client that disconnects mid-stream cancels the response (its partial output is kept).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from parley._errors import RequestError
from parley._types import DoneEvent, ErrorEvent, Message, PromptParams, TextEvent, TextPart, UsageEvent

from ._errors import event_status, from_request_error, openai_error
from ._subscription import Subscription


class ChatMessage(msgspec.Struct):
    role: str
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[Any] | None = None


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
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(ChatRequest).decode
_encode = msgspec.json.encode
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class _Unsupported(Exception):
    """A request this front door does not serve yet: a 400 that says what."""


async def create(request: Request) -> Response:
    daemon = request.app.state.daemon
    try:
        body = _decode(await request.body())
        params = _prompt_params(body)
        subscription = Subscription()
        live = daemon.prompt(subscription, params)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return openai_error(400, "invalid_request_error", f"invalid request body: {exc}")
    except _Unsupported as exc:
        return openai_error(400, "unsupported", str(exc))
    except RequestError as exc:
        return from_request_error(exc)
    events = subscription.events()
    first = await anext(events)
    if isinstance(first, ErrorEvent):  # failed before any output: the status says so
        return openai_error(event_status(first.code), first.code, first.message, retry_after=first.retry_after)
    chat = _Chat(live.id, live.model.id)
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(_stream(chat, live, first, events, include_usage), media_type="text/event-stream")
    return await _complete(chat, first, events)


def _prompt_params(body: ChatRequest) -> PromptParams:
    if body.tools or any(m.tool_calls or m.role == "tool" for m in body.messages):
        raise _Unsupported("tools are not served over parley's HTTP endpoints yet")
    if body.response_format is not None and body.response_format.get("type") != "text":
        raise _Unsupported("response_format is not served over parley's HTTP endpoints yet")
    if body.n not in (None, 1):
        raise _Unsupported("n > 1 is not served: parley answers once per request")
    if not body.messages:
        raise msgspec.ValidationError("`messages` must not be empty")
    options = {
        "maxTokens": body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens,
        "temperature": body.temperature,
        "topP": body.top_p,
        "stop": body.stop,
        "seed": body.seed,
    }
    options = {k: v for k, v in options.items() if v is not None}
    return PromptParams(model=body.model, messages=[_message(m) for m in body.messages], options=options or None)


def _message(message: ChatMessage) -> Message:
    role = _ROLES.get(message.role)
    if role is None:
        raise msgspec.ValidationError(f"unknown message role {message.role!r}")
    if message.content is None or isinstance(message.content, str):
        return Message(role=role, parts=[TextPart(text=message.content or "")])  # type: ignore[arg-type]
    parts = []
    for part in message.content:
        if part.get("type") != "text":
            raise _Unsupported(f"content parts of type {part.get('type')!r} are not served over parley's HTTP endpoints yet")
        parts.append(TextPart(text=str(part.get("text", ""))))
    return Message(role=role, parts=parts)  # type: ignore[arg-type]


class _Chat:
    """What every chunk of one completion repeats, and what the completion adds up to."""

    def __init__(self, response_id: str, model: str) -> None:
        self.id = f"chatcmpl-{response_id}"
        self.model = model
        self.created = int(time.time())
        self.usage: dict[str, int] | None = None
        self.finish_reason = "stop"

    def add_usage(self, event: UsageEvent) -> None:
        self.usage = {"prompt_tokens": event.input, "completion_tokens": event.output, "total_tokens": event.input + event.output}
        if (event.details or {}).get("stop_reason") in ("length", "max_tokens"):
            self.finish_reason = "length"

    def envelope(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, **fields}


async def _complete(chat: _Chat, first: Any, events: AsyncIterator[Any]) -> Response:
    text: list[str] = []
    event = first
    while True:
        if isinstance(event, TextEvent):
            text.append(event.chunk)
        elif isinstance(event, UsageEvent):
            chat.add_usage(event)
        elif isinstance(event, ErrorEvent):
            return openai_error(event_status(event.code), event.code, event.message, retry_after=event.retry_after)
        elif isinstance(event, DoneEvent):
            break
        event = await anext(events)
    choice = {"index": 0, "message": {"role": "assistant", "content": "".join(text)}, "finish_reason": chat.finish_reason, "logprobs": None}
    return JSONResponse(chat.envelope("chat.completion", choices=[choice], usage=chat.usage))


async def _stream(chat: _Chat, live: Any, first: Any, events: AsyncIterator[Any], include_usage: bool) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return b"data: " + _encode(chat.envelope("chat.completion.chunk", choices=[choice])) + b"\n\n"

    done = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        event = first
        while not isinstance(event, DoneEvent):
            if isinstance(event, TextEvent) and event.chunk:
                yield chunk({"content": event.chunk})
            elif isinstance(event, UsageEvent):
                chat.add_usage(event)
            elif isinstance(event, ErrorEvent):
                error = {"message": event.message, "type": "server_error", "param": None, "code": event.code}
                yield b"data: " + _encode({"error": error}) + b"\n\n"
                done = True
                return
            event = await anext(events)
        done = True
        yield chunk({}, chat.finish_reason)
        if include_usage:
            yield b"data: " + _encode(chat.envelope("chat.completion.chunk", choices=[], usage=chat.usage)) + b"\n\n"
        yield b"data: [DONE]\n\n"
    finally:
        if not done:  # the client went away mid-stream
            await live.cancel()
