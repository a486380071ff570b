"""The JSON-RPC methods: thin, typed, each delegating to the daemon.

Params arrive already validated against the method table (parley._methods);
a handler returns the result struct or raises a parley RequestError.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from parley._errors import InvalidRequest
from parley._types import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    CancelResult,
    Conversation,
    ConversationIdParams,
    ConversationsCreateParams,
    ConversationsCreateResult,
    ConversationsListParams,
    ConversationsListResult,
    DaemonStatus,
    EmptyResult,
    InitializeParams,
    InitializeResult,
    McpListResult,
    ModelsListResult,
    NoParams,
    PromptParams,
    ReplyParams,
    ResponseIdParams,
    ResponseRecord,
    ServerCapabilities,
    ServerInfo,
    StartedResult,
    SubscribeParams,
    SubscribeResult,
    WorkerStatus,
)

from ._connection import Connection
from ._models._worker import rss_bytes


def initialize(conn: Connection, params: InitializeParams) -> InitializeResult:
    if conn.initialized:
        raise InvalidRequest("`initialize` was already called on this connection")
    if params.protocol_version != PROTOCOL_VERSION:
        raise InvalidRequest(f"this daemon speaks protocol version {PROTOCOL_VERSION}, not {params.protocol_version}")
    conn.daemon.check_token(conn, params.auth_token)
    conn.initialized = True
    conn.client_name = params.client_info.name
    conn.event_ranges = params.capabilities is None or params.capabilities.event_ranges
    capabilities = ServerCapabilities(
        max_message_size=conn.daemon.config.max_message_size, event_types=list(EVENT_TYPES), event_ranges=conn.event_ranges
    )
    return InitializeResult(protocol_version=PROTOCOL_VERSION, server_info=ServerInfo(name="parleyd", version=conn.daemon.version), capabilities=capabilities)


def models_list(conn: Connection, params: NoParams) -> ModelsListResult:
    return ModelsListResult(models=conn.daemon.models.infos())


def prompt(conn: Connection, params: PromptParams) -> StartedResult:
    live = conn.daemon.prompt(conn, params)
    return StartedResult(response_id=live.id, conversation_id=live.conversation_id)


def reply(conn: Connection, params: ReplyParams) -> StartedResult:
    live = conn.daemon.reply(conn, params)
    return StartedResult(response_id=live.id, conversation_id=live.conversation_id)


async def response_cancel(conn: Connection, params: ResponseIdParams) -> CancelResult:
    live = conn.daemon.live.get(params.response_id)
    if live is not None:
        return CancelResult(status=await live.cancel())  # type: ignore[arg-type]
    return CancelResult(status=conn.daemon.record(params.response_id).status)


def response_get(conn: Connection, params: ResponseIdParams) -> ResponseRecord:
    return conn.daemon.record(params.response_id)


def response_subscribe(conn: Connection, params: SubscribeParams) -> SubscribeResult:
    return SubscribeResult(last_seq=conn.daemon.subscribe(conn, params.response_id, params.after_seq))


def response_unsubscribe(conn: Connection, params: ResponseIdParams) -> EmptyResult:
    conn.daemon.unsubscribe(conn, params.response_id)
    return EmptyResult()


def conversations_create(conn: Connection, params: ConversationsCreateParams) -> ConversationsCreateResult:
    return ConversationsCreateResult(conversation_id=conn.daemon.create_conversation(params))


def conversations_list(conn: Connection, params: ConversationsListParams) -> ConversationsListResult:
    found = conn.daemon.store.list_conversations(limit=params.limit, before=params.before, query=params.query, cwd=params.cwd)
    return ConversationsListResult(conversations=found)


def conversations_get(conn: Connection, params: ConversationIdParams) -> Conversation:
    return conn.daemon.conversation(params.conversation_id)


async def conversations_delete(conn: Connection, params: ConversationIdParams) -> EmptyResult:
    await conn.daemon.delete_conversation(params.conversation_id)
    return EmptyResult()


def daemon_status(conn: Connection, params: NoParams) -> DaemonStatus:
    daemon = conn.daemon
    return DaemonStatus(
        pid=os.getpid(),
        version=daemon.version,
        socket=str(daemon.config.socket),
        uptime_s=round(daemon.uptime(), 3),
        connections=len(daemon.connections),
        running_responses=len(daemon.live),
        rss_bytes=rss_bytes(),
        workers=[
            WorkerStatus(model=model.id, state=w.state, pid=w.pid, rss_bytes=w.rss_bytes, loaded_at=w.loaded_at, crashes=w.crashes, details=w.info)
            for model in daemon.models
            if model.worker is not None and (w := model.worker.status()) is not None
        ],
    )


async def mcp_list(conn: Connection, params: NoParams) -> McpListResult:
    await conn.daemon.mcp.refresh()  # an edit of mcp.json shows at once
    return conn.daemon.mcp.status()


HANDLERS: dict[str, Callable[..., Any]] = {
    "initialize": initialize,
    "models/list": models_list,
    "prompt": prompt,
    "reply": reply,
    "response/cancel": response_cancel,
    "response/get": response_get,
    "response/subscribe": response_subscribe,
    "response/unsubscribe": response_unsubscribe,
    "conversations/create": conversations_create,
    "conversations/list": conversations_list,
    "conversations/get": conversations_get,
    "conversations/delete": conversations_delete,
    "daemon/status": daemon_status,
    "mcp/list": mcp_list,
}
