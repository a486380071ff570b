"""``POST /v1/messages``: Anthropic's Messages API over the daemon's ``prompt``.

A request becomes a ``prompt`` with the whole history as ``messages`` and no conversation
id, so a client that re-sends its history every turn (Claude Code) continues one stored
conversation (PROTOCOL.md, ``prompt``), visible to the editors while it streams.

In: ``system`` (a string or text blocks); ``text``, ``image`` and ``document`` blocks
(base64 or URL sources; a document's plain ``text`` source too); the model's ``tool_use``
blocks and the client's ``tool_result`` blocks (a user turn that mixes results and text
becomes a ``tool`` message and a ``user`` message, in their order; ``is_error`` makes the
result's text its ``exception``); ``thinking`` and ``redacted_thinking`` blocks, their
signature or data kept where parley's Anthropic provider keeps them
(``providerMetadata.anthropic``), so that they go back to Anthropic intact. ``temperature``,
``top_p``, ``top_k``, ``stop_sequences``, ``tools``, ``tool_choice`` as the model's
``toolChoice`` option (``disable_parallel_tool_use`` is ignored), ``output_config.format``
as the model's ``schema`` option, for models that take one (``effort`` is ignored). Two
fields go only to the models that take them: ``max_tokens``, which the API requires of
every request whatever the model, as ``maxTokens``; ``thinking``, as the ``thinking`` and
``thinkingBudget`` options of parley's Anthropic models: parley has no neutral option for
it, and other models reason as they are configured to. Refused with a 400 that says so:
server tools, other sources (files by id).

Out: the assembled message, or its stream (``_message_blocks``). The stream's ``message_start``
reports no usage yet (parley learns it at the end): ``message_delta`` has the real counts,
input included. A response that fails before its first output answers with the HTTP status
of its error; one that fails later ends its stream with an ``error`` event. A client that
disconnects mid-stream cancels the response (its partial output is kept).
``/v1/messages/count_tokens`` asks the model (``Model.count_tokens``: an estimate, unless the
model knows better).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from parley._types import (
    Attachment,
    AttachmentPart,
    ErrorEvent,
    Message,
    PromptParams,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)

from .._models import Model, ModelRegistry, ModelRequest
from ._errors import HttpError, anthropic_body, anthropic_error
from ._message_blocks import Answer, Content
from ._parts import model_named, output_schema, tool_spec
from ._turn import Turn, prompt, read_body

# ---- the request ---------------------------------------------------------------


class _Source(msgspec.Struct):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class _Block(msgspec.Struct, tag_field="type"):
    """A content block; fields parley does not read (``cache_control``, ``citations``) are ignored."""


class _TextBlock(_Block, tag="text"):
    text: str


class _ImageBlock(_Block, tag="image"):
    source: _Source


class _DocumentBlock(_Block, tag="document"):
    source: _Source


class _ToolUseBlock(_Block, tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any] = {}


class _ToolResultBlock(_Block, tag="tool_result"):
    tool_use_id: str
    content: str | list[_TextBlock | _ImageBlock | _DocumentBlock] = ""
    is_error: bool = False


class _ThinkingBlock(_Block, tag="thinking"):
    thinking: str
    signature: str = ""


class _RedactedThinkingBlock(_Block, tag="redacted_thinking"):
    data: str


_AnyBlock = _TextBlock | _ImageBlock | _DocumentBlock | _ToolUseBlock | _ToolResultBlock | _ThinkingBlock | _RedactedThinkingBlock
_ASSISTANTS = (_ToolUseBlock, _ThinkingBlock, _RedactedThinkingBlock)  # blocks only the model writes


class MessageParam(msgspec.Struct):
    role: Literal["user", "assistant"]
    content: str | list[_AnyBlock]


class _Tool(msgspec.Struct):
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None  # "custom", or a server tool's version


class _ToolChoice(msgspec.Struct):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


class _Thinking(msgspec.Struct):
    type: Literal["enabled", "disabled", "adaptive", "between_tools"]
    budget_tokens: int | None = None


class _OutputConfig(msgspec.Struct):
    format: dict[str, Any] | None = None  # ``{"type": "json_schema", "schema": …}``; ``effort`` is ignored


class MessagesRequest(msgspec.Struct):
    """The fields parley reads; others (``metadata``, ``service_tier``…) are ignored.
    ``max_tokens`` is taken but not required: ``count_tokens`` bodies have none."""

    model: str
    messages: list[MessageParam]
    max_tokens: int | None = None
    system: str | list[_TextBlock] | None = None
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    tools: list[_Tool] | None = None
    tool_choice: _ToolChoice | None = None
    thinking: _Thinking | None = None
    output_config: _OutputConfig | None = None


_decode = msgspec.json.Decoder(MessagesRequest).decode
_encode = msgspec.json.encode


async def create(request: Request) -> Response:
    try:
        body = await read_body(request, _decode)
        turn = await prompt(request, _prompt_params(body, request.app.state.daemon.models))
    except HttpError as exc:
        return anthropic_error(exc)
    answer = Answer(turn.id, turn.model)
    if body.stream:
        return StreamingResponse(turn.guarded(_stream(answer, turn)), media_type="text/event-stream")
    return await _complete(answer, turn)


async def count_tokens(request: Request) -> Response:
    try:
        body = await read_body(request, _decode)
        model = model_named(request.app.state.daemon.models, body.model)
        params = _prompt_params(body, request.app.state.daemon.models)
    except HttpError as exc:
        return anthropic_error(exc)
    counted = model.count_tokens(ModelRequest(messages=params.messages or [], system=params.system, tools=params.tools or []))
    return JSONResponse({"input_tokens": counted})


def _prompt_params(body: MessagesRequest, models: ModelRegistry) -> PromptParams:
    if not body.messages:
        raise HttpError.bad_request("`messages` must not be empty")
    model = model_named(models, body.model)
    options = {
        "temperature": body.temperature,
        "topP": body.top_p,
        "topK": body.top_k,
        "stop": body.stop_sequences,
        "toolChoice": _tool_choice(body.tool_choice),
        "schema": output_schema(body.model, body.output_config.format if body.output_config else None, models),
        **_taken(model, {"maxTokens": body.max_tokens, **_thinking(body.thinking)}),
    }
    options = {k: v for k, v in options.items() if v is not None}
    system = body.system if body.system is None or isinstance(body.system, str) else "\n\n".join(b.text for b in body.system)
    return PromptParams(model=body.model, messages=_messages(body.messages), system=system or None, options=options or None, tools=_tools(body.tools) or None)


def _taken(model: Model, options: dict[str, Any]) -> dict[str, Any]:
    """Those of ``options`` the model takes (the ones every client sends, whatever the model)."""
    names = {field.encode_name for field in msgspec.structs.fields(model.Options)}
    return {k: v for k, v in options.items() if k in names}


def _thinking(thinking: _Thinking | None) -> dict[str, Any]:
    if thinking is None:
        return {}
    if thinking.type == "disabled":
        return {"thinking": False}
    return {"thinking": True, "thinkingBudget": thinking.budget_tokens}


def _tool_choice(choice: _ToolChoice | None) -> str | None:
    """The ``toolChoice`` option; none for ``auto``, every model's default."""
    if choice is None or choice.type == "auto":
        return None
    if choice.type == "tool":
        if not choice.name:
            raise HttpError.bad_request("tool_choice of type `tool` needs the tool's `name`")
        return choice.name
    return "required" if choice.type == "any" else "none"


def _tools(tools: list[_Tool] | None) -> list[ToolSpec]:
    specs = []
    for tool in tools or []:
        if tool.type not in (None, "custom"):
            raise HttpError.unsupported(f"server tools ({tool.type}) are not served over parley's HTTP endpoints")
        specs.append(tool_spec(tool.name, tool.description, tool.input_schema))
    return specs


def _messages(turns: list[MessageParam]) -> list[Message]:
    """parley's messages: a user turn's tool results become ``tool`` messages, its other blocks
    ``user`` messages, in the order they came."""
    names: dict[str, str] = {}  # tool_use id -> the tool's name: results do not repeat it
    out: list[Message] = []
    for turn in turns:
        if isinstance(turn.content, str):
            out.append(Message(role=turn.role, parts=[TextPart(text=turn.content)]))
            continue
        run: list[Any] = []
        for i, block in enumerate(turn.content):
            if isinstance(block, _ToolResultBlock) and turn.role == "assistant":
                raise HttpError.bad_request("tool_result blocks belong to user messages")
            if isinstance(block, _ASSISTANTS) and turn.role == "user":
                raise HttpError.bad_request(f"{block.__struct_config__.tag} blocks belong to assistant messages")
            run.append(_result(block, names) if isinstance(block, _ToolResultBlock) else _part(block, names))
            following = turn.content[i + 1] if i + 1 < len(turn.content) else None
            if following is None or isinstance(following, _ToolResultBlock) != isinstance(block, _ToolResultBlock):
                out.append(Message(role="tool" if isinstance(block, _ToolResultBlock) else turn.role, parts=run))
                run = []
    return out


def _part(block: _AnyBlock, names: dict[str, str]) -> Any:
    if isinstance(block, _TextBlock):
        return TextPart(text=block.text)
    if isinstance(block, _ImageBlock | _DocumentBlock):
        return AttachmentPart(attachment=_attachment(block))
    if isinstance(block, _ToolUseBlock):
        names[block.id] = block.name
        return ToolCallPart(name=block.name, arguments=block.input, tool_call_id=block.id)
    if isinstance(block, _ThinkingBlock):
        signed = {"anthropic": {"signature": block.signature}} if block.signature else None
        return ReasoningPart(text=block.thinking, provider_metadata=signed)
    assert isinstance(block, _RedactedThinkingBlock)
    return ReasoningPart(text="", redacted=True, provider_metadata={"anthropic": {"redactedData": block.data}})


def _result(block: _ToolResultBlock, names: dict[str, str]) -> ToolResultPart:
    content = [_TextBlock(text=block.content)] if isinstance(block.content, str) else block.content
    text = "\n".join(b.text for b in content if isinstance(b, _TextBlock))
    attachments = [_attachment(b) for b in content if not isinstance(b, _TextBlock)]
    return ToolResultPart(
        name=names.get(block.tool_use_id, ""),
        output="" if block.is_error else text,
        exception=text or "error" if block.is_error else None,
        tool_call_id=block.tool_use_id,
        attachments=attachments or None,
    )


def _attachment(block: _ImageBlock | _DocumentBlock) -> Attachment:
    source = block.source
    if source.type == "base64" and source.data is not None:
        return Attachment(mime_type=source.media_type, content=source.data)
    if source.type == "url" and source.url:
        return Attachment(mime_type="application/pdf" if isinstance(block, _DocumentBlock) else None, url=source.url)
    if source.type == "text" and isinstance(block, _DocumentBlock) and source.data is not None:
        return Attachment(mime_type="text/plain", content=base64.b64encode(source.data.encode()).decode())
    kind = block.__struct_config__.tag
    raise HttpError.unsupported(f"{kind} sources of type {source.type!r} are not served over parley's HTTP endpoints")


async def _complete(answer: Answer, turn: Turn) -> Response:
    content = Content()
    async for event in turn:
        if isinstance(event, ErrorEvent):
            return anthropic_error(HttpError.from_event(event))
        content.add(answer.take(event))
    content.add(answer.end())
    return JSONResponse(answer.message(content.blocks, answer.stop_reason))


def _sse(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + _encode(event) + b"\n\n"


async def _stream(answer: Answer, turn: Turn) -> AsyncIterator[bytes]:
    yield _sse({"type": "message_start", "message": answer.message([], None)})
    async for event in turn:
        if isinstance(event, ErrorEvent):
            yield _sse(anthropic_body(HttpError.from_event(event)))
            return
        for out in answer.take(event):
            yield _sse(out)
    for out in answer.end():
        yield _sse(out)
    yield _sse({"type": "message_delta", "delta": {"stop_reason": answer.stop_reason, "stop_sequence": None}, "usage": answer.usage})
    yield _sse({"type": "message_stop"})
