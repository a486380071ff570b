"""One client connection: pygls's JSON-RPC protocol object over the shared daemon.

pygls serves one client per server object, so each connection gets its own
``JsonRPCServer`` whose protocol is this class. pygls keeps the request futures:
``$/cancelRequest``, and ``send_request`` with its answers for the daemon's own
requests. The hot paths skip it: messages are decoded and their params validated
with msgspec (a bad field is a -32602 naming it), a client's request goes straight
to its handler (a plain call, or a task for an async one, kept where
``$/cancelRequest`` finds it), everything sent is encoded with msgspec, and no
error leaves with a traceback. Event notifications are encoded once per event and
written to each subscriber as bytes.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import msgspec
from lsprotocol.types import ResponseError, ResponseErrorMessage
from pygls.exceptions import JsonRpcException
from pygls.protocol import JsonRPCProtocol
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCResponseMessage
from pygls.server import JsonRPCServer

from parley._errors import (
    REQUEST_ERRORS,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MessageTooLarge,
    MethodNotFound,
    NotInitialized,
    ParseError,
    RequestCancelled,
    RequestError,
)
from parley._framing import FrameFault
from parley._methods import CLIENT_NOTIFICATIONS, CLIENT_REQUESTS
from parley._types import (
    AnyEvent,
    CancelRequestParams,
    LaggedParams,
    ToolApproveParams,
    ToolApproveResult,
    ToolExecuteParams,
    ToolExecuteResult,
)

from ._coalesce import HeldEvents
from ._live import event_message
from ._rejections import RejectionLog
from ._tools import ToolClientGone

if TYPE_CHECKING:
    from ._daemon import Daemon
    from ._transports import Transport

log = logging.getLogger(__name__)

_UNSET: Any = msgspec.UNSET
_encode = msgspec.json.Encoder().encode
_REPLAY_BATCH = 512
_HOLD_FRACTION = 8  # events are held (and merged) past an eighth of max_backlog: 1 MiB of 8
_numbers = itertools.count(1)


class _Answer(msgspec.Struct, kw_only=True):
    """A request's result on the wire."""

    jsonrpc: str = "2.0"
    id: int | str
    result: Any


class _Envelope(msgspec.Struct):
    """Any JSON-RPC message; params and result stay raw until the method is known."""

    jsonrpc: str
    id: int | str | None | msgspec.UnsetType = _UNSET
    method: str | msgspec.UnsetType = _UNSET
    params: msgspec.Raw = msgspec.Raw(b"{}")
    result: msgspec.Raw | msgspec.UnsetType = _UNSET
    error: dict[str, Any] | msgspec.UnsetType = _UNSET


_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_HANDLE_ANY = {"initialize"}  # requests allowed before `initialize` has succeeded


class Connection(JsonRPCProtocol):
    def __init__(self, server: JsonRPCServer, converter: Any, *, daemon: Daemon, transport: Transport) -> None:
        super().__init__(server, converter)
        self.daemon = daemon
        self.transport = transport
        self.initialized = False
        self.client_name = "?"
        self.closed = False
        self.event_ranges = True  # the client may get merged deltas (initialize's capabilities)
        self._catch_ups: dict[str, asyncio.Task[None]] = {}
        self._held: dict[str, HeldEvents] = {}  # responseId → events held while this connection lags
        self._release: asyncio.Task[None] | None = None
        self._tool_ids = itertools.count(1)
        self.number = next(_numbers)
        self._rejections = RejectionLog(lambda: f"connection {self.number} ({self.client_name})")

    # ---- receiving -----------------------------------------------------------

    def receive(self, body: bytes) -> None:
        """Take one message body from the transport; nothing in it can break the connection."""
        try:
            self._receive(body)
        except Exception:
            log.exception("failed to handle a message from %s", self.client_name)

    def _receive(self, body: bytes) -> None:
        try:
            message = _decode_envelope(body)
        except msgspec.ValidationError as exc:
            return self._reject(None, InvalidRequest(f"not a JSON-RPC 2.0 message: {exc}"), len(body))
        except msgspec.DecodeError as exc:
            return self._reject(None, ParseError(f"the message is not valid JSON: {exc}"), len(body))
        except RecursionError:  # msgspec's limit: about 1,000 levels, even inside params
            return self._reject(None, ParseError("the message is nested too deeply (its id cannot be read)"), len(body))
        if message.jsonrpc != "2.0":
            return self._reject(message.id or None, InvalidRequest('`jsonrpc` must be "2.0"'), len(body))
        if message.method is _UNSET:
            return self._receive_answer(message, len(body))
        msg_id = message.id
        if msg_id is _UNSET or msg_id is None:
            return self._receive_notification(message.method, message.params)
        if not self.initialized and message.method not in _HANDLE_ANY:
            error = NotInitialized("the first request on a connection must be `initialize`")
            return self._reject(msg_id, error, len(body))
        spec = CLIENT_REQUESTS.get(message.method)
        if spec is None:
            return self._reject(msg_id, MethodNotFound(f"no such method: {message.method}"), len(body))
        try:
            params = msgspec.json.decode(message.params, type=spec.params)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            error = InvalidParams(f"invalid params for {message.method}: {_named(exc)}")
            return self._reject(msg_id, error, len(body))
        self._dispatch(msg_id, message.method, params)

    def receive_fault(self, fault: FrameFault) -> None:
        """Bytes the transport could not take as a message."""
        error = MessageTooLarge(fault.detail) if fault.kind == "too_large" else ParseError(fault.detail)
        self._reject(None, error, fault.size)

    def _receive_notification(self, method: str, raw: msgspec.Raw) -> None:
        spec = CLIENT_NOTIFICATIONS.get(method)
        if spec is None or not self.initialized:
            return  # JSON-RPC: notifications get no answer, not even an error
        try:
            params = msgspec.json.decode(raw, type=spec.params)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self._rejections.note(f"notification {method}", len(raw), f"ignored, invalid params: {_named(exc)}")
            return
        self.handle_message(JsonRPCNotification(method=method, jsonrpc="2.0", params=params))

    def _receive_answer(self, message: _Envelope, size: int) -> None:
        """An answer to one of the daemon's own requests (``tool/execute``)."""
        if message.id is _UNSET or message.id is None:
            error = InvalidRequest("a message needs a `method`, or an `id` with a `result` or `error`")
            return self._reject(None, error, size)
        if message.error is not _UNSET:
            err = message.error
            error = ResponseError(code=int(err.get("code", -32603)), message=str(err.get("message", "")), data=err.get("data"))
            self.handle_message(ResponseErrorMessage(id=message.id, error=error))
        else:
            result = msgspec.json.decode(message.result) if message.result is not _UNSET else None
            self.handle_message(JsonRPCResponseMessage(id=message.id, jsonrpc="2.0", result=result))

    # ---- dispatch -------------------------------------------------------------

    def _dispatch(self, msg_id: Any, method: str, params: Any) -> None:
        """Run a request's handler: at once if it is a plain function, as a task if async."""
        handler, is_async = _handlers()[method]
        if is_async:
            task = asyncio.ensure_future(handler(self, params))
            self._request_futures[msg_id] = task  # where pygls's $/cancelRequest looks
            task.add_done_callback(functools.partial(self._send_handler_result, msg_id=msg_id))
            return
        try:
            result = handler(self, params)
        except Exception as exc:
            return self._answer_failure(msg_id, exc)
        self._send_data(_Answer(id=msg_id, result=result))

    def _send_handler_result(self, future: Any, *, msg_id: Any) -> None:
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            return self._reply_error(msg_id, RequestCancelled("the request was cancelled"))
        exc = future.exception()
        if exc is not None:
            return self._answer_failure(msg_id, exc)
        self._send_data(_Answer(id=msg_id, result=future.result()))

    def _answer_failure(self, msg_id: Any, exc: BaseException) -> None:
        if not isinstance(exc, RequestError):
            log.error("request %r failed", msg_id, exc_info=exc)
            exc = InternalError("the daemon failed to handle this request; see its log")
        self._reply_error(msg_id, exc)

    def _reject(self, msg_id: Any, error: RequestError, size: int) -> None:
        """A client's fault: its error answer, and one (rate-limited) line in the log."""
        self._rejections.note(error.kind, size, error.message)
        self._reply_error(msg_id, error)

    def _reply_error(self, msg_id: Any, error: RequestError) -> None:
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": error.to_wire()})

    def _send_data(self, data: Any) -> None:
        """Every message pygls or this class sends, encoded with msgspec."""
        if self.closed:
            return
        if attrs.has(type(data)):
            data = _from_pygls(data)
        if self._held:
            self._send_held()
        self.transport.send(_encode(data))

    # ---- events ---------------------------------------------------------------

    def send_event(self, response_id: str, seq: int, message: bytes, event: AnyEvent) -> bool:
        """Send one event, or hold it while this connection lags (merging deltas, see
        _coalesce); False when it is unsubscribed, with ``response/lagged``."""
        held = self._held.get(response_id)
        if held is None:
            backlog = self.transport.backlog()
            limit = self.daemon.config.max_backlog
            if backlog <= limit // _HOLD_FRACTION or (not self.event_ranges and backlog <= limit):
                self.transport.send(message)
                return True
            if not self.event_ranges:
                self.notify_lagged(response_id, seq - 1)
                return False
            held = self._held[response_id] = HeldEvents(seq)
            if self._release is None:
                self._release = asyncio.get_running_loop().create_task(self._release_when_drained())
        held.add(event, message)
        if held.size > self.daemon.config.max_backlog:
            del self._held[response_id]
            self.notify_lagged(response_id, held.first_seq - 1)
            return False
        return True

    async def _release_when_drained(self) -> None:
        try:
            await self.transport.drained()
        finally:
            self._release = None
        self._send_held()

    def _send_held(self) -> None:
        """Write every held event: the backlog drained, or another message must follow them."""
        held, self._held = self._held, {}
        for events in held.values():
            for message in events.messages():
                self.transport.send(message)

    def notify_lagged(self, response_id: str, last_seq: int) -> None:
        log.info("connection %s lags on %s at seq %d", self.client_name, response_id, last_seq)
        self._send_data({"jsonrpc": "2.0", "method": "response/lagged", "params": LaggedParams(response_id=response_id, last_seq=last_seq)})

    def catch_up(self, response_id: str, events: Sequence[bytes], base: int, after_seq: int, then: Callable[[], None]) -> None:
        """Send the events after ``after_seq`` at the client's pace, then call ``then``.

        ``events[i]`` is the event of seq ``base + i + 1``; the list may grow
        meanwhile (a live response's log). Once it holds no more, ``then`` runs
        in the same step, so no event can slip between the replay and what
        follows it.
        """
        self.stop_catch_up(response_id)
        replay = self._catch_up(response_id, events, base, after_seq, then)
        self._catch_ups[response_id] = asyncio.get_running_loop().create_task(replay)

    async def _catch_up(self, response_id: str, events: Sequence[bytes], base: int, cursor: int, then: Callable[[], None]) -> None:
        try:
            while batch := events[cursor - base : cursor - base + _REPLAY_BATCH]:
                for params in batch:
                    self.transport.send(event_message(params))
                cursor += len(batch)
                await self.transport.drained()
                if self.closed:
                    return
            then()
        finally:
            if self._catch_ups.get(response_id) is asyncio.current_task():
                del self._catch_ups[response_id]

    def stop_catch_up(self, response_id: str) -> None:
        """Stop replaying (and drop what is held of) a response: it is subscribed afresh, or unsubscribed."""
        self._held.pop(response_id, None)
        task = self._catch_ups.pop(response_id, None)
        if task is not None:
            task.cancel()

    async def execute_tool(self, params: ToolExecuteParams) -> ToolExecuteResult:
        """Ask this client to run one of its tools; cancelling sends it ``$/cancelRequest``."""
        return await self._ask("tool/execute", params, ToolExecuteResult, f"tool-{next(self._tool_ids)}")

    async def approve_tool(self, params: ToolApproveParams) -> ToolApproveResult:
        """Ask this client (its user) whether an MCP tool call may run."""
        return await self._ask("tool/approve", params, ToolApproveResult, f"approve-{next(self._tool_ids)}")

    async def _ask(self, method: str, params: Any, result_type: type[Any], msg_id: str) -> Any:
        """One of the daemon's own requests; an error answer is a RequestError, a cancel a ``$/cancelRequest``."""
        future = self.send_request_async(method, params, msg_id=msg_id)
        try:
            result = await future
        except asyncio.CancelledError:
            self._request_futures.pop(msg_id, None)  # a late answer is then just an unknown id
            if not self.closed:
                self.notify("$/cancelRequest", CancelRequestParams(id=msg_id))
            raise
        except JsonRpcException as exc:
            raise RequestError(exc.message) from None
        try:
            return msgspec.convert(result, result_type)
        except msgspec.ValidationError as exc:
            raise RequestError(f"invalid {method} result: {exc}") from None

    def connection_closed(self) -> None:
        self.closed = True
        self._rejections.close()
        self._held.clear()
        if self._release is not None:
            self._release.cancel()
        for task in self._catch_ups.values():
            task.cancel()
        self._catch_ups.clear()
        for future in self._request_futures.values():
            if isinstance(future, asyncio.Future):
                future.cancel()  # a request of the client's, still being handled
            elif not future.done():
                future.set_exception(ToolClientGone())  # one of the daemon's own (concurrent.futures)


@functools.cache
def _handlers() -> dict[str, tuple[Callable[..., Any], bool]]:
    """Each method's handler, and whether it is async (imported late: the handlers import this module)."""
    from ._handlers import HANDLERS

    return {method: (handler, inspect.iscoroutinefunction(handler)) for method, handler in HANDLERS.items()}


def _named(exc: Exception) -> str:
    """msgspec's message, with its `$` path rooted at `params`."""
    return str(exc).replace("`$", "`params", 1)


def _from_pygls(message: Any) -> dict[str, Any]:
    """pygls's attrs message objects as plain dicts; internal errors lose their details."""
    out: dict[str, Any] = {"jsonrpc": "2.0"}
    if isinstance(message, ResponseErrorMessage):
        error = message.error
        if error.code == InternalError.code:  # pygls puts a traceback in `data`
            return {**out, "id": message.id, "error": InternalError("the daemon failed to handle this request").to_wire()}
        return {**out, "id": message.id, "error": {"code": error.code, "message": error.message, "data": {"kind": _kind(error.code)}}}
    for field in ("id", "method", "params", "result"):
        if hasattr(message, field):
            out[field] = getattr(message, field)
    return out


def _kind(code: int) -> str:
    cls = REQUEST_ERRORS.get(code)
    return cls.kind if cls else "error"


def create_connection(daemon: Daemon, transport: Transport) -> Connection:
    """A connection with its own pygls server object, over the shared daemon."""
    factory = functools.partial(Connection, daemon=daemon, transport=transport)
    server = JsonRPCServer(protocol_cls=factory, converter_factory=_converter)  # type: ignore[arg-type]
    return server.protocol  # type: ignore[return-value]


@functools.cache
def _converter() -> Any:
    from pygls.protocol import default_converter

    return default_converter()
