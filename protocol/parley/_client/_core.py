"""The client's protocol state, with no IO: shared by the sync and the async client.

A client owns a transport. It hands every message body it receives to
``ClientCore.receive`` and sends what ``data_to_send`` returns; the core keeps
everything else: request ids and their results, one ``ResponseStream`` per
response holding its events in seq order, resubscribing after
``response/lagged`` (or a gap), and the daemon's own requests: a ``tool/execute`` is
routed to the tools of the response it belongs to, or to the client's ``tool_handler``;
a ``tool/approve`` (may an MCP tool call run?) to the client's ``approve`` callback, and
denied at once when it has none. Both are handed to the IO layer to run.
"""

from __future__ import annotations

import functools
import json
from typing import Any, NamedTuple

import msgspec

from .._errors import (
    ConnectionClosed,
    InvalidParams,
    MethodNotFound,
    ParleyError,
    RequestCancelled,
    RequestError,
    request_error_from_wire,
)
from .._methods import CLIENT_REQUESTS
from .._types import (
    AnyEvent,
    CancelRequestParams,
    DoneEvent,
    ErrorEvent,
    LaggedParams,
    ReasoningEvent,
    StartedResult,
    SubscribeParams,
    TextEvent,
    ToolCallArgsEvent,
    ToolCallNameEvent,
    ToolApproveParams,
    ToolApproveResult,
    ToolCallPart,
    ToolExecuteParams,
    ToolExecuteResult,
    ToolResultEvent,
    Usage,
    UsageEvent,
)

RequestId = int | str


#: What the daemon is told when this client has no ``approve`` callback.
NO_APPROVER = "this client was given no approve= callback, so nobody could be asked"


class ToolRequest(NamedTuple):
    """A ``tool/execute`` (or a ``tool/approve``: its params say which) from the daemon, for the IO
    layer to run and ``answer``."""

    id: RequestId
    params: ToolExecuteParams | ToolApproveParams
    #: The tools of the response it belongs to (a ``_base.ToolSet``); None: the client's ``tool_handler`` answers.
    toolbox: Any

_encode = msgspec.json.Encoder().encode


class _EventMessage(msgspec.Struct):
    """A ``response/event`` notification, most of the traffic: decoded in one pass."""

    method: str
    params: AnyEvent


class _Message(msgspec.Struct):
    """Any other message; params and result stay raw until the method is known."""

    id: RequestId | None = None
    method: str | None = None
    params: msgspec.Raw = msgspec.Raw(b"null")
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: dict[str, Any] | None = None


class _EventHeader(msgspec.Struct, rename="camel"):
    """The envelope fields of an event of a type this client does not know yet."""

    response_id: str
    seq: int
    seq_end: int | None = None


_decode_event_message = msgspec.json.Decoder(_EventMessage).decode
_decode_message = msgspec.json.Decoder(_Message).decode


@functools.cache
def _decoder(type: Any) -> Any:
    return msgspec.json.Decoder(type).decode


class ResponseStream:
    """The events of one response, in seq order: no gap, no duplicate."""

    __slots__ = ("response_id", "events", "last_seq", "done", "failure", "claimed", "resyncing")

    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.events: list[AnyEvent] = []
        self.last_seq = 0
        self.done: DoneEvent | None = None
        self.failure: ParleyError | None = None  # the stream can never finish (connection lost)
        self.claimed = False  # a Response object holds it
        self.resyncing = False  # a resubscribe for a gap is under way

    @property
    def status(self) -> str:
        return "running" if self.done is None else self.done.status

    def text(self) -> str:
        return "".join([e.chunk for e in self.events if type(e) is TextEvent])

    def reasoning(self) -> str:
        return "".join([e.chunk for e in self.events if type(e) is ReasoningEvent])

    def usage(self) -> Usage | None:
        """The last ``usage`` event's numbers: the daemon reports the total so far."""
        event = next((e for e in reversed(self.events) if type(e) is UsageEvent), None)
        return None if event is None else Usage(input=event.input, output=event.output, details=event.details)

    def error(self) -> ErrorEvent | None:
        return next((e for e in self.events if type(e) is ErrorEvent), None)

    def tool_calls(self) -> list[ToolCallPart]:
        """The tool calls, assembled from their name and argument chunks, in order of first chunk."""
        calls: dict[str, tuple[list[str], list[str]]] = {}  # id -> (name chunks, argument chunks)
        for e in self.events:
            if isinstance(e, (ToolCallNameEvent, ToolCallArgsEvent)):
                name, args = calls.setdefault(e.tool_call_id, ([], []))
                (name if type(e) is ToolCallNameEvent else args).append(e.chunk)
        return [_tool_call(call_id, "".join(name), "".join(args)) for call_id, (name, args) in calls.items()]

    def tool_result_ids(self) -> set[str]:
        """The ids of the calls whose results are in the stream (run by the daemon's chain)."""
        return {e.tool_call_id for e in self.events if type(e) is ToolResultEvent}


def _tool_call(call_id: str, name: str, raw: str) -> ToolCallPart:
    """As the daemon assembles it: arguments cut off mid-stream are kept raw in provider_metadata."""
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except ValueError:
        arguments = None
    if isinstance(arguments, dict):
        return ToolCallPart(name=name, arguments=arguments, tool_call_id=call_id)
    return ToolCallPart(name=name, tool_call_id=call_id, provider_metadata={"parley": {"partialArguments": raw}})


class ClientCore:
    def __init__(self) -> None:
        self.closed: ConnectionClosed | None = None
        #: Whether a ``tool/execute`` for a response with no toolbox waits in ``tool_requests`` for the
        #: client's ``tool_handler``; when False it is answered -32601 here.
        self.handles_tools = False
        #: Whether a ``tool/approve`` waits in ``tool_requests`` for the client's ``approve`` callback;
        #: when False it is answered ``deny`` here.
        self.approves = False
        #: The daemon's ``tool/execute`` requests, in order, for the IO layer to run and ``answer``.
        self.tool_requests: list[ToolRequest] = []
        #: Ids of requests handed out in ``tool_requests`` that the daemon cancelled (``$/cancelRequest``).
        self.tool_cancels: list[RequestId] = []
        self._toolboxes: dict[str, Any] = {}  # response id -> the tools its tool/execute requests go to
        self._unanswered: set[RequestId] = set()  # tool/execute requests queued or running
        self._next_id = 1
        # id -> (decode, resubscribed stream, toolbox of a prompt or reply)
        self._pending: dict[RequestId, tuple[Any, ResponseStream | None, Any]] = {}
        self._results: dict[RequestId, Any] = {}
        self._streams: dict[str, ResponseStream] = {}
        self._outbox: list[bytes] = []

    # ---- what the client asks for ---------------------------------------------

    def request(self, method: str, params: Any, toolbox: Any = None) -> RequestId:
        """Queue a request; its result becomes available through ``take_result``.

        A ``prompt`` or ``reply`` may carry the toolbox of its tools: from the moment
        its answer arrives, the daemon's ``tool/execute`` for that response go to it.
        """
        return self._request(method, params, None, toolbox)

    def has_result(self, request_id: RequestId) -> bool:
        return request_id in self._results or self.closed is not None

    def take_result(self, request_id: RequestId) -> Any:
        """The result of a request that ``has_result``; an error answer is raised."""
        result = self._results.pop(request_id, self.closed)
        if isinstance(result, ParleyError):
            raise result
        return result

    def abandon(self, request_id: RequestId) -> None:
        """The caller stopped waiting: tell the daemon, and drop the result when it comes."""
        if self._pending.pop(request_id, None) is not None:
            self._notify("$/cancelRequest", {"id": request_id})
        self._results.pop(request_id, None)

    def open_stream(self, response_id: str) -> ResponseStream:
        """The stream of a response this connection is subscribed to, claimed by its Response."""
        stream = self._stream(response_id)
        stream.claimed = True
        if stream.done is not None:
            del self._streams[response_id]
        return stream

    def answer(self, request_id: RequestId, result: ToolExecuteResult | ToolApproveResult | RequestError) -> None:
        """Answer one of the daemon's requests."""
        self._unanswered.discard(request_id)
        if isinstance(result, RequestError):
            self._send({"jsonrpc": "2.0", "id": request_id, "error": result.to_wire()})
        else:
            self._send({"jsonrpc": "2.0", "id": request_id, "result": result})

    def data_to_send(self) -> list[bytes]:
        """The message bodies queued since the last call, in order."""
        out, self._outbox = self._outbox, []
        return out

    # ---- what the daemon sends ------------------------------------------------

    def receive(self, body: bytes) -> None:
        try:
            message = _decode_event_message(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return self._receive_other(body)
        if message.method == "response/event":
            self._receive_event(message.params)
        else:
            self._receive_other(body)

    def _receive_event(self, event: AnyEvent) -> None:
        seq = event.seq
        stream = self._streams.get(event.response_id)
        if stream is None:
            if seq != 1:
                return  # a late duplicate for a response that is done and gone
            stream = self._stream(event.response_id)
        if seq == stream.last_seq + 1:
            stream.events.append(event)
            stream.last_seq = event.last_seq  # a merged delta stands for seq…seqEnd
            if type(event) is DoneEvent:
                stream.done = event
                self._toolboxes.pop(stream.response_id, None)  # no tool/execute comes after done
                if stream.claimed:
                    del self._streams[stream.response_id]
        elif seq > stream.last_seq + 1 and not stream.resyncing:
            stream.resyncing = True
            self._subscribe(stream)
        # else: a duplicate, or past a gap that a resubscribe is already filling

    def _receive_other(self, body: bytes) -> None:
        try:
            message = _decode_message(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return  # not JSON-RPC: nothing can be waiting for it
        if message.method is None:
            self._receive_answer(message)
        elif message.method == "response/event":
            self._skip_event(message.params)
        elif message.method == "response/lagged":
            self._receive_lagged(message.params)
        elif message.method == "$/cancelRequest":
            self._receive_cancel(message.params)
        elif message.id is not None:
            self._receive_request(message.id, message.method, message.params)

    def _receive_lagged(self, raw: msgspec.Raw) -> None:
        """The daemon dropped this connection from a response: subscribe again after what arrived."""
        try:
            params = msgspec.json.decode(raw, type=LaggedParams)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return
        stream = self._stream(params.response_id)
        if stream.done is None:
            self._subscribe(stream)

    def _skip_event(self, raw: msgspec.Raw) -> None:
        """An event of a newer type: count its seq so that it is not taken for a gap."""
        try:
            header = msgspec.json.decode(raw, type=_EventHeader)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return
        stream = self._streams.get(header.response_id)
        if stream is None and header.seq == 1:
            stream = self._stream(header.response_id)
        if stream is not None and header.seq == stream.last_seq + 1:
            stream.last_seq = header.seq_end or header.seq

    def _receive_answer(self, message: _Message) -> None:
        request_id = message.id
        pending = self._pending.pop(request_id, None) if request_id is not None else None
        if request_id is None or pending is None:
            return  # abandoned, or not ours
        decode, resubscribed, toolbox = pending
        if message.error is not None:
            result: Any = request_error_from_wire(message.error)
        else:
            try:
                result = decode(message.result)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                result = ParleyError(f"the daemon sent an invalid result: {exc}")
        if toolbox is not None and isinstance(result, StartedResult):
            stream = self._streams.get(result.response_id)
            if stream is None or stream.done is None:
                self._toolboxes[result.response_id] = toolbox
        if resubscribed is None:
            self._results[request_id] = result
        elif isinstance(result, ParleyError):
            resubscribed.failure = result
        else:
            resubscribed.resyncing = False

    def _receive_request(self, request_id: RequestId, method: str, raw: msgspec.Raw) -> None:
        if method == "tool/approve":
            return self._receive_approve(request_id, raw)
        if method != "tool/execute" or not (self.handles_tools or self._toolboxes):
            return self.answer(request_id, MethodNotFound(f"this client does not handle {method}"))
        try:
            params = msgspec.json.decode(raw, type=ToolExecuteParams)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return self.answer(request_id, InvalidParams(f"invalid tool/execute params: {exc}"))
        toolbox = self._toolboxes.get(params.response_id)
        if toolbox is None and not self.handles_tools:
            return self.answer(request_id, MethodNotFound(f"this client has no tools for response {params.response_id}"))
        self._unanswered.add(request_id)
        self.tool_requests.append(ToolRequest(request_id, params, toolbox))

    def _receive_approve(self, request_id: RequestId, raw: msgspec.Raw) -> None:
        if not self.approves:
            return self.answer(request_id, ToolApproveResult(decision="deny", reason=NO_APPROVER))
        try:
            params = msgspec.json.decode(raw, type=ToolApproveParams)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return self.answer(request_id, InvalidParams(f"invalid tool/approve params: {exc}"))
        self._unanswered.add(request_id)
        self.tool_requests.append(ToolRequest(request_id, params, None))

    def _receive_cancel(self, raw: msgspec.Raw) -> None:
        """The daemon gave up on one of its requests: drop it if it has not started, else tell the IO layer."""
        try:
            request_id = msgspec.json.decode(raw, type=CancelRequestParams).id
        except (msgspec.ValidationError, msgspec.DecodeError):
            return
        if request_id not in self._unanswered:
            return
        queued = next((r for r in self.tool_requests if r.id == request_id), None)
        if queued is not None:
            self.tool_requests.remove(queued)
            self.answer(request_id, RequestCancelled("the daemon cancelled this request"))
        else:
            self.tool_cancels.append(request_id)

    def connection_lost(self, exc: BaseException | None = None) -> None:
        """The connection ended: every wait ends with ``ConnectionClosed``."""
        if self.closed is not None:
            return
        reason = f": {exc}" if exc else ""
        self.closed = ConnectionClosed(f"the connection to the daemon ended{reason}")
        self._pending.clear()
        self._toolboxes.clear()
        for stream in self._streams.values():
            if stream.done is None:
                stream.failure = self.closed

    # ---- helpers --------------------------------------------------------------

    def _stream(self, response_id: str) -> ResponseStream:
        stream = self._streams.get(response_id)
        if stream is None:
            stream = self._streams[response_id] = ResponseStream(response_id)
        return stream

    def _subscribe(self, stream: ResponseStream) -> None:
        """Ask for the events after the last one this client has: the replay fills any gap."""
        params = SubscribeParams(response_id=stream.response_id, after_seq=stream.last_seq)
        self._request("response/subscribe", params, stream, None)

    def _request(self, method: str, params: Any, resubscribed: ResponseStream | None, toolbox: Any) -> RequestId:
        request_id = self._next_id
        self._next_id += 1
        self._pending[request_id] = (_decoder(CLIENT_REQUESTS[method].result), resubscribed, toolbox)
        self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return request_id

    def _notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def _send(self, message: dict[str, Any]) -> None:
        self._outbox.append(_encode(message))
