"""The MCP tools of one response: offered to its model, and each call approved, run and converted.

A call is approved by the connection that started the prompt (``tool/approve``),
unless it may run unasked (``_approval``); no answer within the approval timeout,
an error answer, or a client that cannot ask, is a deny. The model is told why.
Progress the server reports becomes ``tool_progress`` events; cancelling the
response cancels the call, and the SDK tells the server (``notifications/cancelled``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from parley._errors import RequestError
from parley._types import ToolCallPart, ToolProgressEvent, ToolResultEvent, ToolSpec
from parley._types_mcp import ToolApproveParams, ToolApproveResult

from ._approval import ApprovalStore, runs_unasked
from ._results import convert
from ._server import McpTool, McpUnavailable, ServerOwner

log = logging.getLogger(__name__)


class McpTools:
    def __init__(self, owners: list[ServerOwner], approvals: ApprovalStore, *, approval_timeout: float) -> None:
        self.owners = owners
        self.approvals = approvals
        self.approval_timeout = approval_timeout
        self.routes: dict[str, tuple[ServerOwner, McpTool]] = {}
        self.down: dict[str, str] = {}  # the servers whose tools could not be offered, and why

    def why_missing(self, name: str) -> str | None:
        """Why a tool the model called is not there, when it looks like one of a server that is down."""
        return next((why for server, why in self.down.items() if name.startswith(f"{server}__")), None)

    async def specs(self, taken: frozenset[str]) -> list[ToolSpec]:
        """The tools to offer, once the servers still starting are up (each within its startup budget);
        a name a client tool already has is left to the client's."""
        await asyncio.gather(*(o.settled(o.config.startup_timeout) for o in self.owners))
        specs = []
        for owner in self.owners:
            if owner.state != "ready":
                log.warning("MCP server %s is %s (%s): its tools are not offered", owner.name, owner.state, owner.error)
                self.down[owner.name] = f"MCP server {owner.name!r} is {owner.state.replace('_', ' ')}" + (f": {owner.error}" if owner.error else "")
            for tool in owner.tools if owner.state == "ready" else []:
                if tool.model_name in taken or tool.model_name in self.routes:
                    continue
                self.routes[tool.model_name] = (owner, tool)
                specs.append(ToolSpec(name=tool.model_name, description=tool.description, input_schema=tool.input_schema))
        return specs

    async def run(self, response_id: str, call: ToolCallPart, asker: Any, emit: Callable[[Any], None]) -> ToolResultEvent:
        owner, tool = self.routes[call.name]
        result = ToolResultEvent(tool_call_id=call.tool_call_id or "", name=call.name, output="")
        refusal = await self._approve(response_id, call, owner, tool, asker)
        if refusal is not None:
            result.exception = refusal
            return result

        running = True  # a progress report that comes after the call ended (a cancel) is dropped: `done` stays last

        async def progress(done: float, total: float | None, message: str | None) -> None:
            if running:
                emit(ToolProgressEvent(tool_call_id=result.tool_call_id, progress=done, total=total, message=message))

        try:
            answer = await owner.call(tool.name, call.arguments, progress=progress)
        except McpUnavailable as exc:
            result.exception = str(exc)
            return result
        except Exception as exc:  # an error answer of the server's (MCPError), or a bad result
            result.exception = f"MCP server {owner.name!r} answered with an error: {getattr(exc, 'message', None) or exc}"
            return result
        finally:
            running = False
        converted = convert(answer)
        result.output, result.exception = converted.output, converted.exception
        result.attachments = converted.attachments or None
        result.structured_content = converted.structured
        return result

    async def _approve(self, response_id: str, call: ToolCallPart, owner: ServerOwner, tool: McpTool, asker: Any) -> str | None:
        """None when the call may run; else what the model is told."""
        config = owner.config
        key = {"server": owner.name, "tool": tool.name, "fingerprint": config.fingerprint}
        if runs_unasked(self.approvals, trusted=config.trusted, annotations=tool.annotations, **key):
            return None
        ask = getattr(asker, "approve_tool", None)
        if ask is None:
            return "not run: the client that started this prompt cannot approve MCP tool calls"
        params = ToolApproveParams(
            response_id=response_id,
            tool_call_id=call.tool_call_id or "",
            server=owner.name,
            name=tool.name,
            tool=call.name,
            arguments=call.arguments,
            annotations=tool.annotations,
            description=tool.description,
        )
        try:
            answer: ToolApproveResult = await asyncio.wait_for(ask(params), self.approval_timeout)
        except TimeoutError:
            return f"not run: the user did not approve it within {self.approval_timeout:g} s"
        except RequestError as exc:
            return f"not run: the client could not ask the user ({exc.message})"
        if answer.decision == "allow_always":
            self.approvals.allow_always(**key)
        if answer.decision == "deny":
            return "not run: the user denied it" + (f" ({answer.reason})" if answer.reason else "")
        return None
