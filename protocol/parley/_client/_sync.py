"""The blocking client: no threads; it reads from the socket only while a caller waits.

The daemon's tool calls (``tool/execute``, for a chain) run while a caller reads
a response (``stream_events``, ``text()``…), one after the other, in that thread.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from .. import _serialization
from .._errors import ConnectionClosed
from .._serialization import ResponseData
from .._toolspec import ToolLike
from .._types import (
    AnyEvent,
    Conversation,
    ConversationIdParams,
    ConversationsListParams,
    ConversationSummary,
    DaemonStatus,
    McpListResult,
    Message,
    ModelInfo,
    NoParams,
    PromptRecord,
    ServerCapabilities,
    ServerInfo,
    TextEvent,
    ToolApproveParams,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from ._base import (
    CHAIN_LIMIT,
    AfterCall,
    Approve,
    BaseModel,
    BaseResponse,
    BeforeCall,
    ToolSet,
    ToolHandler,
    approve_failure,
    approve_result,
    execute_result,
    prompt_request,
    request_steps,
    run_steps,
    select_model,
    tool_failure,
)
from ._connect import Starter, check_initialized, initialize_params, parse_target, transport_class
from ._conversation import ModelConversation, create_params
from ._core import ClientCore
from ._transports.base import Transport


def connect(
    url: str | os.PathLike[str] | None = None,
    *,
    token: str | None = None,
    autostart: bool = True,
    client_name: str = "parley-python",
    approve: Approve | None = None,
) -> Client:
    """Connect to the daemon, starting it if nothing listens on its socket.

    ``url`` is ``None`` (the daemon's own unix socket), ``unix:///path``,
    ``tcp://host:port`` or ``ws://host:port``; TCP and WebSocket need the
    daemon's token, read from beside its socket unless ``token`` is given.
    ``approve``: asked before each MCP tool call of this client's prompts
    (``mcp_servers=``) runs (see ``Client.approve``); without it every such call is denied.
    """
    target = parse_target(url)
    starter = Starter(target, autostart)
    while True:
        try:
            transport = transport_class(target.scheme, asynchronous=False).open(target.address)
            break
        except OSError as exc:
            time.sleep(starter.retry_after(exc))
    client = Client(transport)
    client.approve = approve
    try:
        result = check_initialized(client._call("initialize", initialize_params(target, token, client_name)))
    except BaseException:
        client.close()
        raise
    client.server_info, client.capabilities = result.server_info, result.capabilities
    return client


class Client:
    """A connection to the daemon. Make one with ``parley.connect()``; use it from one thread."""

    server_info: ServerInfo
    capabilities: ServerCapabilities

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._core = ClientCore()
        self._tool_handler: ToolHandler | None = None
        self._approve: Approve | None = None

    # ---- the API ------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        return self._call("models/list", NoParams()).models

    def get_model(self, name: str | None = None) -> Model:
        """The model with this id or alias, or the default model; ``UnknownModel`` if none."""
        return Model(self, select_model(self.models(), name))

    def conversations(
        self, query: str | None = None, limit: int = 50, before: str | None = None, cwd: str | None = None
    ) -> list[ConversationSummary]:
        """The latest conversations first; ``query`` searches their text, ``before`` pages (the last one's ``updatedAt``),
        ``cwd`` keeps those with that working directory."""
        params = ConversationsListParams(limit=limit, before=before, query=query, cwd=cwd)
        return self._call("conversations/list", params).conversations

    def create_conversation(
        self,
        *,
        model: str | None = None,
        system: str | None = None,
        options: dict[str, Any] | None = None,
        tools: Sequence[ToolLike] | None = None,
        cwd: str | None = None,
        title: str | None = None,
    ) -> str:
        """A new, empty conversation's id; the prompts in it inherit these settings."""
        params = create_params(model=model, system=system, options=options, tools=tools, cwd=cwd, title=title)
        return self._call("conversations/create", params).conversation_id

    def conversation(self, conversation_id: str) -> Conversation:
        return self._call("conversations/get", ConversationIdParams(conversation_id=conversation_id))

    def delete_conversation(self, conversation_id: str) -> None:
        self._call("conversations/delete", ConversationIdParams(conversation_id=conversation_id))

    def status(self) -> DaemonStatus:
        return self._call("daemon/status", NoParams())

    def mcp_servers(self) -> McpListResult:
        """The daemon's MCP servers (mcp.json): their state and tools."""
        return self._call("mcp/list", NoParams())

    @property
    def tool_handler(self) -> ToolHandler | None:
        """Called with ``ToolExecuteParams`` when the daemon asks this client to run a tool that is not
        a Python function given to ``prompt``/``chain`` (a bare ``ToolSpec``, or tools sent by hand)."""
        return self._tool_handler

    @tool_handler.setter
    def tool_handler(self, handler: ToolHandler | None) -> None:
        self._tool_handler = handler
        self._core.handles_tools = handler is not None

    @property
    def approve(self) -> Approve | None:
        """Called with ``ToolApproveParams`` when the daemon asks whether an MCP tool call of one of this
        client's prompts may run: return ``"allow_once"``, ``"allow_always"`` or ``"deny"`` (or a bool).
        It runs while a response is read, as tools do. None: every such call is denied."""
        return self._approve

    @approve.setter
    def approve(self, approve: Approve | None) -> None:
        self._approve = approve
        self._core.approves = approve is not None

    def close(self) -> None:
        self._core.connection_lost(ConnectionClosed("the client was closed"))
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the protocol -------------------------------------------------------------

    def _start(self, method: str, params: Any, model: str, toolbox: ToolSet | None = None) -> Response:
        started = self._call(method, params, toolbox)
        stream = self._core.open_stream(started.response_id)
        return Response(
            self,
            id=started.response_id,
            conversation_id=started.conversation_id,
            model=model,
            stream=stream,
            toolbox=toolbox,
        )

    def _call(self, method: str, params: Any, toolbox: ToolSet | None = None) -> Any:
        core = self._core
        request_id = core.request(method, params, toolbox)
        try:
            self._flush()
            while not core.has_result(request_id):
                self._receive()
        except BaseException:  # KeyboardInterrupt, most likely: the daemon can stop working on it
            core.abandon(request_id)
            with contextlib.suppress(ConnectionClosed):
                self._flush()
            raise
        return core.take_result(request_id)

    def _receive(self, *, tools: bool = False) -> None:
        """Read what has arrived (at least one message) and act on it.

        With ``tools`` (a wait on a response stream: only a stream needs them), run
        the daemon's tool calls that arrived instead, if any: after the reader has
        had the events that came before them, and never inside a plain request.
        """
        core = self._core
        if tools and core.tool_requests:
            self._run_tools()
            return
        if core.closed is not None:
            raise core.closed
        try:
            bodies = self._transport.receive()
        except (OSError, ConnectionClosed) as exc:
            core.connection_lost(exc)
            raise core.closed from exc  # type: ignore[misc]
        receive = core.receive
        for body in bodies:
            receive(body)
        self._flush()
        core.tool_cancels.clear()  # a tool here runs to its end before the next read: nothing to stop

    def _run_tools(self) -> None:
        """Run the daemon's tool calls one after the other, answering each as it ends."""
        requests = self._core.tool_requests
        while requests:
            request = requests.pop(0)
            answer: Any
            if isinstance(request.params, ToolApproveParams):
                try:
                    answer = approve_result(self._approve(request.params))  # type: ignore[misc]
                except Exception as exc:
                    answer = approve_failure(exc)
            else:
                try:
                    answer = execute_result(run_steps(request_steps(request, self._tool_handler)))
                except Exception as exc:  # a hook failed
                    answer = tool_failure(exc)
            self._core.answer(request.id, answer)
            self._flush()

    def _flush(self) -> None:
        try:
            for body in self._core.data_to_send():
                self._transport.send(body)
        except (OSError, ConnectionClosed) as exc:
            self._core.connection_lost(exc)
            raise self._core.closed from exc  # type: ignore[misc]


class Model(BaseModel[Client]):
    def prompt(self, prompt: str | None = None, **kwargs: Any) -> Response:
        """Start a response; it streams while you read it. The keywords: ``PromptKwargs``,
        and model options, as in llm (``temperature=0.5``).

        ``tools`` are typed functions (or ``Tool``/``ToolSpec``). With the default
        ``chain_limit`` of 1 the model runs one round: its calls are left in
        ``tool_calls()`` for ``execute_tool_calls()`` or ``reply()``.
        """
        params, toolbox = prompt_request(self.model_id, prompt, **kwargs)
        return self._client._start("prompt", params, self.model_id, toolbox)

    def conversation(
        self,
        tools: list[Any] | None = None,
        before_call: BeforeCall | None = None,
        after_call: AfterCall | None = None,
        chain_limit: int | None = None,
    ) -> ModelConversation:
        """llm's ``model.conversation()``: each of its prompts continues one parley conversation."""
        return ModelConversation(self, tools=tools, before_call=before_call, after_call=after_call, chain_limit=chain_limit)

    def chain(self, prompt: str | None = None, *, chain_limit: int = CHAIN_LIMIT, **kwargs: Any) -> Response:
        """A prompt whose tool calls the daemon runs, through this client, for up to ``chain_limit`` rounds.

        The calls run while you read the response (``before_call`` may refuse one);
        all the rounds are one response: ``text()`` is the text of every round.
        """
        return self.prompt(prompt, chain_limit=chain_limit, **kwargs)


class Response(BaseResponse[Client]):
    def stream_events(self) -> Iterator[AnyEvent]:
        """The events in order, ``done`` last; again from the first on each call."""
        seen = 0
        while (batch := self._unseen(seen)) is not None:
            if batch:
                seen += len(batch)
                yield from batch
            else:
                self._client._receive(tools=True)  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[str]:
        """The text chunks as they arrive (all of the text at once for a detached response)."""
        if self._stream is None:
            if text := self._text():
                yield text
            return
        for event in self.stream_events():
            if type(event) is TextEvent:
                yield event.chunk
        self._raise_if_failed()

    def text(self) -> str:
        """All of the text, once the response is done; ``ResponseFailed`` if it ended with an error."""
        self._finish()
        return self._text()

    def __str__(self) -> str:
        """The text, as llm's ``str(response)``: waits for the response to finish."""
        return self.text()

    def reasoning(self) -> str:
        self._finish()
        return self._reasoning()

    def usage(self) -> Usage:
        self._finish()
        return self._usage()

    def tool_calls(self) -> list[ToolCallPart]:
        """Every tool call of the response, in order (in a chain, the ones already run too)."""
        self._finish()
        return self._tool_calls()

    def execute_tool_calls(
        self, *, before_call: BeforeCall | None = None, after_call: AfterCall | None = None
    ) -> list[ToolResultPart]:
        """Run the calls that have no result yet, here, once each; their results, in call order.

        The hooks default to those given to ``prompt``.
        """
        self._finish()
        runs = self._tool_runs(before_call, after_call)
        for key, steps in runs:
            if steps is not None:
                self._executed[key] = run_steps(steps)
        return [self._executed[key] for key, _ in runs]

    def messages(self) -> list[Message]:
        """The output messages, as the daemon stored them."""
        return self._load().messages

    def prompt(self) -> PromptRecord:
        """What the model was given: every message of the chain, the system prompt and options."""
        return self._load().prompt

    def to_dict(self) -> dict[str, Any]:
        """The response in the shape of ``llm``'s ``Response.to_dict()``."""
        return _serialization.to_dict(self._load())

    def json(self) -> dict[str, Any] | None:
        """llm's ``response.json()``: here the daemon's stored record of the response, in its wire
        form (the provider's own JSON stays in the daemon); None for a response from ``from_dict``."""
        if self._stream is None:
            return None
        self._load()
        return msgspec.to_builtins(self._record)

    def reply(self, prompt: str | None = None, **kwargs: Any) -> Response:
        """Continue the conversation; waits for this response to finish first.

        When it was given tools, its pending calls run first (``execute_tool_calls``)
        and their results go with the reply, unless ``tool_results`` are given.
        """
        self._reply_client()
        self._finish()
        if self._runs_on_reply(kwargs):
            results = self.execute_tool_calls(before_call=kwargs.get("before_call"), after_call=kwargs.get("after_call"))
            if results:
                kwargs["tool_results"] = results
        client, method, params, toolbox = self._reply_start(prompt, **kwargs)
        return client._start(method, params, params.model or self.model, toolbox)

    def cancel(self) -> str:
        """Stop the response, keeping what arrived; its final status."""
        client, params = self._live()
        return client._call("response/cancel", params).status

    def _finish(self) -> None:
        while self._running():
            self._client._receive(tools=True)  # type: ignore[union-attr]

    def _load(self) -> ResponseData:
        if self._data is None:
            self._finish()
            client, params = self._live()
            self._record = client._call("response/get", params)
            self._data = ResponseData.from_record(self._record)
        return self._data
