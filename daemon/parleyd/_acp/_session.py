"""One ACP session: one parley conversation (the session id is the conversation id).

A prompt turn is one parley ``prompt`` continuing the conversation: its events
are translated as they arrive (``_translate.LiveTurn``), and the turn's answer
(its ``stopReason``) is returned only after every update of the turn has been
queued. A response started elsewhere (Neovim, another editor) that is running
when the session is loaded is followed the same way, its updates coming after
the load's answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from parley._client._core import ResponseStream
from parley._errors import ConnectionClosed
from parley._types import Message, ToolApproveParams, ToolApproveResult, ToolExecuteParams, ToolExecuteResult

from ._config import SessionConfig
from ._prompt_content import user_parts
from ._tools import ToolFailed
from ._translate import LiveTurn, tool_kind
from ._types import (
    AnyUpdate,
    ConfigOptionUpdate,
    ContentBlock,
    PermissionOption,
    PermissionToolCall,
    PromptResponse,
    RequestPermissionRequest,
    RequestPermissionResponse,
    SessionInfoUpdate,
    SessionNotification,
    StopReason,
    ToolCallLocation,
    ToolCallProgress,
)
from ._wire import INTERNAL_ERROR, INVALID_REQUEST, AcpError

if TYPE_CHECKING:
    from ._agent import Agent

log = logging.getLogger("parley.acp")

_PERMISSIONS = [
    PermissionOption(option_id="allow_once", name="Allow", kind="allow_once"),
    PermissionOption(option_id="allow_always", name="Allow always (this session)", kind="allow_always"),
    PermissionOption(option_id="reject_once", name="Reject", kind="reject_once"),
]
_decode_permission = msgspec.json.Decoder(RequestPermissionResponse).decode


class Streaming:
    """A response's stream and its translation: ``pump`` sends what arrived and is not sent yet."""

    def __init__(self, stream: ResponseStream, live: LiveTurn) -> None:
        self.stream = stream
        self.live = live
        self.seen = 0

    def pump(self, session: Session) -> None:
        events = self.stream.events
        while self.seen < len(events):
            event = events[self.seen]
            self.seen += 1
            for update in self.live.feed(event):
                session.send(update)

    async def run(self, session: Session) -> None:
        """Until ``done``."""
        link = session.agent.link
        try:
            while True:
                self.pump(session)
                if self.live.done is not None:
                    return
                await link.wait(self.stream, self.seen)
        except ConnectionClosed as exc:
            raise AcpError(INTERNAL_ERROR, f"the connection to the parley daemon ended: {exc}") from exc


class Session:
    def __init__(self, agent: Agent, session_id: str, cwd: str, config: SessionConfig, title: str | None) -> None:
        self.agent = agent
        self.id = session_id
        self.cwd = cwd
        self.config = config
        self.title = title or None
        self.streaming: Streaming | None = None  # the response whose updates this session sends now
        self.turn: asyncio.Task[PromptResponse] | None = None  # this session's running prompt
        self.following: asyncio.Task[None] | None = None  # a response started elsewhere, followed
        self.cancelled = False
        self.allowed: set[str] = set()  # tools the user allowed always, for this session
        #: Held by ``set_config_option`` and by a prompt until it has started: requests of a session
        #: take effect in the order they came (an editor sends both without waiting), as the lock is fair.
        self.in_order = asyncio.Lock()

    def send(self, update: AnyUpdate) -> None:
        self.agent.peer.notify("session/update", SessionNotification(session_id=self.id, update=update))

    # ---- a prompt turn ------------------------------------------------------------

    async def prompt(self, blocks: list[ContentBlock]) -> PromptResponse:
        if self.turn is not None:
            raise AcpError(INVALID_REQUEST, "a prompt is already running in this session; cancel it first")
        self.stop_following()
        self.turn = asyncio.current_task()  # type: ignore[assignment]
        self.cancelled = False
        try:
            return await self._prompt(blocks)
        finally:
            self.turn = None
            self.streaming = None

    async def _prompt(self, blocks: list[ContentBlock]) -> PromptResponse:
        agent = self.agent
        async with self.in_order:
            reader = (lambda path: agent.tools.read(self.id, path)) if agent.capabilities.fs.read_text_file else None
            parts = await user_parts(blocks, reader)
            if self.cancelled:
                return PromptResponse(stop_reason="cancelled")
            params = {
                "conversationId": self.id,
                "messages": [Message(role="user", parts=parts)],
                **self.config.prompt_params(),
            }
            tools = agent.tool_specs(self.config.info)
            params["tools"] = tools
            if agent.mcp_servers:
                params["mcpServers"] = agent.mcp_servers
            if tools or agent.mcp_servers:
                params["chainLimit"] = agent.chain_limit
            started, stream = await agent.link.start("prompt", params)
        response_id = started.response_id
        streaming = self.streaming = Streaming(stream, LiveTurn(response_id, self.config.info.context_window))
        agent.own(response_id, self)
        try:
            if self.cancelled:
                agent.peer.spawn(self._cancel_response(response_id))
            await streaming.run(self)
        finally:
            agent.disown(response_id)
        await self._after_turn()
        return PromptResponse(stop_reason=self._stop_reason(streaming.live))

    def _stop_reason(self, live: LiveTurn) -> StopReason:
        done = live.done
        assert done is not None
        if self.cancelled or done.status == "cancelled":
            return "cancelled"
        if done.status == "error":
            error = live.error
            kind = error.code if error else "internal"
            message = error.message if error else "the response failed"
            data = {"kind": kind, "retryable": bool(error and error.retryable), "retryAfter": error.retry_after if error else None}
            raise AcpError(INTERNAL_ERROR, f"{kind}: {message}", data)
        reason = getattr(done, "finish_reason", None)
        if reason == "length":
            return "max_tokens"
        if reason == "chain_limit":
            return "max_turn_requests"
        return "end_turn"

    async def _after_turn(self) -> None:
        """Before the turn's answer: the title, once the conversation has one; the options, if the models changed."""
        link = self.agent.link
        try:
            if not self.title:
                title = (await link.conversation(self.id)).title
                if title:
                    self.title = title
                    self.send(SessionInfoUpdate(title=title))
            self.config.models = await link.models()
            if self.config.changed() is not None:
                self.send(ConfigOptionUpdate(config_options=self.config.advertised()))
        except Exception as exc:  # the turn's own outcome matters more
            log.warning("after the turn in %s: %s", self.id, exc)

    def cancel(self) -> None:
        """``session/cancel``: stop the running turn; its prompt answers ``cancelled``."""
        if self.turn is None:
            return
        self.cancelled = True
        if self.streaming is not None and self.streaming.live.done is None:
            self.agent.peer.spawn(self._cancel_response(self.streaming.live.response_id))

    async def _cancel_response(self, response_id: str) -> None:
        try:
            await self.agent.link.cancel(response_id)
        except Exception as exc:
            log.warning("cancelling %s: %s", response_id, exc)

    async def close(self) -> None:
        """``session/close``: cancel the turn and wait for it to end; stop following."""
        self.stop_following()
        turn = self.turn
        if turn is not None:
            self.cancel()
            await asyncio.wait([turn], timeout=30)

    # ---- tools --------------------------------------------------------------------

    async def execute_tool(self, params: ToolExecuteParams) -> ToolExecuteResult:
        """The daemon's ``tool/execute``: report the call, ask the user, run it."""
        streaming = self.streaming
        if streaming is None or streaming.live.response_id != params.response_id:
            return ToolExecuteResult(output="", exception="the turn that made this call has ended")
        streaming.pump(self)  # the call's own events first
        call, updates = streaming.live.call(params.tool_call_id, params.name)
        for update in updates:
            self.send(update)
        tools = self.agent.tools
        if not tools.offers(params.name):
            return ToolExecuteResult(output="", exception=f"no tool named {params.name!r} is offered in this session")
        locations = tools.locations(self.cwd, params.arguments)
        refused = await self._ask(call.acp_id, call.name or params.name, params.name, params.arguments, locations)
        if refused is not None:
            return ToolExecuteResult(output="", exception=refused)
        self.send(ToolCallProgress(tool_call_id=call.acp_id, status="in_progress", locations=locations))
        try:
            output, diffs = await tools.run(self.id, self.cwd, params.name, params.arguments)
        except ToolFailed as exc:
            return ToolExecuteResult(output="", exception=str(exc))
        call.extra = list(diffs)
        return ToolExecuteResult(output=output)

    async def approve_tool(self, params: ToolApproveParams) -> ToolApproveResult:
        """The daemon's ``tool/approve`` for an MCP tool it runs itself: the user is asked as for
        the editor's files. "Always" holds for this session only, as ACP's option says: the
        daemon is told ``allow_once``, and stores nothing."""
        streaming = self.streaming
        if streaming is None or streaming.live.response_id != params.response_id:
            return ToolApproveResult(decision="deny", reason="the turn that made this call has ended")
        streaming.pump(self)
        call, updates = streaming.live.call(params.tool_call_id, params.tool)
        for update in updates:
            self.send(update)
        title = (params.annotations or {}).get("title") or f"{params.server}: {params.name}"
        refused = await self._ask(call.acp_id, title, params.tool, params.arguments, None)
        if refused is not None:
            return ToolApproveResult(decision="deny", reason=refused)
        self.send(ToolCallProgress(tool_call_id=call.acp_id, status="in_progress"))
        return ToolApproveResult(decision="allow_once")

    async def _ask(self, acp_id: str, title: str, name: str, arguments: dict[str, Any], locations: list[ToolCallLocation] | None) -> str | None:
        """``session/request_permission`` unless the user allowed ``name`` always in this session;
        None when allowed, else why not (for the model)."""
        if name in self.allowed:
            return None
        request = RequestPermissionRequest(
            session_id=self.id,
            tool_call=PermissionToolCall(
                tool_call_id=acp_id, title=title, kind=tool_kind(name), status="pending", locations=locations, raw_input=arguments
            ),
            options=_PERMISSIONS,
        )
        answer = await self.agent.peer.request("session/request_permission", request, _decode_permission)
        outcome = answer.outcome
        if outcome.outcome != "selected" or outcome.option_id not in ("allow_once", "allow_always"):
            return "the turn was cancelled" if outcome.outcome == "cancelled" else "the user rejected this tool call"
        if outcome.option_id == "allow_always":
            self.allowed.add(name)
        return None

    # ---- following a response started elsewhere -----------------------------------

    async def attach(self, response_id: str) -> None:
        """Take up a running response from its first event: every event it had so far is sent
        now (before the load's answer); ``follow`` sends the rest."""
        stream = await self.agent.link.attach(response_id, 0)
        self.streaming = Streaming(stream, LiveTurn(response_id, self.config.info.context_window))
        self.streaming.pump(self)

    def follow(self) -> None:
        streaming = self.streaming
        if streaming is None or self.turn is not None or self.following is not None:
            return

        async def run() -> None:
            try:
                await streaming.run(self)
            except AcpError as exc:
                log.warning("following %s: %s", streaming.live.response_id, exc.message)
            finally:
                if self.streaming is streaming:
                    self.streaming = None
                self.following = None

        self.following = self.agent.peer.spawn(run())

    def stop_following(self) -> None:
        if self.following is not None:
            self.following.cancel()
            self.following = None
            if self.streaming is not None and self.turn is None:
                response_id = self.streaming.live.response_id
                self.streaming = None
                self.agent.peer.spawn(self._unsubscribe(response_id))

    async def _unsubscribe(self, response_id: str) -> None:
        try:
            await self.agent.link.call("response/unsubscribe", {"responseId": response_id})
        except Exception as exc:
            log.info("unsubscribing %s: %s", response_id, exc)
