"""The method table: each JSON-RPC method with the types of its params and result.

The daemon validates params against it at the edge; the client decodes results
with it; the schema generator and PROTOCOL.md are written from it.
"""

from __future__ import annotations

from typing import NamedTuple

from . import _types as t


class Method(NamedTuple):
    params: type
    result: type | None  # None: a notification


#: Requests a client sends to the daemon.
CLIENT_REQUESTS: dict[str, Method] = {
    "initialize": Method(t.InitializeParams, t.InitializeResult),
    "models/list": Method(t.NoParams, t.ModelsListResult),
    "prompt": Method(t.PromptParams, t.StartedResult),
    "reply": Method(t.ReplyParams, t.StartedResult),
    "response/cancel": Method(t.ResponseIdParams, t.CancelResult),
    "response/get": Method(t.ResponseIdParams, t.ResponseRecord),
    "response/subscribe": Method(t.SubscribeParams, t.SubscribeResult),
    "response/unsubscribe": Method(t.ResponseIdParams, t.EmptyResult),
    "conversations/create": Method(t.ConversationsCreateParams, t.ConversationsCreateResult),
    "conversations/list": Method(t.ConversationsListParams, t.ConversationsListResult),
    "conversations/get": Method(t.ConversationIdParams, t.Conversation),
    "conversations/delete": Method(t.ConversationIdParams, t.EmptyResult),
    "daemon/status": Method(t.NoParams, t.DaemonStatus),
    "mcp/list": Method(t.NoParams, t.McpListResult),
}

#: Notifications a client sends to the daemon.
CLIENT_NOTIFICATIONS: dict[str, Method] = {
    "$/cancelRequest": Method(t.CancelRequestParams, None),
}

#: Notifications the daemon sends.
DAEMON_NOTIFICATIONS: dict[str, Method] = {
    "response/event": Method(t.AnyEvent, None),  # type: ignore[arg-type]
    "response/lagged": Method(t.LaggedParams, None),
    "$/cancelRequest": Method(t.CancelRequestParams, None),  # a pending tool/execute or tool/approve is no longer wanted
}

#: Requests the daemon sends to a client (answered by the client).
DAEMON_REQUESTS: dict[str, Method] = {
    "tool/execute": Method(t.ToolExecuteParams, t.ToolExecuteResult),
    "tool/approve": Method(t.ToolApproveParams, t.ToolApproveResult),  # may an MCP tool call run?
}
