"""A response's events as the content blocks of Anthropic's Messages API (``messages``).

One block is open at a time; blocks are numbered in order. Text and reasoning stream as they
come, and a change of kind closes the open block. A thinking block ends with one
``signature_delta``: the provider's signature when the reasoning carries Anthropic's
(``providerMetadata.anthropic``), else "": there is none, and a block sent back with an empty
signature is kept as reasoning without one (which parley's Anthropic provider leaves out, as
it does other providers' reasoning); a made-up one would be refused by Anthropic. The first
tool call streams too, and its block stays open to the end: parley's calls may interleave
their chunks and text may come between the chunks of one call (PROTOCOL.md 6.3), so what
follows the first call is held, and sent when the message ends, each call whole. The
provider's own tool calls (``serverExecuted``) and their results are not the client's, and
are left out. The non-streamed answer is built from the same stream events (``Content``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from parley._types import AnyEvent, ReasoningEvent, TextEvent, ToolCallArgsEvent, ToolCallNameEvent, UsageEvent

from ._tool_calls import ToolCall, ToolCalls

#: Anthropic's stop reasons by what a provider reported (``usage.details.stop_reason``):
#: Anthropic's own, and OpenAI's finish reasons. Any other is ``end_turn``.
_STOP_REASONS = {
    "max_tokens": "max_tokens",
    "length": "max_tokens",
    "stop_sequence": "stop_sequence",
    "refusal": "refusal",
    "content_filter": "refusal",
    "pause_turn": "pause_turn",
    "model_context_window_exceeded": "model_context_window_exceeded",
}
_CACHE_USAGE = ("cache_creation_input_tokens", "cache_read_input_tokens")


class Answer:
    """parley's events as Anthropic's content blocks, each given as the stream events that build it."""

    def __init__(self, response_id: str, model: str) -> None:
        self.id = f"msg_{response_id}"
        self.model = model
        self.tools = ToolCalls()
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}
        self._reported_stop: str | None = None
        self._index = 0  # of the open block, or of the next one
        self._open: str | None = None  # the open block's type
        self._signature = ""  # the open thinking block's
        self._live: ToolCall | None = None  # the first tool call, whose block stays open
        self._live_started = False
        self._held: list[TextEvent | ReasoningEvent | ToolCall] = []

    def message(self, content: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": self.usage}

    @property
    def stop_reason(self) -> str:
        return "tool_use" if len(self.tools) else _STOP_REASONS.get(self._reported_stop or "", "end_turn")

    def take(self, event: AnyEvent) -> list[dict[str, Any]]:
        """The stream events ``event`` makes now."""
        if isinstance(event, UsageEvent):
            self._add_usage(event)
        elif isinstance(event, ToolCallNameEvent | ToolCallArgsEvent):
            return self._tool(event)
        elif isinstance(event, TextEvent | ReasoningEvent):
            if self._live is None:
                return self._content(event)
            self._held.append(event)
        return []  # server tools' results, attachments: nothing of the client's

    def end(self) -> list[dict[str, Any]]:
        """What ends the content: the first call's block, then what was held, in order."""
        out = self._start_live() + self._close() if self._live is not None else []
        for item in self._held:
            out += self._whole(item) if isinstance(item, ToolCall) else self._content(item)
        return out + self._close()

    def _add_usage(self, event: UsageEvent) -> None:
        details = event.details or {}
        self.usage = {"input_tokens": event.input or 0, "output_tokens": event.output or 0}
        self.usage.update({key: details[key] for key in _CACHE_USAGE if isinstance(details.get(key), int)})
        self._reported_stop = details.get("stop_reason")

    def _tool(self, event: ToolCallNameEvent | ToolCallArgsEvent) -> list[dict[str, Any]]:
        known = event.tool_call_id in self.tools
        call = self.tools.add(event)
        if call is None:
            return []
        if self._live is None:
            self._live = call  # its block opens with its first arguments: by then its name is whole
            return self._close()
        if call is self._live:
            if isinstance(event, ToolCallArgsEvent) and event.chunk:
                return self._start_live() + [self._delta({"type": "input_json_delta", "partial_json": event.chunk})]
        elif not known:
            self._held.append(call)
        return []

    def _start_live(self) -> list[dict[str, Any]]:
        if self._live is None or self._live_started:
            return []
        self._live_started = True
        return self._start({"type": "tool_use", "id": self._live.id, "name": self._live.name, "input": {}})

    def _whole(self, call: ToolCall) -> list[dict[str, Any]]:
        out = self._close() + self._start({"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
        if call.arguments:
            out.append(self._delta({"type": "input_json_delta", "partial_json": call.arguments}))
        return out + self._close()

    def _content(self, event: TextEvent | ReasoningEvent) -> list[dict[str, Any]]:
        if isinstance(event, TextEvent):
            return self._switch("text") + [self._delta({"type": "text_delta", "text": event.chunk})] if event.chunk else []
        signature, data = _anthropic_block(event.provider_metadata)
        if event.redacted:
            data = data or event.chunk
            return self._close() + self._start({"type": "redacted_thinking", "data": data}) + self._close() if data else []
        out = self._switch("thinking") if event.chunk or signature else []
        if event.chunk:
            out.append(self._delta({"type": "thinking_delta", "thinking": event.chunk}))
        if signature:  # the end of the provider's block
            self._signature = signature
            out += self._close()
        return out

    def _switch(self, kind: Literal["text", "thinking"]) -> list[dict[str, Any]]:
        if self._open == kind:
            return []
        block = {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": "", "signature": ""}
        return self._close() + self._start(block)

    def _start(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        self._open = block["type"]
        return [{"type": "content_block_start", "index": self._index, "content_block": block}]

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self._index, "delta": delta}

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        out = [self._delta({"type": "signature_delta", "signature": self._signature})] if self._open == "thinking" else []
        out.append({"type": "content_block_stop", "index": self._index})
        self._open, self._signature = None, ""
        self._index += 1
        return out


def _anthropic_block(metadata: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The signature, or the redacted data, of the newest block a reasoning event's Anthropic
    metadata describes (a run of blocks lists them all, the newest last)."""
    meta = (metadata or {}).get("anthropic")
    if not isinstance(meta, dict):
        return None, None
    blocks = meta.get("blocks")
    newest = blocks[-1] if isinstance(blocks, list) and blocks and isinstance(blocks[-1], dict) else meta
    return newest.get("signature"), newest.get("data") or newest.get("redactedData")


class Content:
    """The blocks that stream events build, as a client builds them: so the answer that is not
    streamed is the streamed one."""

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self._arguments: dict[int, str] = {}  # of the tool_use blocks still open, by index

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            if event["type"] == "content_block_start":
                self.blocks.append(dict(event["content_block"]))
            elif event["type"] == "content_block_delta":
                block, delta, index = self.blocks[event["index"]], event["delta"], event["index"]
                if delta["type"] == "text_delta":
                    block["text"] += delta["text"]
                elif delta["type"] == "thinking_delta":
                    block["thinking"] += delta["thinking"]
                elif delta["type"] == "signature_delta":
                    block["signature"] = delta["signature"]
                elif delta["type"] == "input_json_delta":
                    self._arguments[index] = self._arguments.get(index, "") + delta["partial_json"]
            elif event["type"] == "content_block_stop" and event["index"] in self._arguments:
                self.blocks[event["index"]]["input"] = _input(self._arguments.pop(event["index"]))


def _input(arguments: str) -> dict[str, Any]:
    """A call's arguments as an object; {} when the model's JSON is cut off or not an object
    (parley keeps the text in the stored part's ``partialArguments``)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
