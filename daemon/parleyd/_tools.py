"""Running a response's tool calls: ``tool/execute`` on the connection that declared the tool,
or the daemon's own MCP servers (``_mcp``) for the ones the prompt named in ``mcpServers``.

The code of a client's tool lives in that client (a script, an editor); the daemon
only orchestrates the chain: model round, tool calls, results, next round. A client's
tool wins a name clash with an MCP tool.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parley._errors import RequestError
from parley._types import ToolCallPart, ToolExecuteParams, ToolResultEvent, ToolSpec

if TYPE_CHECKING:
    from ._connection import Connection
    from ._mcp import McpTools


class ToolClientGone(Exception):
    """The connection that declared the tools closed before answering."""


@dataclass
class ToolChain:
    """The tools one connection declared for a response, and how many model rounds may run."""

    connection: Connection
    names: frozenset[str]
    chain_limit: int
    timeout: float
    mcp: McpTools | None = None

    async def mcp_specs(self) -> list[ToolSpec]:
        """The MCP tools to offer the model beside the client's (none without ``mcpServers``)."""
        return [] if self.mcp is None else await self.mcp.specs(self.names)

    async def run(self, response_id: str, call: ToolCallPart, emit: Any) -> ToolResultEvent:
        """Execute one call; a failure of the tool becomes the result's ``exception``."""
        result = ToolResultEvent(tool_call_id=call.tool_call_id or "", name=call.name, output="")
        if call.name not in self.names and self.mcp is not None and call.name in self.mcp.routes:
            return await self.mcp.run(response_id, call, self.connection, emit)
        if call.name not in self.names:
            down = None if self.mcp is None else self.mcp.why_missing(call.name)
            result.exception = f"no tool named {call.name!r} was declared" + (f" ({down})" if down else "")
            return result
        params = ToolExecuteParams(response_id=response_id, tool_call_id=result.tool_call_id, name=call.name, arguments=call.arguments)
        try:
            answer = await asyncio.wait_for(self.connection.execute_tool(params), self.timeout)
        except TimeoutError:
            result.exception = f"the client did not answer tool/execute within {self.timeout:g} s"
        except RequestError as exc:
            result.exception = f"the client answered tool/execute with an error: {exc.message}"
        else:
            result.output, result.exception = answer.output, answer.exception
        return result

    async def run_all(self, response_id: str, calls: list[ToolCallPart], emit) -> None:  # type: ignore[no-untyped-def]
        """Run the calls in parallel, emitting each result as it comes; ToolClientGone stops them all."""

        async def one(call: ToolCallPart) -> None:
            emit(await self.run(response_id, call, emit))

        try:
            async with asyncio.TaskGroup() as group:
                for call in calls:
                    group.create_task(one(call))
        except* ToolClientGone:
            raise ToolClientGone() from None
