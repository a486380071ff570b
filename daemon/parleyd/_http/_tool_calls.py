"""The client's tool calls in a response's events, gathered by id, for every API's output.

Parallel calls may interleave their chunks, and a name may come in several chunks
(PROTOCOL.md 6.3), so a call is known by its id, not by where its events fall. Calls the
provider runs itself (``serverExecuted``: web search, say) are not the client's to run:
they are left out, and so are their arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from parley._types import ToolCallArgsEvent, ToolCallNameEvent


@dataclass
class ToolCall:
    id: str
    index: int  # among the client's calls, in the order they began
    name: str = ""
    arguments: str = ""  # JSON text, as the chunks brought it


class ToolCalls:
    def __init__(self) -> None:
        self._calls: dict[str, ToolCall] = {}
        self._server_side: set[str] = set()

    def add(self, event: ToolCallNameEvent | ToolCallArgsEvent) -> ToolCall | None:
        """Take a tool call event: the call it adds to, or None when it is none of the client's
        (a call the provider runs, or arguments of a call that was never named)."""
        call_id = event.tool_call_id or ""
        if isinstance(event, ToolCallNameEvent):
            if event.server_executed or call_id in self._server_side:
                self._server_side.add(call_id)
                return None
            call = self._calls.get(call_id)
            if call is None:
                call = self._calls[call_id] = ToolCall(call_id, len(self._calls))
            call.name += event.chunk
            return call
        call = self._calls.get(call_id)
        if call is not None:
            call.arguments += event.chunk
        return call

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def __iter__(self) -> Iterator[ToolCall]:
        return iter(self._calls.values())

    def __len__(self) -> int:
        return len(self._calls)
