"""OpenAI-compatible chat completions, streamed: OpenAI, Ollama, llama.cpp, vLLM, LM Studio,
OpenRouter, DeepSeek, Groq and the rest.

The stream maps to events as follows:

- ``delta.content`` → ``text``; ``delta.reasoning_content`` (DeepSeek, vLLM, llama.cpp) or
  ``delta.reasoning`` (OpenRouter, Ollama, newer vLLM) → ``reasoning``; ``delta.refusal`` → ``text``.
- ``delta.tool_calls[]`` by ``index`` → ``tool_call_name`` once per call (servers that repeat
  the name in every chunk are not concatenated) and ``tool_call_args`` with the call's id
  (one is made up when the server sends none).
- the ``usage`` chunk (``stream_options.include_usage``) and the ``finish_reason`` → one
  ``usage`` event at the end, ``details.stop_reason`` carrying the finish reason.
- ``data: {"error": …}`` in the stream → a failure of the matching kind.

Reasoning parts of earlier turns are not sent back (DeepSeek refuses them, the others
ignore them); tool calls go back as ``tool_calls`` and tool results as ``tool`` messages.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any, Literal

import httpx
import msgspec
from msgspec import Meta
from parley._types import (
    AnyEvent,
    AnyPart,
    AttachmentEvent,
    AttachmentPart,
    Message,
    ModelCapabilities,
    ReasoningEvent,
    TextEvent,
    TextPart,
    ToolCallArgsEvent,
    ToolCallNameEvent,
    ToolCallPart,
    ToolResultPart,
    UsageEvent,
)

from .._base import ModelFailure, ModelRequest
from ._attachments import accepts, load
from ._model import (
    HTTPModel,
    assign_tool_ids,
    is_server_call,
    json_args,
    opt,
    options_struct,
    paired_tool_ids,
    sse_events,
)

OPTION_TYPES: dict[str, Any] = {
    "temperature": Annotated[float, Meta(ge=0, le=2)],
    "max_tokens": Annotated[int, Meta(ge=1)],
    "top_p": Annotated[float, Meta(ge=0, le=1)],
    "seed": int,
    "stop": str | list[str],
    "frequency_penalty": Annotated[float, Meta(ge=-2, le=2)],
    "presence_penalty": Annotated[float, Meta(ge=-2, le=2)],
    "reasoning_effort": str,
    "schema": dict[str, Any],
    "tool_choice": str,
    "parallel_tool_calls": bool,
    # not OpenAI's own: llama.cpp, vLLM, Ollama and LM Studio take these
    "top_k": Annotated[int, Meta(ge=0)],
    "min_p": Annotated[float, Meta(ge=0, le=1)],
    "repeat_penalty": Annotated[float, Meta(ge=0)],
}
#: The options a model takes unless its configuration names others.
DEFAULT_OPTIONS = (
    "temperature",
    "max_tokens",
    "top_p",
    "seed",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "reasoning_effort",
    "schema",
    "tool_choice",
    "parallel_tool_calls",
)
_PASSED = (
    "temperature",
    "top_p",
    "seed",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "reasoning_effort",
    "parallel_tool_calls",
    "top_k",
    "min_p",
    "repeat_penalty",
)

DEFAULT_CAPABILITIES = ModelCapabilities(
    streaming=True,
    tools=True,
    reasoning=True,
    attachments=["image/*", "audio/wav", "audio/mpeg", "application/pdf", "text/*"],
    schema=True,
)

_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}


class OpenAIChatModel(HTTPModel):
    """A model behind ``POST {base_url}/chat/completions``.

    ``name`` is the upstream model name; ``model_id`` and ``aliases`` are what clients use.
    ``options`` names the options this model takes (default ``DEFAULT_OPTIONS``; ``top_k``,
    ``min_p`` and ``repeat_penalty`` exist for local servers). ``max_tokens_field`` is
    ``"max_completion_tokens"`` for OpenAI's reasoning models. ``extra_body`` is merged into
    every request (e.g. Ollama's ``{"keep_alive": "30m"}``). ``fetch_urls`` downloads http(s)
    image URLs and sends them inline, for servers that cannot fetch them. ``schema_format``
    ``"json_object"`` sends the ``schema`` option as ``{"type": "json_object", "schema": …}``,
    the only form llama-cpp-python's server takes; the rest take OpenAI's ``json_schema``.
    """

    kind = "openai"
    provider = "openai"
    capabilities = DEFAULT_CAPABILITIES

    def __init__(
        self,
        model_id: str,
        name: str | None = None,
        *,
        base_url: str = "https://api.openai.com/v1",
        options: Iterable[str] | None = None,
        stream_usage: bool = True,
        max_tokens_field: str = "max_tokens",
        extra_body: dict[str, Any] | None = None,
        fetch_urls: bool = False,
        schema_format: Literal["json_schema", "json_object"] = "json_schema",
        **kwargs: Any,
    ) -> None:
        super().__init__(model_id, name or model_id, base_url=base_url, **kwargs)
        if options is None:
            options = [
                o
                for o in DEFAULT_OPTIONS
                if (o != "schema" or self.capabilities.schema)
                and (o not in ("tool_choice", "parallel_tool_calls") or self.capabilities.tools)
            ]
        self.Options = options_struct("OpenAIOptions", OPTION_TYPES, options)  # type: ignore[misc]
        self.stream_usage = stream_usage
        self.max_tokens_field = max_tokens_field
        self.extra_body = dict(extra_body or {})
        self.fetch_urls = fetch_urls
        self.schema_format = schema_format

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _auth_headers(self) -> dict[str, str]:
        key = self._api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    # ---- the request ----------------------------------------------------------

    async def _body(self, request: ModelRequest) -> dict[str, Any]:
        options = request.options
        body: dict[str, Any] = {"model": self.name, "messages": await self._messages(request), "stream": True}
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        if request.tools:
            if not self.capabilities.tools:
                raise ModelFailure("bad_request", f"model {self.id!r} does not take tools")
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        **({"description": tool.description} if tool.description else {}),
                        "parameters": tool.input_schema,
                    },
                }
                for tool in request.tools
            ]
            choice = opt(options, "tool_choice")
            if choice in ("auto", "none", "required"):
                body["tool_choice"] = choice
            elif choice is not None:
                if choice not in {tool.name for tool in request.tools}:
                    raise ModelFailure("bad_request", f"option toolChoice: no tool named {choice!r} was given")
                body["tool_choice"] = {"type": "function", "function": {"name": choice}}
        for name in _PASSED:
            value = opt(options, name)
            if value is not None and (name != "parallel_tool_calls" or request.tools):
                body[name] = value
        max_tokens = opt(options, "max_tokens")
        if max_tokens is not None:
            body[self.max_tokens_field] = max_tokens
        schema = opt(options, "schema")
        if schema is not None:
            if self.schema_format == "json_object":
                body["response_format"] = {"type": "json_object", "schema": schema}
            else:
                body["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
        body.update(self.extra_body)
        return body

    async def _messages(self, request: ModelRequest) -> list[dict[str, Any]]:
        messages = assign_tool_ids(request.messages)
        paired = paired_tool_ids(messages)
        out: list[dict[str, Any]] = []
        if request.system:
            out.append({"role": "system", "content": request.system})
        for message in messages:
            if message.role == "system":
                text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
                if text:
                    out.append({"role": "system", "content": text})
            elif message.role == "assistant":
                out.extend(self._assistant(message, paired))
            else:  # user and tool messages: tool results first, as `tool` messages
                rest: list[AnyPart] = []
                for part in message.parts:
                    if isinstance(part, ToolResultPart):
                        if part.server_executed:
                            continue
                        if part.tool_call_id in paired:
                            out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": _result_text(part)})
                        else:  # its call is gone: keep what it said, as text
                            rest.append(TextPart(text=f"[result of tool {part.name}]\n{_result_text(part)}"))
                    else:
                        rest.append(part)
                if rest:
                    content = await self._user_content(rest)
                    if content:
                        out.append({"role": "user", "content": content})
        if not any(m["role"] != "system" for m in out):
            raise ModelFailure("bad_request", "the prompt has no message to send")
        return out

    def _assistant(self, message: Message, paired: set[str]) -> list[dict[str, Any]]:
        text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
        calls = [
            {"id": p.tool_call_id, "type": "function", "function": {"name": p.name, "arguments": json_args(p.arguments)}}
            for p in message.parts
            if isinstance(p, ToolCallPart) and not is_server_call(p) and p.tool_call_id in paired
        ]
        if not text and not calls:
            return []  # reasoning only, or a cut-off call: nothing this provider can take
        # "" rather than null with tool calls: llama-cpp-python and others need a string
        out: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            out["tool_calls"] = calls
        return [out]

    async def _user_content(self, parts: list[AnyPart]) -> str | list[dict[str, Any]]:
        if all(isinstance(p, TextPart) for p in parts):
            return "".join(p.text for p in parts if isinstance(p, TextPart))
        content: list[dict[str, Any]] = []
        for part in parts:
            if isinstance(part, TextPart):
                if part.text:
                    content.append({"type": "text", "text": part.text})
            elif isinstance(part, AttachmentPart):
                content.append(await self._attachment(part))
        return content

    async def _attachment(self, part: AttachmentPart) -> dict[str, Any]:
        blob = await load(part.attachment, fetch=False)
        if blob.url is not None and (self.fetch_urls or not blob.mime_type.startswith("image/")):
            # only images go by URL; audio and files must be inline
            blob = await load(part.attachment, fetch=True, client=self.client)
        mime = blob.mime_type
        if not accepts(self.capabilities.attachments, mime):
            raise ModelFailure(
                "bad_request",
                f"model {self.id!r} does not take {mime} attachments (it takes: {', '.join(self.capabilities.attachments) or 'none'})",
            )
        if mime.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": blob.url or blob.data_url()}}
        if mime.startswith("audio/"):
            return {"type": "input_audio", "input_audio": {"data": blob.b64, "format": _AUDIO_FORMATS.get(mime, mime.split("/")[1])}}
        if mime.startswith("text/"):
            return {"type": "text", "text": blob.text()}
        return {"type": "file", "file": {"filename": blob.name or "attachment.pdf", "file_data": blob.data_url()}}

    # ---- the response ---------------------------------------------------------

    async def _events(self, response: httpx.Response) -> AsyncIterator[AnyEvent]:
        state = _StreamState(self)
        content_type = response.headers.get("content-type", "")
        if "json" in content_type and "event-stream" not in content_type:
            # A server that ignored `stream: true` (some do when tools are given): one whole completion.
            for event in state.completion(await response.aread()):
                yield event
            return
        async for event in sse_events(response, state):
            yield event


class _Call:
    __slots__ = ("id", "named")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.named = False


_decode = msgspec.json.decode


class _StreamState:
    """The chunks of one response so far: tool calls by index, usage, finish reason."""

    def __init__(self, model: OpenAIChatModel) -> None:
        self.model = model
        self.calls: dict[int, _Call] = {}
        self.usage: dict[str, Any] | None = None
        self.finish: str | None = None
        self.done = False
        self.seen = 0

    def event(self, kind: str, data: str) -> list[AnyEvent]:
        if self.done:
            return []
        if data == "[DONE]":
            self.done = True
            return []
        try:
            chunk = _decode(data)
        except msgspec.DecodeError:
            raise self._malformed(data) from None
        if not isinstance(chunk, dict):
            raise self._malformed(data)
        if kind == "error" or chunk.get("error"):
            raise self.model.failure(None, chunk)
        self.seen += 1
        try:
            return self._chunk(chunk)
        except (AttributeError, TypeError, ValueError, KeyError):
            raise self._malformed(data) from None

    def _malformed(self, data: str) -> ModelFailure:
        shown = data if len(data) <= 120 else data[:119] + "…"
        return ModelFailure("provider_error", f"{self.model.provider} sent a malformed stream chunk: {shown!r}")

    def _chunk(self, chunk: dict[str, Any]) -> list[AnyEvent]:
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        events: list[AnyEvent] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                events.append(ReasoningEvent(chunk=reasoning))
            content = delta.get("content")
            if isinstance(content, str):
                if content:
                    events.append(TextEvent(chunk=content))
            elif isinstance(content, list):  # Mistral: typed content pieces
                events.extend(_content_pieces(content))
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                events.append(TextEvent(chunk=refusal))
            tool_calls = delta.get("tool_calls")
            if tool_calls:
                self._tool_calls(tool_calls, events)
            for image in delta.get("images") or ():  # OpenRouter's image output
                url = (image.get("image_url") or {}).get("url", "")
                if url.startswith("data:") and ";base64," in url:
                    mime, _, b64 = url[5:].partition(";base64,")
                    events.append(AttachmentEvent(mime_type=mime, content=b64))
            finish = choice.get("finish_reason")
            if finish:
                self.finish = finish
        return events

    def _tool_calls(self, tool_calls: list[dict[str, Any]], events: list[AnyEvent]) -> None:
        for position, delta in enumerate(tool_calls):
            index = delta.get("index")
            if not isinstance(index, int):
                index = position
            function = delta.get("function") or {}
            name = function.get("name")
            call_id = delta.get("id")
            call = self.calls.get(index)
            if call is None or (call_id and name and call.named and call_id != call.id):
                # a new call, or another call at a reused index (some servers send every call at 0)
                call = self.calls[index] = _Call(call_id or f"call_{uuid.uuid4().hex[:24]}")
            if name and not call.named:
                call.named = True
                events.append(ToolCallNameEvent(chunk=name, tool_call_id=call.id))
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                if arguments:
                    events.append(ToolCallArgsEvent(chunk=arguments, tool_call_id=call.id))
            elif isinstance(arguments, dict):
                events.append(ToolCallArgsEvent(chunk=json_args(arguments), tool_call_id=call.id))

    def end(self) -> list[AnyEvent]:
        if not self.done and self.finish is None:
            if self.seen == 0:
                raise ModelFailure("provider_error", f"{self.model.provider} answered with no stream chunks", retryable=True)
            raise ModelFailure("network", f"the stream from {self.model.where} ended before the response was complete", retryable=True)
        if self.usage is None and self.finish is None:
            return []
        usage = self.usage or {}
        details: dict[str, Any] = {}
        for key, value in usage.items():
            if key in ("prompt_tokens", "completion_tokens", "total_tokens") or not value:
                continue
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if v}
                if not value:
                    continue
            details[key] = value
        if self.finish:
            details["stop_reason"] = self.finish
        return [UsageEvent(input=usage.get("prompt_tokens"), output=usage.get("completion_tokens"), details=details or None)]

    def completion(self, body: bytes) -> list[AnyEvent]:
        """The events of a whole (non-streamed) completion."""
        try:
            data = _decode(body)
            choices = data.get("choices") or []
            message = dict(choices[0].get("message") or {}) if choices else {}
            if message.get("tool_calls"):
                message["tool_calls"] = [dict(call, index=i) for i, call in enumerate(message["tool_calls"])]
            chunk = {"choices": [{"index": 0, "delta": message, "finish_reason": choices[0].get("finish_reason") if choices else None}]}
            if data.get("usage"):
                chunk["usage"] = data["usage"]
            if data.get("error"):
                raise self.model.failure(None, data)
            events = self._chunk(chunk)
        except (msgspec.DecodeError, AttributeError, TypeError, IndexError, KeyError):
            raise self._malformed(body.decode("utf-8", "replace")) from None
        self.done = True
        return events + self.end()


def _content_pieces(pieces: list[Any]) -> list[AnyEvent]:
    events: list[AnyEvent] = []
    for piece in pieces:
        if not isinstance(piece, dict):
            continue
        if piece.get("type") == "text" and piece.get("text"):
            events.append(TextEvent(chunk=piece["text"]))
        elif piece.get("type") == "thinking":
            for inner in piece.get("thinking") or ():
                if isinstance(inner, dict) and inner.get("text"):
                    events.append(ReasoningEvent(chunk=inner["text"]))
    return events


def _result_text(part: ToolResultPart) -> str:
    if part.exception:
        return f"{part.output}\n\nError: {part.exception}" if part.output else f"Error: {part.exception}"
    return part.output
