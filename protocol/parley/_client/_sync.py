"""The blocking client: no threads; it reads from the socket only while a caller waits."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any, Unpack

from .. import _serialization
from .._errors import ConnectionClosed
from .._serialization import ResponseData
from .._types import (
    AnyEvent,
    Conversation,
    ConversationIdParams,
    ConversationsListParams,
    ConversationSummary,
    DaemonStatus,
    Message,
    ModelInfo,
    NoParams,
    PromptRecord,
    ServerCapabilities,
    ServerInfo,
    TextEvent,
    ToolCallPart,
    Usage,
)
from ._base import (
    BaseModel,
    BaseResponse,
    PromptKwargs,
    ReplyKwargs,
    ToolHandler,
    prompt_params,
    select_model,
    tool_answer,
    tool_failure,
)
from ._connect import Starter, check_initialized, initialize_params, parse_target, transport_class
from ._core import ClientCore
from ._transports.base import Transport


def connect(
    url: str | os.PathLike[str] | None = None,
    *,
    token: str | None = None,
    autostart: bool = True,
    client_name: str = "parley-python",
) -> Client:
    """Connect to the daemon, starting it if nothing listens on its socket.

    ``url`` is ``None`` (the daemon's own unix socket), ``unix:///path``,
    ``tcp://host:port`` or ``ws://host:port``; TCP and WebSocket need the
    daemon's token, read from beside its socket unless ``token`` is given.
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

    # ---- the API ------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        return self._call("models/list", NoParams()).models

    def get_model(self, name: str | None = None) -> Model:
        """The model with this id or alias, or the default model; ``UnknownModel`` if none."""
        return Model(self, select_model(self.models(), name))

    def conversations(
        self, query: str | None = None, limit: int = 50, before: str | None = None
    ) -> list[ConversationSummary]:
        """The latest conversations first; ``query`` searches their text, ``before`` pages by id."""
        params = ConversationsListParams(limit=limit, before=before, query=query)
        return self._call("conversations/list", params).conversations

    def conversation(self, conversation_id: str) -> Conversation:
        return self._call("conversations/get", ConversationIdParams(conversation_id=conversation_id))

    def delete_conversation(self, conversation_id: str) -> None:
        self._call("conversations/delete", ConversationIdParams(conversation_id=conversation_id))

    def status(self) -> DaemonStatus:
        return self._call("daemon/status", NoParams())

    @property
    def tool_handler(self) -> ToolHandler | None:
        """Called with ``ToolExecuteParams`` when the daemon asks this client to run a tool."""
        return self._tool_handler

    @tool_handler.setter
    def tool_handler(self, handler: ToolHandler | None) -> None:
        self._tool_handler = handler
        self._core.handles_tools = handler is not None

    def close(self) -> None:
        self._core.connection_lost(ConnectionClosed("the client was closed"))
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the protocol -------------------------------------------------------------

    def _start(self, method: str, params: Any, model: str) -> Response:
        started = self._call(method, params)
        stream = self._core.open_stream(started.response_id)
        return Response(
            self, id=started.response_id, conversation_id=started.conversation_id, model=model, stream=stream
        )

    def _call(self, method: str, params: Any) -> Any:
        core = self._core
        request_id = core.request(method, params)
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

    def _receive(self) -> None:
        """Read what has arrived (at least one message) and act on it."""
        core = self._core
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
        if core.tool_requests:
            self._run_tools()

    def _run_tools(self) -> None:
        requests = self._core.tool_requests
        while requests:
            request_id, params = requests.pop(0)
            try:
                answer = tool_answer(self._tool_handler(params))  # type: ignore[misc]
            except Exception as exc:
                answer = tool_failure(exc)
            self._core.answer(request_id, answer)
            self._flush()

    def _flush(self) -> None:
        try:
            for body in self._core.data_to_send():
                self._transport.send(body)
        except (OSError, ConnectionClosed) as exc:
            self._core.connection_lost(exc)
            raise self._core.closed from exc  # type: ignore[misc]


class Model(BaseModel[Client]):
    def prompt(self, prompt: str | None = None, **kwargs: Unpack[PromptKwargs]) -> Response:
        """Start a response; it streams while you read it."""
        return self._client._start("prompt", prompt_params(self.model_id, prompt, **kwargs), self.model_id)


class Response(BaseResponse[Client]):
    def stream_events(self) -> Iterator[AnyEvent]:
        """The events in order, ``done`` last; again from the first on each call."""
        seen = 0
        while (batch := self._unseen(seen)) is not None:
            if batch:
                seen += len(batch)
                yield from batch
            else:
                self._client._receive()  # type: ignore[union-attr]

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

    def reasoning(self) -> str:
        self._finish()
        return self._reasoning()

    def usage(self) -> Usage | None:
        self._finish()
        return self._usage()

    def tool_calls(self) -> list[ToolCallPart]:
        self._finish()
        return self._tool_calls()

    def messages(self) -> list[Message]:
        """The output messages, as the daemon stored them."""
        return self._load().messages

    def prompt(self) -> PromptRecord:
        """What the model was given: every message of the chain, the system prompt and options."""
        return self._load().prompt

    def to_dict(self) -> dict[str, Any]:
        """The response in the shape of ``llm``'s ``Response.to_dict()``."""
        return _serialization.to_dict(self._load())

    def reply(self, prompt: str | None = None, **kwargs: Unpack[ReplyKwargs]) -> Response:
        """Continue the conversation; waits for this response to finish first."""
        client, method, params = self._reply_request(prompt, **kwargs)
        self._finish()
        return client._start(method, params, params.model or self.model)

    def cancel(self) -> str:
        """Stop the response, keeping what arrived; its final status."""
        client, params = self._live()
        return client._call("response/cancel", params).status

    def _finish(self) -> None:
        while self._running():
            self._client._receive()  # type: ignore[union-attr]

    def _load(self) -> ResponseData:
        if self._data is None:
            self._finish()
            client, params = self._live()
            record = client._call("response/get", params)
            self._data = ResponseData.from_record(record)
        return self._data
