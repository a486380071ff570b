"""The asyncio client: one reader task takes in every message; callers await what they need."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any

import msgspec

from .. import _serialization
from .._errors import ConnectionClosed, RequestCancelled
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
    run_steps_async,
    select_model,
    tool_failure,
)
from ._connect import Starter, check_initialized, initialize_params, parse_target, transport_class
from ._conversation import AsyncModelConversation, create_params
from ._core import ClientCore, RequestId, ToolRequest
from ._transports.base import AsyncTransport


async def connect_async(
    url: str | os.PathLike[str] | None = None,
    *,
    token: str | None = None,
    autostart: bool = True,
    client_name: str = "parley-python",
    approve: Approve | None = None,
) -> AsyncClient:
    """As ``parley.connect``, for asyncio; ``approve`` may be async."""
    target = parse_target(url)
    starter = Starter(target, autostart)
    while True:
        try:
            transport = await transport_class(target.scheme, asynchronous=True).open(target.address)
            break
        except OSError as exc:
            await asyncio.sleep(starter.retry_after(exc))
    client = AsyncClient(transport)
    client.approve = approve
    try:
        result = check_initialized(await client._call("initialize", initialize_params(target, token, client_name)))
    except BaseException:
        await client.close()
        raise
    client.server_info, client.capabilities = result.server_info, result.capabilities
    return client


class AsyncClient:
    """A connection to the daemon. Make one with ``await parley.connect_async()``."""

    server_info: ServerInfo
    capabilities: ServerCapabilities

    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport
        self._core = ClientCore()
        self._tool_handler: ToolHandler | None = None
        self._approve: Approve | None = None
        self._batch = asyncio.Event()  # set, and replaced, each time the reader has taken in some messages
        self._tasks: set[asyncio.Task[None]] = set()
        self._tool_tasks: dict[RequestId, asyncio.Task[None]] = {}  # the daemon's tool calls, running
        self._reader = asyncio.get_running_loop().create_task(self._read())

    # ---- the API ------------------------------------------------------------------

    async def models(self) -> list[ModelInfo]:
        return (await self._call("models/list", NoParams())).models

    async def get_model(self, name: str | None = None) -> AsyncModel:
        """The model with this id or alias, or the default model; ``UnknownModel`` if none."""
        return AsyncModel(self, select_model(await self.models(), name))

    async def conversations(
        self, query: str | None = None, limit: int = 50, before: str | None = None, cwd: str | None = None
    ) -> list[ConversationSummary]:
        """The latest conversations first; ``query`` searches their text, ``before`` pages (the last one's ``updatedAt``),
        ``cwd`` keeps those with that working directory."""
        params = ConversationsListParams(limit=limit, before=before, query=query, cwd=cwd)
        return (await self._call("conversations/list", params)).conversations

    async def create_conversation(
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
        return (await self._call("conversations/create", params)).conversation_id

    async def conversation(self, conversation_id: str) -> Conversation:
        return await self._call("conversations/get", ConversationIdParams(conversation_id=conversation_id))

    async def delete_conversation(self, conversation_id: str) -> None:
        await self._call("conversations/delete", ConversationIdParams(conversation_id=conversation_id))

    async def status(self) -> DaemonStatus:
        return await self._call("daemon/status", NoParams())

    async def mcp_servers(self) -> McpListResult:
        """The daemon's MCP servers (mcp.json): their state and tools."""
        return await self._call("mcp/list", NoParams())

    @property
    def tool_handler(self) -> ToolHandler | None:
        """Called with ``ToolExecuteParams`` when the daemon asks this client to run a tool that is not
        a Python function given to ``prompt``/``chain`` (a bare ``ToolSpec``, or tools sent by hand); may be async."""
        return self._tool_handler

    @tool_handler.setter
    def tool_handler(self, handler: ToolHandler | None) -> None:
        self._tool_handler = handler
        self._core.handles_tools = handler is not None

    @property
    def approve(self) -> Approve | None:
        """As ``Client.approve``; it may be async, and runs as soon as the daemon asks."""
        return self._approve

    @approve.setter
    def approve(self, approve: Approve | None) -> None:
        self._approve = approve
        self._core.approves = approve is not None

    async def close(self) -> None:
        self._core.connection_lost(ConnectionClosed("the client was closed"))
        for task in list(self._tool_tasks.values()):
            task.cancel()
        self._reader.cancel()
        await self._transport.close()
        await asyncio.wait([self._reader])

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- the protocol -------------------------------------------------------------

    async def _start(self, method: str, params: Any, model: str, toolbox: ToolSet | None = None) -> AsyncResponse:
        started = await self._call(method, params, toolbox)
        stream = self._core.open_stream(started.response_id)
        return AsyncResponse(
            self,
            id=started.response_id,
            conversation_id=started.conversation_id,
            model=model,
            stream=stream,
            toolbox=toolbox,
        )

    async def _call(self, method: str, params: Any, toolbox: ToolSet | None = None) -> Any:
        core = self._core
        request_id = core.request(method, params, toolbox)
        try:
            await self._flush()
            while not core.has_result(request_id):
                await self._receive()
        except asyncio.CancelledError:  # the daemon can stop working on it
            core.abandon(request_id)
            self._spawn(self._flush())
            raise
        return core.take_result(request_id)

    async def _receive(self) -> None:
        """Wait until the reader has taken in more messages."""
        if self._core.closed is not None:
            raise self._core.closed
        await self._batch.wait()

    async def _read(self) -> None:
        core = self._core
        try:
            while True:
                for body in await self._transport.receive():
                    core.receive(body)
                await self._flush()
                for request in core.tool_requests:
                    self._tool_tasks[request.id] = self._spawn(self._run_tool(request))
                core.tool_requests.clear()
                for request_id in core.tool_cancels:
                    if (task := self._tool_tasks.get(request_id)) is not None:
                        task.cancel()
                core.tool_cancels.clear()
                batch, self._batch = self._batch, asyncio.Event()
                batch.set()
        except Exception as exc:
            core.connection_lost(exc)
        finally:
            core.connection_lost()
            self._batch.set()

    async def _run_tool(self, request: ToolRequest) -> None:
        """Run one of the daemon's tool calls; the daemon's ``$/cancelRequest`` cancels it."""
        try:
            if isinstance(request.params, ToolApproveParams):
                answer: Any = await self._ask_approve(request.params)
            else:
                answer = execute_result(await run_steps_async(request_steps(request, self._tool_handler)))
        except asyncio.CancelledError:
            answer = RequestCancelled("the daemon cancelled this tool call")
        except Exception as exc:  # a hook failed
            answer = tool_failure(exc)
        finally:
            self._tool_tasks.pop(request.id, None)
        self._core.answer(request.id, answer)
        await self._flush()

    async def _ask_approve(self, params: ToolApproveParams) -> Any:
        try:
            verdict = self._approve(params)  # type: ignore[misc]
            return approve_result(await verdict if inspect.isawaitable(verdict) else verdict)
        except Exception as exc:
            return approve_failure(exc)

    async def _flush(self) -> None:
        try:
            for body in self._core.data_to_send():
                await self._transport.send(body)
        except (OSError, ConnectionClosed) as exc:
            self._core.connection_lost(exc)
            raise self._core.closed from exc  # type: ignore[misc]

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run work in the background, holding on to its task until it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here: a lost connection reaches every waiter through the core


class AsyncModel(BaseModel[AsyncClient]):
    def prompt(self, prompt: str | None = None, **kwargs: Any) -> AsyncResponse:
        """A response that starts when first read or awaited, as llm's: ``async for chunk in
        model.prompt(...)``, or ``response = await model.prompt(...)`` (started, still streaming).

        The keywords are ``Model.prompt``'s; ``tools`` may be async functions.
        """
        params, toolbox = prompt_request(self.model_id, prompt, **kwargs)
        return AsyncResponse.pending(self._connected, params, self.model_id, toolbox)

    def conversation(
        self,
        tools: list[Any] | None = None,
        before_call: BeforeCall | None = None,
        after_call: AfterCall | None = None,
        chain_limit: int | None = None,
    ) -> AsyncModelConversation:
        """llm's ``model.conversation()``: each of its prompts continues one parley conversation."""
        return AsyncModelConversation(self, tools=tools, before_call=before_call, after_call=after_call, chain_limit=chain_limit)

    def chain(self, prompt: str | None = None, *, chain_limit: int = CHAIN_LIMIT, **kwargs: Any) -> AsyncResponse:
        """A prompt whose tool calls the daemon runs, through this client, for up to ``chain_limit`` rounds.

        The calls run in the background as soon as the daemon asks, in parallel.
        """
        return self.prompt(prompt, chain_limit=chain_limit, **kwargs)

    async def _connected(self) -> AsyncClient:
        """The client to start a prompt on (the default model's connects in the running loop)."""
        return self._client


class AsyncResponse(BaseResponse[AsyncClient]):
    _starting: asyncio.Task[None] | None = None  # the ``prompt`` request of a pending response
    _start: Callable[[], Coroutine[Any, Any, None]] | None = None

    @classmethod
    def pending(
        cls, connected: Callable[[], Awaitable[AsyncClient]], params: Any, model: str, toolbox: ToolSet | None
    ) -> AsyncResponse:
        """A response not yet sent: the first read (or ``await``) sends its ``prompt``."""
        response = cls(None, id=None, conversation_id=None, model=model, toolbox=toolbox)

        async def start() -> None:
            client = await connected()
            started = await client._call("prompt", params, toolbox)
            response._client, response.id, response.conversation_id = client, started.response_id, started.conversation_id
            response._stream = client._core.open_stream(started.response_id)

        response._start = start
        return response

    def __await__(self) -> Generator[Any, None, AsyncResponse]:
        """Send it, if it is pending; the response, streaming."""
        return self._started().__await__()

    async def _started(self) -> AsyncResponse:
        if self._start is not None:
            if self._starting is None:  # one request, however many readers wait for it
                self._starting = asyncio.get_running_loop().create_task(self._start())
            await asyncio.shield(self._starting)
            self._start = None
        return self

    @property
    def status(self) -> str:
        """``pending`` until it is sent; then as ``Response.status``."""
        return "pending" if self._start is not None else super().status

    async def astream_events(self) -> AsyncIterator[AnyEvent]:
        """The events in order, ``done`` last; again from the first on each call."""
        await self._started()
        seen = 0
        while (batch := self._unseen(seen)) is not None:
            if batch:
                seen += len(batch)
                for event in batch:
                    yield event
            else:
                await self._client._receive()  # type: ignore[union-attr]

    async def __aiter__(self) -> AsyncIterator[str]:
        """The text chunks as they arrive (all of the text at once for a detached response)."""
        await self._started()
        if self._stream is None:
            if text := self._text():
                yield text
            return
        async for event in self.astream_events():
            if type(event) is TextEvent:
                yield event.chunk
        self._raise_if_failed()

    async def text(self) -> str:
        """All of the text, once the response is done; ``ResponseFailed`` if it ended with an error."""
        await self._finish()
        return self._text()

    async def reasoning(self) -> str:
        await self._finish()
        return self._reasoning()

    async def usage(self) -> Usage:
        await self._finish()
        return self._usage()

    async def tool_calls(self) -> list[ToolCallPart]:
        """Every tool call of the response, in order (in a chain, the ones already run too)."""
        await self._finish()
        return self._tool_calls()

    async def execute_tool_calls(
        self, *, before_call: BeforeCall | None = None, after_call: AfterCall | None = None
    ) -> list[ToolResultPart]:
        """Run the calls that have no result yet, here, once each and in parallel; their results, in call order."""
        await self._finish()
        runs = self._tool_runs(before_call, after_call)
        todo = [(key, steps) for key, steps in runs if steps is not None]
        for (key, _), result in zip(todo, await asyncio.gather(*(run_steps_async(s) for _, s in todo)), strict=True):
            self._executed[key] = result
        return [self._executed[key] for key, _ in runs]

    async def messages(self) -> list[Message]:
        """The output messages, as the daemon stored them."""
        return (await self._load()).messages

    async def prompt(self) -> PromptRecord:
        """What the model was given: every message of the chain, the system prompt and options."""
        return (await self._load()).prompt

    async def to_dict(self) -> dict[str, Any]:
        """The response in the shape of ``llm``'s ``Response.to_dict()``."""
        return _serialization.to_dict(await self._load())

    async def json(self) -> dict[str, Any] | None:
        """As ``Response.json()``: the daemon's stored record, in its wire form."""
        await self._started()
        if self._stream is None:
            return None
        await self._load()
        return msgspec.to_builtins(self._record)

    async def reply(self, prompt: str | None = None, **kwargs: Any) -> AsyncResponse:
        """Continue the conversation; waits for this response to finish first.

        When it was given tools, its pending calls run first (``execute_tool_calls``)
        and their results go with the reply, unless ``tool_results`` are given.
        """
        await self._started()
        self._reply_client()
        await self._finish()
        if self._runs_on_reply(kwargs):
            results = await self.execute_tool_calls(before_call=kwargs.get("before_call"), after_call=kwargs.get("after_call"))
            if results:
                kwargs["tool_results"] = results
        client, method, params, toolbox = self._reply_start(prompt, **kwargs)
        return await client._start(method, params, params.model or self.model, toolbox)

    async def cancel(self) -> str:
        """Stop the response, keeping what arrived; its final status."""
        await self._started()
        client, params = self._live()
        return (await client._call("response/cancel", params)).status

    async def _finish(self) -> None:
        await self._started()
        while self._running():
            await self._client._receive()  # type: ignore[union-attr]

    async def _load(self) -> ResponseData:
        if self._data is None:
            await self._finish()
            client, params = self._live()
            self._record = await client._call("response/get", params)
            self._data = ResponseData.from_record(self._record)
        return self._data
