"""The ACP methods: decode the params, find the session, answer."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
from typing import Any

import msgspec

from parley import __version__
from parley._errors import ConnectionClosed, ParleyError, RequestError, UnknownConversation
from parley._types import ModelInfo, ToolApproveParams, ToolApproveResult, ToolExecuteParams, ToolExecuteResult

from . import _history
from ._config import SessionConfig
from ._link import Link
from ._session import Session, Streaming
from ._tools import FsTools
from ._translate import LiveTurn, replay
from ._types import (
    PROTOCOL_VERSION,
    AgentCapabilities,
    ClientCapabilities,
    EmptyResponse,
    Implementation,
    InitializeRequest,
    InitializeResponse,
    ListSessionsRequest,
    ListSessionsResponse,
    LoadSessionRequest,
    McpCapabilities,
    McpServerHttp,
    McpServerStdio,
    NewSessionRequest,
    NewSessionResponse,
    PromptCapabilities,
    PromptRequest,
    SessionCapabilities,
    SessionIdRequest,
    SessionInfo,
    SessionInfoUpdate,
    SessionSetupResponse,
    SetConfigOptionRequest,
    SetConfigOptionResponse,
)
from ._wire import INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, RESOURCE_NOT_FOUND, AcpError, Peer, RequestId, invalid_params

log = logging.getLogger("parley.acp")

#: Sessions per ``session/list`` page.
PAGE = 50


def _decode(method: str, raw: msgspec.Raw, type_: Any) -> Any:
    try:
        return msgspec.json.decode(b"{}" if bytes(raw).strip() == b"null" else raw, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise invalid_params(f"invalid params for {method}: {exc}") from exc


def _absolute(cwd: str) -> str:
    if not os.path.isabs(cwd):
        raise invalid_params(f"params.cwd: {cwd!r} is not an absolute path")
    return cwd


def _check_mcp_servers(method: str, servers: list[dict[str, Any]]) -> None:
    """Validated, then ignored: the daemon runs the user's own MCP servers (`parley acp --mcp NAME`)."""
    for index, server in enumerate(servers):
        kind = server.get("type", "stdio")
        if kind not in ("stdio", "http", "sse"):
            continue  # a transport of a later ACP version: nothing to check it against
        type_ = McpServerStdio if kind == "stdio" else McpServerHttp
        try:
            msgspec.convert(server, type_)
        except msgspec.ValidationError as exc:
            raise invalid_params(f"invalid params for {method}: {exc} - at `params.mcpServers[{index}]`") from exc
    if servers:
        names = ", ".join(repr(s.get("name")) for s in servers)
        log.info("%s: MCP servers from the editor are not run (the daemon runs those of its mcp.json: parley acp --mcp NAME); ignoring %s", method, names)


class Agent:
    def __init__(
        self, peer: Peer, *, url: str | None = None, chain_limit: int = 10, offer_tools: bool = True, mcp_servers: list[str] | None = None
    ) -> None:
        self.peer = peer
        self.link = Link(self._execute_tool, self._approve_tool, url)
        self.chain_limit = chain_limit
        self.offer_tools = offer_tools
        self.mcp_servers = mcp_servers or []  # the daemon's MCP servers whose tools every prompt gets
        self.capabilities = ClientCapabilities()
        self.tools = FsTools(peer, self.capabilities)
        self.sessions: dict[str, Session] = {}
        self._initialized = False
        self._initializing: asyncio.Future[None] | None = None
        self._owners: dict[str, asyncio.Future[Session]] = {}  # response id -> the session whose turn it is
        self._prompts: dict[RequestId, Session] = {}  # session/prompt request id -> its session
        self._methods = {
            "session/new": self.new_session,
            "session/load": self.load_session,
            "session/resume": self.resume_session,
            "session/list": self.list_sessions,
            "session/close": self.close_session,
            "session/delete": self.delete_session,
            "session/set_config_option": self.set_config_option,
        }

    # ---- the Handler protocol (_wire) ---------------------------------------------

    async def request(self, method: str, params: msgspec.Raw, request_id: RequestId) -> Any:
        try:
            if method == "initialize":
                return await self.initialize(_decode(method, params, InitializeRequest))
            if not self._initialized and self._initializing is not None:
                await asyncio.shield(self._initializing)  # sent without waiting for initialize's answer
            if not self._initialized:
                raise AcpError(INVALID_REQUEST, "the first request must be `initialize`")
            if method == "session/prompt":
                return await self.prompt(_decode(method, params, PromptRequest), request_id)
            handler = self._methods.get(method)
            if handler is None:
                raise AcpError(METHOD_NOT_FOUND, f"no method {method!r}")
            return await handler(method, params)
        except (ConnectionClosed, RequestError, ParleyError) as exc:
            raise _daemon_error(exc) from exc

    async def notification(self, method: str, params: msgspec.Raw) -> None:
        if method == "session/cancel":
            session = self.sessions.get(_decode(method, params, SessionIdRequest).session_id)
            if session is not None:
                session.cancel()
        elif method == "$/cancel_request":
            pass  # handled by the peer
        else:
            log.debug("ignored notification %s", method)

    def cancel_request(self, request_id: RequestId) -> bool:
        """``$/cancel_request`` of a ``session/prompt`` cancels its turn, which answers ``cancelled``."""
        session = self._prompts.get(request_id)
        if session is None:
            return False
        session.cancel()
        return True

    # ---- initialize ---------------------------------------------------------------

    async def initialize(self, params: InitializeRequest) -> InitializeResponse:
        self.capabilities = params.client_capabilities
        self.tools = FsTools(self.peer, self.capabilities)
        client = params.client_info
        log.info("initialize from %s %s", client.name if client else "?", (client.version or "") if client else "")
        done = self._initializing = asyncio.get_running_loop().create_future()
        try:
            models = await self.link.models()
            self._initialized = True
        finally:
            done.set_result(None)
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(
                load_session=True,
                prompt_capabilities=PromptCapabilities(
                    image=_accepts(models, "image/"), audio=_accepts(models, "audio/"), embedded_context=True
                ),
                mcp_capabilities=McpCapabilities(),
                session_capabilities=SessionCapabilities(),
            ),
            agent_info=Implementation(name="parley", title="parley", version=__version__),
        )

    # ---- sessions -----------------------------------------------------------------

    async def new_session(self, method: str, raw: msgspec.Raw) -> NewSessionResponse:
        params = _decode(method, raw, NewSessionRequest)
        cwd = _absolute(params.cwd)
        _check_mcp_servers(method, params.mcp_servers)
        config = SessionConfig.for_model(await self.link.models(), None)
        conversation_id = await self.link.create_conversation(model=config.model, cwd=cwd)
        session = self.sessions[conversation_id] = Session(self, conversation_id, cwd, config, None)
        log.info("session/new %s in %s", conversation_id, cwd)
        return NewSessionResponse(session_id=session.id, config_options=config.advertised())

    async def load_session(self, method: str, raw: msgspec.Raw) -> SessionSetupResponse:
        params = _decode(method, raw, LoadSessionRequest)
        cwd = _absolute(params.cwd)
        _check_mcp_servers(method, params.mcp_servers)
        history = await _history.load(self.link, params.session_id)
        session = await self._session_for(params.session_id, cwd, history.model, history.title)
        for update in replay(session.id, history.chain, history.owners):
            session.send(update)
        if history.running is not None:
            streaming = session.streaming
            if streaming is not None and streaming.live.response_id == history.running:
                # this bridge streams it already: show what it has sent, then it goes on
                again = Streaming(streaming.stream, LiveTurn(history.running, session.config.info.context_window))
                for event in streaming.stream.events[: streaming.seen]:
                    for update in again.live.feed(event):
                        session.send(update)
            else:
                await session.attach(history.running)
        if history.title:
            session.send(SessionInfoUpdate(title=history.title))
        session.follow()  # starts after this answer is queued
        return SessionSetupResponse(config_options=session.config.advertised())

    async def resume_session(self, method: str, raw: msgspec.Raw) -> SessionSetupResponse:
        params = _decode(method, raw, LoadSessionRequest)
        cwd = _absolute(params.cwd)
        _check_mcp_servers(method, params.mcp_servers)
        model, title = None, None
        if params.session_id not in self.sessions:
            conversation = await self.link.conversation(params.session_id)
            title, model = conversation.title, conversation.model
        session = await self._session_for(params.session_id, cwd, model, title)
        return SessionSetupResponse(config_options=session.config.advertised())

    async def _session_for(self, session_id: str, cwd: str, model: str | None, title: str | None) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            config = SessionConfig.for_model(await self.link.models(), model)
            session = self.sessions[session_id] = Session(self, session_id, cwd, config, title)
        else:
            session.cwd = cwd
        return session

    async def list_sessions(self, method: str, raw: msgspec.Raw) -> ListSessionsResponse:
        params = _decode(method, raw, ListSessionsRequest)
        cwd = _absolute(params.cwd) if params.cwd is not None else None
        before = _cursor_before(params.cursor) if params.cursor is not None else None
        found = await self.link.conversations(limit=PAGE + 1, before=before, cwd=cwd)
        page = found[:PAGE]
        home = os.path.expanduser("~")
        sessions = [
            SessionInfo(
                session_id=c.id,
                cwd=getattr(c, "cwd", None) or home,
                title=c.title or None,
                updated_at=c.updated_at,
                meta={"parley": {"model": c.model, "responseCount": c.response_count}},
            )
            for c in page
        ]
        next_cursor = _cursor(page[-1].updated_at) if len(found) > PAGE else None
        return ListSessionsResponse(sessions=sessions, next_cursor=next_cursor)

    async def close_session(self, method: str, raw: msgspec.Raw) -> EmptyResponse:
        params = _decode(method, raw, SessionIdRequest)
        session = self.sessions.pop(params.session_id, None)
        if session is None:
            raise AcpError(RESOURCE_NOT_FOUND, f"no active session {params.session_id!r}", {"sessionId": params.session_id})
        await session.close()
        return EmptyResponse()

    async def delete_session(self, method: str, raw: msgspec.Raw) -> EmptyResponse:
        params = _decode(method, raw, SessionIdRequest)
        session = self.sessions.pop(params.session_id, None)
        if session is not None:
            await session.close()
        try:
            await self.link.delete_conversation(params.session_id)
        except UnknownConversation:
            pass  # already gone: deleting is idempotent
        return EmptyResponse()

    async def set_config_option(self, method: str, raw: msgspec.Raw) -> SetConfigOptionResponse:
        params = _decode(method, raw, SetConfigOptionRequest)
        session = self._session(params.session_id)
        async with session.in_order:  # a prompt sent right after this request sees it
            try:
                session.config.set(params.config_id, params.value)
            except AcpError:  # perhaps a model the daemon serves since
                session.config.models = await self.link.models()
                session.config.set(params.config_id, params.value)
            else:
                session.config.models = await self.link.models()
        return SetConfigOptionResponse(config_options=session.config.advertised())

    async def prompt(self, params: PromptRequest, request_id: RequestId) -> Any:
        session = self._session(params.session_id)
        self._prompts[request_id] = session
        try:
            return await session.prompt(params.prompt)
        finally:
            self._prompts.pop(request_id, None)

    def _session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise AcpError(
                RESOURCE_NOT_FOUND,
                f"no active session {session_id!r}: create one with session/new, or open it with session/load or session/resume",
                {"sessionId": session_id},
            )
        return session

    # ---- tools and turns ----------------------------------------------------------

    def tool_specs(self, model: ModelInfo) -> list[dict[str, Any]]:
        if not self.offer_tools or not model.capabilities.tools:
            return []
        return self.tools.specs()

    def own(self, response_id: str, session: Session) -> None:
        future = self._owners.setdefault(response_id, asyncio.get_running_loop().create_future())
        if not future.done():
            future.set_result(session)

    def disown(self, response_id: str) -> None:
        self._owners.pop(response_id, None)

    async def _execute_tool(self, params: ToolExecuteParams) -> ToolExecuteResult:
        """The daemon's ``tool/execute``, for the session whose turn made the call."""
        session = await self._owner(params.response_id)
        if session is None:
            return ToolExecuteResult(output="", exception="no ACP session runs this response")
        return await session.execute_tool(params)

    async def _approve_tool(self, params: ToolApproveParams) -> ToolApproveResult:
        """The daemon's ``tool/approve`` (an MCP tool call), for the session whose turn made it."""
        session = await self._owner(params.response_id)
        if session is None:
            return ToolApproveResult(decision="deny", reason="no ACP session runs this response")
        return await session.approve_tool(params)

    async def _owner(self, response_id: str) -> Session | None:
        future = self._owners.setdefault(response_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), 10)
        except asyncio.TimeoutError:
            return None

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            session.stop_following()
        await self.link.close()


def _accepts(models: list[ModelInfo], prefix: str) -> bool:
    return any(p.startswith(prefix) or p in ("*", "*/*") for m in models for p in m.capabilities.attachments)


def _cursor(before: str) -> str:
    return base64.urlsafe_b64encode(f"before:{before}".encode()).decode()


def _cursor_before(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("before:") or len(text) <= len("before:"):
        raise invalid_params(f"params.cursor: {cursor!r} is not a cursor this agent gave")
    return text[len("before:") :]


def _daemon_error(exc: ParleyError) -> AcpError:
    """A daemon's error answer as ACP's: unknown ids are "resource not found", parley's kind in ``data``."""
    if isinstance(exc, UnknownConversation):
        session_id = (exc.data or {}).get("conversationId")
        return AcpError(RESOURCE_NOT_FOUND, f"no session {session_id!r}" if session_id else exc.message, {"kind": exc.kind, "sessionId": session_id})
    if isinstance(exc, RequestError):
        code = exc.code if exc.code in (-32602, -32600) else INTERNAL_ERROR
        return AcpError(code, exc.message, {"kind": exc.kind, **{k: v for k, v in (exc.data or {}).items() if k != "kind"}})
    return AcpError(INTERNAL_ERROR, f"parley daemon: {exc}", {"kind": "daemon_unreachable"})
