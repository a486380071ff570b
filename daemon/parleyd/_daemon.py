"""The daemon: state shared by every connection — store, models, live responses."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec

from parley import __version__
from parley._builders import text_of, tool_message, user
from parley._errors import AuthFailed, InvalidParams, UnknownConversation, UnknownResponse
from parley._types import (
    AnyEvent,
    Attachment,
    Conversation,
    ConversationsCreateParams,
    DoneEvent,
    ErrorEvent,
    Message,
    PromptParams,
    PromptRecord,
    ReplyParams,
    ResponseRecord,
    ToolSpec,
)

from ._assembly import Assembler
from ._clock import new_id, now
from ._config import DaemonConfig
from ._connection import Connection, create_connection
from ._group_commit import GroupCommit
from ._live import INTERRUPTED, LiveResponse, Subscriber
from ._mcp import McpHub, McpTools
from ._models import Model, ModelRegistry, ModelRequest
from ._models._catalog import Catalog
from ._store import Store
from ._tools import ToolChain
from ._userconfig import ConfigError, UserConfig, file_stamp
from ._userconfig import load as load_config
from ._transports import Outbox, Transport

log = logging.getLogger(__name__)
MCP_CHAIN_LIMIT = 5  # model rounds of a prompt with mcpServers and no chainLimit: the daemon runs those tools


class Daemon:
    def __init__(self, config: DaemonConfig, store: Store, catalog: Catalog) -> None:
        self.config = config
        self.store = store
        self.group_commit = GroupCommit(store)
        self.outbox = Outbox()
        self._catalog = catalog
        self._models: ModelRegistry | None = None
        self._config_stamp: tuple[tuple[float, int] | None, int] | None = None
        self.version = __version__
        self.token = secrets.token_urlsafe(32)
        self.connections: set[Connection] = set()
        self.live: dict[str, LiveResponse] = {}
        self.started = time.monotonic()
        self.last_activity = time.monotonic()
        self.mcp = McpHub(config.user_config.with_name("mcp.json"), config.database.parent, version=self.version)

    @property
    def models(self) -> ModelRegistry:
        """The models, rebuilt when config.toml or a provider's model list changed since they were built."""
        stamp = (file_stamp(self.config.user_config), self._catalog.version)
        if self._models is None or stamp != self._config_stamp:
            try:
                self._models = self._catalog.registry(load_config(self.config.user_config))
            except ConfigError as exc:
                log.error("%s; keeping the models as they were", exc)
                if self._models is None:
                    self._models = self._catalog.registry(UserConfig())
            self._config_stamp = stamp
        return self._models

    # ---- connections ----------------------------------------------------------

    def open_connection(self, transport: Transport) -> Connection:
        connection = create_connection(self, transport)
        self.connections.add(connection)
        self.last_activity = time.monotonic()
        return connection

    def close_connection(self, connection: Connection) -> None:
        """A client went away: its subscriptions end; its responses run on for others."""
        connection.connection_closed()
        self.connections.discard(connection)
        for live in self.live.values():
            live.subscribers.discard(connection)
        self.last_activity = time.monotonic()

    def check_token(self, connection: Connection, token: str | None) -> None:
        if connection.transport.requires_token and not (token and secrets.compare_digest(token, self.token)):
            asyncio.get_running_loop().call_soon(connection.transport.close)
            raise AuthFailed("this transport needs the daemon's token (`authToken`), read from the token file beside its socket")

    # ---- responses ------------------------------------------------------------

    def start_response(
        self,
        subscriber: Subscriber,
        *,
        model: Model,
        new_messages: list[Message],
        history_tip: str | None,
        history: list[Message] | None = None,
        conversation_id: str | None,
        system: str | None,
        options: dict | None,
        tools: list[ToolSpec],
        chain_limit: int | None,
        hide_reasoning: bool,
        session_key: str | None = None,
        cwd: str | None = None,
        mcp_servers: list[str] | None = None,
    ) -> LiveResponse:
        """Store the input, start the model, subscribe the caller; answers at once.

        ``history``: the chain up to ``history_tip`` as the client sent it, when it did
        (then the store is not read for it). ``cwd``: the working directory of the
        conversation it starts, if it starts one. ``mcp_servers``: the daemon's MCP servers whose
        tools the model gets; with any, the chain runs up to ``MCP_CHAIN_LIMIT`` rounds by default."""
        parsed_options = self.models.options(model, options)
        chain = self._tool_chain(subscriber, tools, chain_limit, mcp_servers or [])
        messages = (self.store.get_chain(history_tip) if history is None else history) + new_messages
        self.group_commit.join()  # committed with this turn's other writes, before the answer leaves
        input_tip = self.store.put_chain(new_messages, parent=history_tip)
        created_at = now()
        title = _title(messages)
        if conversation_id is None:
            conversation_id = new_id("conv")
            self.store.create_conversation(
                conversation_id, title=title, model=model.id, created_at=created_at, session_key=session_key, cwd=cwd
            )
        live = LiveResponse(
            response_id=new_id("resp"),
            conversation_id=conversation_id,
            model=model,
            request=ModelRequest(messages=messages, system=system, options=parsed_options, tools=tools),
            options=options,
            hide_reasoning=hide_reasoning,
            created_at=created_at,
            store=self.store,
            group=self.group_commit,
            tools=chain,
        )
        self.store.start_response(
            response_id=live.id,
            conversation_id=conversation_id,
            model=model.id,
            input_tip=input_tip,
            system=system,
            options=options,
            created_at=created_at,
            tools=tools,
            title=title,
        )
        self.live[live.id] = live
        live.subscribers.add(subscriber)
        live.start()
        assert live.task is not None
        live.task.add_done_callback(lambda _: self._finished(live))
        return live

    def _tool_chain(self, subscriber: Subscriber, tools: list[ToolSpec], chain_limit: int | None, mcp_servers: list[str]) -> ToolChain | None:
        """How the response's tool calls run: the client's tools through it, MCP tools here."""
        if not tools and not mcp_servers:
            return None
        mcp = McpTools(self.mcp.select(mcp_servers), self.mcp.approvals, approval_timeout=self.config.approval_timeout) if mcp_servers else None
        limit = chain_limit or (MCP_CHAIN_LIMIT if mcp_servers else 1)
        return ToolChain(subscriber, frozenset(t.name for t in tools), limit, self.config.tool_timeout, mcp)  # type: ignore[arg-type]

    def _finished(self, live: LiveResponse) -> None:
        self.live.pop(live.id, None)
        self.last_activity = time.monotonic()

    def record(self, response_id: str) -> ResponseRecord:
        live = self.live.get(response_id)
        if live is not None:
            return live.record()
        record = self.store.get_response(response_id)
        if record is None:
            raise UnknownResponse(f"unknown response {response_id!r}", data={"responseId": response_id})
        return record

    def reply_source(self, response_id: str) -> ResponseRecord:
        """The finished response a reply continues from."""
        if response_id in self.live:
            raise InvalidParams(f"params.responseId: response {response_id!r} is still running; wait for `done` or cancel it")
        return self.record(response_id)

    def conversation(self, conversation_id: str) -> Conversation:
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise _unknown_conversation(conversation_id)
        return conversation

    def create_conversation(self, params: ConversationsCreateParams) -> str:
        """A conversation with no response yet, whose settings its first prompt inherits; its
        model and options are checked now (the model is resolved: an alias is stored as its id)."""
        model = self.models.get(params.model)
        self.models.options(model, params.options)
        conversation_id = new_id("conv")
        settings = PromptRecord(messages=[], system=params.system, options=params.options, tools=params.tools)
        self.store.create_conversation(
            conversation_id, title=params.title or "", model=model.id, created_at=now(), cwd=params.cwd, settings=settings
        )
        return conversation_id

    def prompt(self, subscriber: Subscriber, params: PromptParams, *, session_key: str | None = None) -> LiveResponse:
        """Start the response of a ``prompt`` (from a connection, or a front door): in the
        conversation it names (inheriting the model, system prompt, options and tools it leaves
        unset from that conversation's latest response, else from those it was created with),
        else in the one its messages replay (PROTOCOL.md), else a new one.
        ``session_key``: the session a front door's client named; a replay continues only that
        session's conversation (or the conversation of that id), and a new one is started with it."""
        messages = list(params.messages or []) + _user_turn(params.prompt, params.attachments)
        conversation_id, history_tip, held = params.conversation_id, None, 0
        model_name, system, options, tools = params.model, params.system, params.options, params.tools
        if conversation_id is not None:
            settings = self.store.conversation_settings(conversation_id)  # what the prompt leaves unset
            if settings is None:
                raise _unknown_conversation(conversation_id)
            inherited_model, inherited = settings
            history_tip = self.store.conversation_tip(conversation_id)
            model_name = inherited_model if model_name is None else model_name
            system = inherited.system if system is None else system
            options = inherited.options if options is None else options
            tools = inherited.tools if tools is None else tools
        elif not params.new_conversation and (found := self.store.continued_conversation(messages, session_key=session_key)) is not None:
            conversation_id, history_tip, held = found
        model = self.models.get(model_name)
        return self.start_response(
            subscriber,
            model=model,
            new_messages=messages[held:],
            history_tip=history_tip,
            history=messages[:held] if held else None,
            conversation_id=conversation_id,
            system=system,
            options=options,
            tools=tools or [],
            chain_limit=params.chain_limit,
            hide_reasoning=params.hide_reasoning,
            session_key=session_key,
            cwd=params.cwd,
            mcp_servers=params.mcp_servers,
        )

    def reply(self, subscriber: Subscriber, params: ReplyParams) -> LiveResponse:
        """Start the response of a ``reply``: after its parent's whole chain, in its conversation,
        with the parent's system prompt and (unless given) its options and tools."""
        parent = self.reply_source(params.response_id)
        model = self.models.get(params.model or parent.model)
        messages = ([tool_message(*params.tool_results)] if params.tool_results else []) + list(params.messages or [])
        messages += _user_turn(params.prompt, params.attachments)
        if not messages:
            raise InvalidParams("a reply needs one of `prompt`, `messages`, `attachments` or `toolResults`")
        return self.start_response(
            subscriber,
            model=model,
            new_messages=messages,
            history_tip=self.store.response_tip(parent.id),  # the parent's whole chain: its input and output
            conversation_id=parent.conversation_id,
            system=parent.prompt.system,
            options=params.options if params.options is not None else parent.prompt.options,
            tools=(params.tools if params.tools is not None else parent.prompt.tools) or [],
            chain_limit=params.chain_limit,
            hide_reasoning=params.hide_reasoning,
            mcp_servers=params.mcp_servers,
        )

    def subscribe(self, connection: Connection, response_id: str, after_seq: int) -> int:
        """Replay the events after ``after_seq``, then go live: no gap, no duplicate. The seq of
        the response's latest event now, which the replay reaches."""
        live = self.live.get(response_id)
        if live is not None:
            live.subscribers.discard(connection)

            def go_live() -> None:
                if live.status == "running":
                    live.subscribers.add(connection)

            connection.catch_up(response_id, live.log, 0, after_seq, go_live)
            return len(live.log)
        if not self.store.response_exists(response_id):
            raise UnknownResponse(f"unknown response {response_id!r}", data={"responseId": response_id})
        events = self.store.read_events(response_id, after_seq)
        connection.catch_up(response_id, events, after_seq, after_seq, lambda: None)
        return after_seq + len(events)

    def unsubscribe(self, connection: Connection, response_id: str) -> None:
        connection.stop_catch_up(response_id)
        live = self.live.get(response_id)
        if live is not None:
            live.subscribers.discard(connection)

    async def delete_conversation(self, conversation_id: str) -> None:
        running = [live for live in self.live.values() if live.conversation_id == conversation_id]
        for live in running:
            await live.cancel()
        if not self.store.delete_conversation(conversation_id):
            raise _unknown_conversation(conversation_id)

    async def delete_response(self, response_id: str) -> None:
        """Delete one response (cancelled first if it runs); its conversation goes when it was its last."""
        live = self.live.get(response_id)
        if live is not None:
            await live.cancel()
        if not self.store.delete_response(response_id):
            raise UnknownResponse(f"unknown response {response_id!r}", data={"responseId": response_id})

    # ---- life cycle -------------------------------------------------------------

    def recover_interrupted(self) -> None:
        """Responses still `running` in the store were cut off by a crash: close them."""
        self.store.settle_journal()
        for response_id in self.store.running_response_ids():
            assembler = Assembler()
            events = list(_decode_events(self.store.read_events(response_id)))
            for event in events:
                assembler.add(event)
            log.warning("response %s was interrupted (%d events kept)", response_id, len(events))
            # End its stored stream as a live one ends, so a replay reaches `done`.
            tail = [ErrorEvent(code=INTERRUPTED.code, message=INTERRUPTED.message), DoneEvent(status="error", finish_reason="interrupted")]
            self.store.append_events(response_id, len(events) + 1, [msgspec.json.encode(e) for e in tail])  # bodies: unstamped
            self.store.finish_response(
                response_id,
                status="interrupted",
                output=assembler.messages(),
                usage=assembler.usage,
                error=INTERRUPTED,
                duration_ms=None,
                finish_reason="interrupted",
            )

    def uptime(self) -> float:
        return time.monotonic() - self.started

    def idle_for(self) -> float:
        if self.connections or self.live:
            return 0.0
        return time.monotonic() - self.last_activity

    async def shutdown(self) -> None:
        for live in list(self.live.values()):
            await live.interrupt()
        for connection in list(self.connections):
            connection.transport.close()
        await self.mcp.aclose()
        await self._catalog.aclose()
        self.group_commit.flush()
        self.store.close()


def _user_turn(prompt: str | None, attachments: list[Attachment] | None) -> list[Message]:
    """The user message made of a request's ``prompt`` text and ``attachments``, if it has either."""
    if prompt is None and not attachments:
        return []
    return [user(*([prompt] if prompt is not None else []), *(attachments or []))]


def _unknown_conversation(conversation_id: str) -> UnknownConversation:
    return UnknownConversation(f"unknown conversation {conversation_id!r}", data={"conversationId": conversation_id})


def _title(messages: list[Message]) -> str:
    text = next((text_of(m) for m in messages if m.role == "user" and text_of(m).strip()), "")
    line = " ".join(text.split(maxsplit=80)[:80])  # 80 words make more than 80 characters: the rest is cut anyway
    return line if len(line) <= 80 else line[:79] + "…"


_decode_event = msgspec.json.Decoder(AnyEvent).decode


def _decode_events(stored: Iterable[bytes]) -> Iterable[AnyEvent]:
    return map(_decode_event, stored)


def create_daemon(config: DaemonConfig) -> Daemon:
    """Open the store, recover what a crash cut off, and build the model registry."""
    config.database.parent.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    daemon = Daemon(config, store, Catalog())
    log.info("models: %s (default %s)", ", ".join(m.id for m in daemon.models.infos()), daemon.models.default.id)
    daemon.recover_interrupted()
    _write_private(config.token_file, daemon.token)
    return daemon


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
