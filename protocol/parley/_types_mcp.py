"""The wire shapes of the daemon's MCP servers: ``tool/approve`` and ``mcp/list``.

Split from ``_types`` (which re-exports them) to keep each module one size; the
``tool_progress`` event lives there, with the other events.
"""

from __future__ import annotations

from typing import Any, Literal

from ._types import Input, Output

ApprovalDecision = Literal["allow_once", "allow_always", "deny"]
McpServerState = Literal["starting", "ready", "failed", "backing_off"]


class ToolApproveParams(Output):
    """``tool/approve``: may this MCP tool call run? Sent to the connection that started the prompt."""

    response_id: str
    tool_call_id: str
    server: str  # the server's name in mcp.json
    name: str  # the tool's name on that server
    tool: str  # the name the model called it by (``<server>__<tool>``)
    arguments: dict[str, Any]
    #: The server's hints (``readOnlyHint``, ``destructiveHint``, ``title``…): to show, not to trust.
    annotations: dict[str, Any] | None = None
    description: str | None = None


class ToolApproveResult(Input):
    decision: ApprovalDecision
    reason: str | None = None  # with ``deny``: told to the model


class McpToolInfo(Output):
    name: str  # as models call it
    tool: str  # as the server names it
    description: str | None = None
    annotations: dict[str, Any] | None = None


class McpServerStatus(Output):
    name: str
    transport: Literal["stdio", "http"]
    state: McpServerState
    pid: int | None = None  # a stdio server's process, while it runs
    error: str | None = None  # why it failed or is backing off
    restarts: int = 0
    retry_in_s: float | None = None  # backing off: seconds until the next start
    trusted: bool = False
    log: str | None = None  # the file its stderr goes to
    tools: list[McpToolInfo] = []


class McpListResult(Output):
    config: str  # the mcp.json the daemon reads
    servers: list[McpServerStatus]
