"""Anthropic's Messages API, streamed.

The stream maps to events as follows:

- ``text_delta`` → ``text``.
- ``thinking_delta`` → ``reasoning``; the block's ``signature_delta`` → a ``reasoning`` event
  with no text and ``providerMetadata: {"anthropic": {"signature": …}}``, which the daemon
  stores on the reasoning part. A ``redacted_thinking`` block → ``reasoning`` with
  ``redacted: true`` and ``{"anthropic": {"redactedData": …}}``. Reasoning blocks that follow
  each other end up in one part, so such a run is described whole, in order, by
  ``{"anthropic": {"blocks": [{"type": "thinking", "length": n, "signature": …},
  {"type": "redacted_thinking", "data": …}]}}`` (``length`` slices the part's text).
- ``tool_use`` → ``tool_call_name`` then ``tool_call_args`` (the ``input_json_delta`` pieces).
- server tools: ``server_tool_use`` → ``tool_call_name``/``tool_call_args`` with its
  ``srvtoolu_`` id; ``web_search_tool_result`` (and any ``*_tool_result`` block) →
  ``tool_result`` with ``serverExecuted: true`` and the block's ``content`` as JSON ``output``.
- ``message_start``/``message_delta`` usage and ``stop_reason`` → one ``usage`` event at the end.
- ``ping`` is ignored; an ``error`` event is a failure of the matching kind (``overloaded_error``
  → ``overloaded``).

The ``schema`` option is Anthropic's structured output, ``output_config: {format: {type:
"json_schema", schema}}`` (Claude 4.5 models and later; the answer streams as ``text_delta``s
of JSON). A model that does not take it is configured with ``capabilities`` saying ``schema:
false``, or ``options`` without ``schema``.

On the next turn, reasoning parts go back as ``thinking``/``redacted_thinking`` blocks only when
they carry Anthropic metadata (reasoning from other providers is dropped), server tool calls go
back with their results unchanged, and thinking is left off for a request whose open tool loop
has no thinking block to start the last assistant turn (after a switch from another provider),
since Anthropic refuses that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

import httpx
import msgspec
from msgspec import Meta
from parley._types import (
    AnyEvent,
    AttachmentPart,
    Message,
    ModelCapabilities,
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

from .._base import ModelFailure, ModelRequest
from ._attachments import accepts, load
from ._model import (
    HTTPModel,
    assign_tool_ids,
    is_server_call,
    opt,
    options_struct,
    paired_tool_ids,
    sse_events,
)

API_VERSION = "2023-06-01"
WEB_SEARCH_TOOL = "web_search_20250305"
DEFAULT_THINKING_BUDGET = 4096

OPTION_TYPES: dict[str, Any] = {
    "max_tokens": Annotated[int, Meta(ge=1)],
    "temperature": Annotated[float, Meta(ge=0, le=1)],
    "top_p": Annotated[float, Meta(ge=0, le=1)],
    "top_k": Annotated[int, Meta(ge=1)],
    "stop": str | list[str],
    "thinking": bool,
    "thinking_budget": Annotated[int, Meta(ge=1024)],
    "tool_choice": str,
    "parallel_tool_calls": bool,
    "web_search": bool,
    "web_search_max_uses": Annotated[int, Meta(ge=1)],
    "schema": dict[str, Any],
}
DEFAULT_OPTIONS = tuple(OPTION_TYPES)

DEFAULT_CAPABILITIES = ModelCapabilities(
    streaming=True, tools=True, reasoning=True, attachments=["image/*", "application/pdf", "text/*"], schema=True
)


def _check(options: Any) -> None:
    """Combinations Anthropic refuses, refused here first (the registry makes them -32602)."""
    thinking = bool(getattr(options, "thinking", None) or getattr(options, "thinking_budget", None))
    if getattr(options, "thinking", None) is False and getattr(options, "thinking_budget", None):
        raise ValueError("thinkingBudget needs thinking")
    if thinking:
        temperature = getattr(options, "temperature", None)
        if temperature is not None and temperature != 1:
            raise ValueError("temperature cannot be set with thinking (Anthropic takes only 1)")
        if getattr(options, "top_k", None) is not None:
            raise ValueError("topK cannot be set with thinking")
        top_p = getattr(options, "top_p", None)
        if top_p is not None and not 0.95 <= top_p <= 1:
            raise ValueError("topP must be between 0.95 and 1 with thinking")
        if getattr(options, "tool_choice", None) not in (None, "auto", "none"):
            raise ValueError("toolChoice cannot force a tool with thinking")
        budget = getattr(options, "thinking_budget", None)
        max_tokens = getattr(options, "max_tokens", None)
        if budget is not None and max_tokens is not None and budget >= max_tokens:
            raise ValueError("maxTokens must be greater than thinkingBudget")
        if max_tokens is not None and max_tokens <= 1024:
            raise ValueError("maxTokens must be over 1024 with thinking (the smallest budget is 1024)")


class AnthropicModel(HTTPModel):
    """A model behind ``POST {base_url}/v1/messages`` (``base_url`` with or without ``/v1``).

    ``max_tokens`` is what a request asks for when the ``maxTokens`` option is not given
    (Anthropic requires one). ``betas`` go in the ``anthropic-beta`` header.
    """

    kind = "anthropic"
    provider = "anthropic"
    capabilities = DEFAULT_CAPABILITIES

    def __init__(
        self,
        model_id: str,
        name: str | None = None,
        *,
        base_url: str = "https://api.anthropic.com",
        options: Iterable[str] | None = None,
        max_tokens: int = 8192,
        betas: list[str] | None = None,
        version: str = API_VERSION,
        fetch_urls: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(model_id, name or model_id, base_url=base_url, **kwargs)
        if options is None:
            options = [
                o
                for o in DEFAULT_OPTIONS
                if (o not in ("tool_choice", "parallel_tool_calls") or self.capabilities.tools)
                and (o not in ("thinking", "thinking_budget") or self.capabilities.reasoning)
                and (o != "schema" or self.capabilities.schema)
            ]
        self.Options = options_struct("AnthropicOptions", OPTION_TYPES, options, _check)  # type: ignore[misc]
        self.max_tokens = max_tokens
        self.betas = list(betas or [])
        self.version = version
        self.fetch_urls = fetch_urls

    @property
    def url(self) -> str:
        return f"{self.base_url}/messages" if self.base_url.endswith("/v1") else f"{self.base_url}/v1/messages"

    def _auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.version}
        if self.betas:
            headers["anthropic-beta"] = ",".join(self.betas)
        key = self._api_key
        if key:
            headers["x-api-key"] = key
        return headers

    # ---- the request ----------------------------------------------------------

    async def _body(self, request: ModelRequest) -> dict[str, Any]:
        options = request.options
        system, turns = await self._turns(request)
        budget = opt(options, "thinking_budget")
        thinking = bool(opt(options, "thinking") or budget)
        max_tokens = opt(options, "max_tokens")
        if thinking and budget is None:
            budget = DEFAULT_THINKING_BUDGET if max_tokens is None else min(DEFAULT_THINKING_BUDGET, max_tokens - 1)
        if max_tokens is None:
            max_tokens = self.max_tokens if not thinking or self.max_tokens > budget else budget + self.max_tokens
        body: dict[str, Any] = {"model": self.name, "max_tokens": max_tokens, "messages": turns, "stream": True}
        if system:
            body["system"] = system
        if thinking and _open_tool_loop_without_thinking(turns):
            thinking = False  # Anthropic needs the last assistant turn to start with thinking then
        if thinking:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        tools: list[dict[str, Any]] = []
        if request.tools:
            if not self.capabilities.tools:
                raise ModelFailure("bad_request", f"model {self.id!r} does not take tools")
            tools = [
                {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    "input_schema": tool.input_schema,
                }
                for tool in request.tools
            ]
        if opt(options, "web_search"):
            search: dict[str, Any] = {"type": WEB_SEARCH_TOOL, "name": "web_search"}
            if opt(options, "web_search_max_uses"):
                search["max_uses"] = opt(options, "web_search_max_uses")
            tools.append(search)
        if tools:
            body["tools"] = tools
            choice = opt(options, "tool_choice")
            tool_choice: dict[str, Any] | None = None
            if choice in ("auto", "none"):
                tool_choice = {"type": choice}
            elif choice == "required":
                tool_choice = {"type": "any"}
            elif choice is not None:
                if choice not in {tool["name"] for tool in tools}:
                    raise ModelFailure("bad_request", f"option toolChoice: no tool named {choice!r} was given")
                tool_choice = {"type": "tool", "name": choice}
            if opt(options, "parallel_tool_calls") is False:
                tool_choice = tool_choice or {"type": "auto"}
                if tool_choice["type"] != "none":
                    tool_choice["disable_parallel_tool_use"] = True
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        for name, key in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k")):
            value = opt(options, name)
            if value is not None:
                body[key] = value
        stop = opt(options, "stop")
        if stop is not None:
            body["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        schema = opt(options, "schema")
        if schema is not None:
            body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        return body

    async def _turns(self, request: ModelRequest) -> tuple[str | None, list[dict[str, Any]]]:
        messages = assign_tool_ids(request.messages)
        paired = paired_tool_ids(messages)
        system = [request.system] if request.system else []
        turns: list[dict[str, Any]] = []

        def add(role: str, blocks: list[dict[str, Any]]) -> None:
            if not blocks:
                return
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"].extend(blocks)
            else:
                turns.append({"role": role, "content": blocks})

        for message in messages:
            if message.role == "system":
                text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
                if text:
                    system.append(text)
            elif message.role == "assistant":
                add("assistant", _assistant_blocks(message, paired))
            else:
                results: list[dict[str, Any]] = []
                blocks: list[dict[str, Any]] = []
                for part in message.parts:
                    if isinstance(part, ToolResultPart):
                        if part.server_executed:
                            continue
                        if part.tool_call_id in paired:
                            results.append(await self._tool_result(part))
                        else:  # its call is gone: keep what it said, as text
                            blocks.append({"type": "text", "text": f"[result of tool {part.name}]\n{_result_text(part)}"})
                    elif isinstance(part, TextPart):
                        if part.text.strip():
                            blocks.append({"type": "text", "text": part.text})
                    elif isinstance(part, AttachmentPart):
                        blocks.append(await self._attachment(part))
                add("user", results + blocks)
        if not turns:
            raise ModelFailure("bad_request", "the prompt has no message to send")
        return "\n\n".join(system) or None, turns

    async def _tool_result(self, part: ToolResultPart) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
        text = _result_text(part)
        if part.attachments:
            content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            for attachment in part.attachments:
                content.append(await self._attachment(AttachmentPart(attachment=attachment)))
            block["content"] = content
        elif text:
            block["content"] = text
        if part.exception:
            block["is_error"] = True
        return block

    async def _attachment(self, part: AttachmentPart) -> dict[str, Any]:
        blob = await load(part.attachment, fetch=False)
        mime = blob.mime_type
        if blob.url is not None and (self.fetch_urls or not (mime.startswith("image/") or mime == "application/pdf")):
            blob = await load(part.attachment, fetch=True, client=self.client)
            mime = blob.mime_type
        if not accepts(self.capabilities.attachments, mime):
            raise ModelFailure(
                "bad_request",
                f"model {self.id!r} does not take {mime} attachments (it takes: {', '.join(self.capabilities.attachments) or 'none'})",
            )
        if mime.startswith("text/"):
            return {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": blob.text()}}
        if blob.url is not None:
            source: dict[str, Any] = {"type": "url", "url": blob.url}
        else:
            source = {"type": "base64", "media_type": mime, "data": blob.b64}
        return {"type": "image" if mime.startswith("image/") else "document", "source": source}

    # ---- the response ---------------------------------------------------------

    async def _events(self, response: httpx.Response) -> AsyncIterator[AnyEvent]:
        state = _StreamState(self)
        async for event in sse_events(response, state):
            yield event


def _assistant_blocks(message: Message, paired: set[str]) -> list[dict[str, Any]]:
    server_results = {p.tool_call_id: p for p in message.parts if isinstance(p, ToolResultPart) and p.server_executed and p.tool_call_id}
    server_calls = {p.tool_call_id for p in message.parts if isinstance(p, ToolCallPart) and is_server_call(p)}
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text.strip():
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ReasoningPart):
            blocks.extend(_thinking_blocks(part))
        elif isinstance(part, ToolCallPart):
            if is_server_call(part):
                result = server_results.get(part.tool_call_id)
                if result is not None and _result_block(result) is not None:
                    blocks.append({"type": "server_tool_use", "id": part.tool_call_id, "name": part.name, "input": part.arguments})
            elif part.tool_call_id in paired:
                blocks.append({"type": "tool_use", "id": part.tool_call_id, "name": part.name, "input": part.arguments})
        elif isinstance(part, ToolResultPart) and part.server_executed and part.tool_call_id in server_calls:
            block = _result_block(part)
            if block is not None:
                blocks.append(block)
    return blocks


def _result_block(part: ToolResultPart) -> dict[str, Any] | None:
    """A server tool's result block as Anthropic sent it, from the part that stores it."""
    try:
        content = msgspec.json.decode(part.output)
    except msgspec.DecodeError:
        return None
    return {"type": f"{part.name}_tool_result", "tool_use_id": part.tool_call_id, "content": content}


def _thinking_blocks(part: ReasoningPart) -> list[dict[str, Any]]:
    """The thinking blocks a reasoning part came from, or none when it is not Anthropic's."""
    meta = (part.provider_metadata or {}).get("anthropic")
    if not isinstance(meta, dict):
        return []
    if isinstance(meta.get("blocks"), list):
        blocks, offset = [], 0
        for block in meta["blocks"]:
            if block.get("type") == "thinking" and block.get("signature"):
                length = int(block.get("length", 0))
                blocks.append({"type": "thinking", "thinking": part.text[offset : offset + length], "signature": block["signature"]})
                offset += length
            elif block.get("type") == "redacted_thinking" and block.get("data"):
                blocks.append({"type": "redacted_thinking", "data": block["data"]})
            else:
                return []  # not as this provider wrote it: leave the run out whole
        return blocks
    if meta.get("signature"):
        return [{"type": "thinking", "thinking": part.text, "signature": meta["signature"]}]
    if meta.get("redactedData"):
        return [{"type": "redacted_thinking", "data": meta["redactedData"]}]
    return []


def _open_tool_loop_without_thinking(turns: list[dict[str, Any]]) -> bool:
    """Whether the request continues a tool loop whose assistant turn does not start with thinking."""
    if len(turns) < 2 or turns[-1]["role"] != "user":
        return False
    if not any(block["type"] == "tool_result" for block in turns[-1]["content"]):
        return False
    last = turns[-2]
    if last["role"] != "assistant" or not any(block["type"] == "tool_use" for block in last["content"]):
        return False
    return last["content"][0]["type"] not in ("thinking", "redacted_thinking")


def _result_text(part: ToolResultPart) -> str:
    if part.exception:
        return f"{part.output}\n\nError: {part.exception}" if part.output else f"Error: {part.exception}"
    return part.output


class _Block:
    __slots__ = ("args", "data", "id", "input", "length", "name", "signature", "type")

    def __init__(self, type: str, id: str | None = None, name: str | None = None) -> None:
        self.type = type
        self.id = id
        self.name = name
        self.length = 0
        self.signature: str | None = None
        self.data: str | None = None
        self.args = False
        self.input: Any = None


_decode = msgspec.json.decode


class _StreamState:
    """The events of one Messages stream so far."""

    def __init__(self, model: AnthropicModel) -> None:
        self.model = model
        self.blocks: dict[int, _Block] = {}
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.done = False
        self.seen = 0
        self.run: list[dict[str, Any]] = []  # reasoning blocks since the last other output
        self.server_tools: dict[str, str] = {}  # srvtoolu id → tool name

    def event(self, kind: str, data: str) -> list[AnyEvent]:
        if self.done:
            return []
        try:
            payload = _decode(data)
        except msgspec.DecodeError:
            raise self._malformed(data) from None
        if not isinstance(payload, dict):
            raise self._malformed(data)
        etype = payload.get("type") or kind
        if etype == "error" or kind == "error":
            raise self.model.failure(None, payload)
        self.seen += 1
        try:
            events = self._dispatch(etype, payload)
        except (AttributeError, TypeError, ValueError, KeyError):
            raise self._malformed(data) from None
        if events and not isinstance(events[-1], ReasoningEvent):
            self.run = []
        return events

    def _malformed(self, data: str) -> ModelFailure:
        shown = data if len(data) <= 120 else data[:119] + "…"
        return ModelFailure("provider_error", f"{self.model.provider} sent a malformed stream event: {shown!r}")

    def _dispatch(self, etype: str, payload: dict[str, Any]) -> list[AnyEvent]:
        if etype == "content_block_delta":
            return self._delta(self.blocks[payload["index"]], payload["delta"])
        if etype == "content_block_start":
            return self._start(payload["index"], payload["content_block"])
        if etype == "content_block_stop":
            block = self.blocks.get(payload["index"])
            return self._stop(block) if block is not None else []
        if etype == "message_start":
            message = payload.get("message") or {}
            self.usage.update(message.get("usage") or {})
        elif etype == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason"):
                self.stop_reason = delta["stop_reason"]
            self.usage.update(payload.get("usage") or {})
        elif etype == "message_stop":
            self.done = True
        return []  # ping, and event types newer than this code

    def _start(self, index: int, content: dict[str, Any]) -> list[AnyEvent]:
        btype = content.get("type", "")
        block = self.blocks[index] = _Block(btype, content.get("id"), content.get("name"))
        if btype == "text":
            return [TextEvent(chunk=content["text"])] if content.get("text") else []
        if btype == "thinking":
            if content.get("thinking"):
                block.length += len(content["thinking"])
                return [ReasoningEvent(chunk=content["thinking"])]
            block.signature = content.get("signature") or None
            return []
        if btype == "redacted_thinking":
            block.data = content.get("data")
            return []
        if btype in ("tool_use", "server_tool_use", "mcp_tool_use"):
            block.id = block.id or f"toolu_{index}"
            if btype != "tool_use":
                self.server_tools[block.id] = block.name or ""
            block.input = content.get("input")
            return [ToolCallNameEvent(chunk=block.name or "", tool_call_id=block.id, server_executed=btype != "tool_use")]
        if btype.endswith("_tool_result"):
            tool_use_id = content.get("tool_use_id", "")
            result = content.get("content")
            exception = None
            if isinstance(result, dict) and str(result.get("type", "")).endswith("_error"):
                exception = str(result.get("error_code") or result.get("type"))
            name = self.server_tools.get(tool_use_id) or btype.removesuffix("_tool_result")
            return [
                ToolResultEvent(
                    tool_call_id=tool_use_id,
                    name=name,
                    output=msgspec.json.encode(result).decode(),
                    exception=exception,
                    server_executed=True,
                )
            ]
        return []

    def _delta(self, block: _Block, delta: dict[str, Any]) -> list[AnyEvent]:
        dtype = delta.get("type")
        if dtype == "text_delta":
            return [TextEvent(chunk=delta["text"])] if delta["text"] else []
        if dtype == "thinking_delta":
            block.length += len(delta["thinking"])
            return [ReasoningEvent(chunk=delta["thinking"])] if delta["thinking"] else []
        if dtype == "signature_delta":
            block.signature = (block.signature or "") + delta["signature"]
            return []
        if dtype == "input_json_delta":
            if not delta.get("partial_json"):
                return []
            block.args = True
            return [ToolCallArgsEvent(chunk=delta["partial_json"], tool_call_id=block.id or "")]
        return []  # citations_delta, and delta types newer than this code

    def _stop(self, block: _Block) -> list[AnyEvent]:
        if block.type in ("tool_use", "server_tool_use", "mcp_tool_use"):
            if not block.args and block.input:
                return [ToolCallArgsEvent(chunk=msgspec.json.encode(block.input).decode(), tool_call_id=block.id or "")]
            return []
        if block.type == "thinking":
            if not block.signature:
                return []
            self.run.append({"type": "thinking", "length": block.length, "signature": block.signature})
            return [ReasoningEvent(chunk="", provider_metadata={"anthropic": self._run_metadata()})]
        if block.type == "redacted_thinking":
            if not block.data:
                return []
            self.run.append({"type": "redacted_thinking", "data": block.data})
            return [ReasoningEvent(chunk="", redacted=True, provider_metadata={"anthropic": self._run_metadata()})]
        return []

    def _run_metadata(self) -> dict[str, Any]:
        if len(self.run) > 1:
            return {"blocks": list(self.run)}
        only = self.run[0]
        return {"signature": only["signature"]} if only["type"] == "thinking" else {"redactedData": only["data"]}

    def end(self) -> list[AnyEvent]:
        if not self.done and self.stop_reason is None:
            if self.seen == 0:
                raise ModelFailure("provider_error", f"{self.model.provider} answered with no stream events", retryable=True)
            raise ModelFailure("network", f"the stream from {self.model.where} ended before the response was complete", retryable=True)
        usage = self.usage
        details: dict[str, Any] = {}
        for key, value in usage.items():
            if key in ("input_tokens", "output_tokens") or not value or isinstance(value, str):
                continue
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if v}
                if not value:
                    continue
            details[key] = value
        if self.stop_reason:
            details["stop_reason"] = self.stop_reason
        return [UsageEvent(input=usage.get("input_tokens"), output=usage.get("output_tokens"), details=details or None)]
