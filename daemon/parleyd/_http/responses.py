"""``/v1/responses``: OpenAI's Responses API over the daemon's ``prompt``, ``reply`` and store.

parley's response ids are the API's. A request with ``previous_response_id`` is a ``reply``
to that stored response (after its whole chain, in its conversation); one without is a
``prompt`` whose messages are its ``input``, so a client that re-sends its whole input each
turn continues one stored conversation too. ``GET`` rebuilds a response from the store (a
running one from the daemon), ``DELETE`` removes it (cancelled first if it runs), and
``input_items`` lists what it was given: its whole history, newest first unless
``order=asc``. Item shapes: ``_response_items``.

Served: ``input`` as text or items (messages of every role, with text and images; function
calls and their outputs; reasoning, in either of its forms), ``instructions`` (the system
prompt), function ``tools`` and ``tool_choice``, ``max_output_tokens``, ``temperature``,
``top_p``, ``text.format`` ``json_schema``/``json_object`` (the model's ``schema`` option),
streaming. Accepted and only repeated in the answer, as parley cannot honour them: ``store``
(parley stores every response), ``reasoning``, ``parallel_tool_calls``, ``truncation``,
``include``, ``metadata`` (not stored: a retrieved response has none). With
``previous_response_id`` the chain's own system prompt goes on (a reply keeps its parent's)
and ``instructions`` are ignored. Refused with a 400 that says so: hosted tools (web search, file search…), other
item kinds (``item_reference``…), input files, ``background``, ``GET ?stream=true``.

A response that fails before its first output answers with its error's HTTP status; one
that fails later has ``status: "failed"`` and its ``error`` (a 200, or ``response.failed``
ending the stream; one cancelled elsewhere ends it so too, with ``status: "cancelled"``).
A client that disconnects mid-stream cancels the response; its partial output is kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from parley._errors import RequestError
from parley._types import (
    AnyEvent,
    Message,
    PromptParams,
    ReasoningEvent,
    ReplyParams,
    TextEvent,
    ToolCallArgsEvent,
    ToolCallNameEvent,
    ToolCallPart,
    ToolSpec,
)

from ._errors import HttpError, openai_error
from ._parts import output_schema, tool_spec
from ._response_items import (
    InputItem,
    function_call_item,
    input_items as items_given,
    input_messages,
    item_id,
    message_item,
    output_text,
    reasoning_item,
    reasoning_text,
    response_object,
)
from ._tool_calls import ToolCall, ToolCalls
from ._turn import Turn, prompt, read_body, reply

if TYPE_CHECKING:
    from .._daemon import Daemon
    from .._models import ModelRegistry


class _Tool(msgspec.Struct, omit_defaults=True):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ResponsesRequest(msgspec.Struct):
    """The fields parley reads; others (``user``, ``service_tier``…) are ignored."""

    model: str | None = None
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    stream: bool = False
    tools: list[_Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: dict[str, Any] | None = None
    background: bool = False
    # accepted, repeated in the answer, not acted on
    store: bool | None = None
    parallel_tool_calls: bool | None = None
    reasoning: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    truncation: str | None = None
    include: list[str] | None = None


class _ListQuery(msgspec.Struct):
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None


_decode = msgspec.json.Decoder(ResponsesRequest).decode
_encode = msgspec.json.encode


async def create(request: Request) -> Response:
    daemon: Daemon = request.app.state.daemon
    try:
        body = await read_body(request, _decode)
        if body.background:
            raise HttpError.unsupported("background responses are not served: parley answers while the request is open")
        if body.previous_response_id is None:
            turn = await prompt(request, _prompt_params(body, daemon.models))
        else:
            turn = await reply(request, _reply_params(body, daemon))
    except HttpError as exc:
        return openai_error(exc)
    given = _repeated(body)
    if body.stream:
        return StreamingResponse(turn.guarded(_stream(turn, given)), media_type="text/event-stream")
    async for _ in turn:
        pass
    return JSONResponse(response_object(turn.live.record(), request=given))


async def retrieve(request: Request) -> Response:
    if request.query_params.get("stream", "").lower() == "true":
        return openai_error(HttpError.unsupported("streaming a response again (stream=true) is not served"))
    try:
        record = request.app.state.daemon.record(request.path_params["response_id"])
    except RequestError as exc:
        return openai_error(HttpError.from_request(exc))
    return JSONResponse(response_object(record))


async def delete(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    try:
        await request.app.state.daemon.delete_response(response_id)
    except RequestError as exc:
        return openai_error(HttpError.from_request(exc))
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


async def input_items(request: Request) -> Response:
    """A page of the response's input items, as OpenAI's ``list`` with its cursor (``after``)."""
    try:
        query = msgspec.convert(dict(request.query_params), _ListQuery, strict=False)
        record = request.app.state.daemon.record(request.path_params["response_id"])
    except msgspec.ValidationError as exc:
        return openai_error(HttpError.bad_request(f"invalid query: {exc}"))
    except RequestError as exc:
        return openai_error(HttpError.from_request(exc))
    items = items_given(record)
    if query.order == "desc":
        items.reverse()
    ids = [item["id"] for item in items]
    if query.after is not None and query.after not in ids:
        return openai_error(HttpError.bad_request(f"`after`: no input item {query.after!r} in response {record.id!r}"))
    start = 0 if query.after is None else ids.index(query.after) + 1
    page = items[start : start + query.limit]
    first, last = (page[0]["id"], page[-1]["id"]) if page else ("", "")
    return JSONResponse({"object": "list", "data": page, "first_id": first, "last_id": last, "has_more": start + query.limit < len(items)})


# ---- the request -----------------------------------------------------------------------


def _prompt_params(body: ResponsesRequest, models: ModelRegistry) -> PromptParams:
    messages = _input(body, {})
    options = _options(body, models)
    return PromptParams(model=body.model, messages=messages, system=body.instructions, options=options or None, tools=_tools(body) or None)


def _reply_params(body: ResponsesRequest, daemon: Daemon) -> ReplyParams:
    """A reply to ``previous_response_id``: its leading function call outputs are the tool results."""
    assert body.previous_response_id is not None
    try:
        parent = daemon.record(body.previous_response_id)
    except RequestError as exc:
        raise HttpError.from_request(exc) from None
    chain = parent.prompt.messages + parent.messages
    calls = {p.tool_call_id: p.name for m in chain for p in m.parts if isinstance(p, ToolCallPart) and p.tool_call_id}
    messages = _input(body, calls)
    results = messages.pop(0).parts if messages and messages[0].role == "tool" else None
    return ReplyParams(
        response_id=body.previous_response_id,
        model=body.model,
        messages=messages or None,
        tool_results=results,  # type: ignore[arg-type]  # a tool message's parts are results
        tools=_tools(body),  # [] rather than None, as options: the API carries no tools to the next response
        options=_options(body, daemon.models),  # {} rather than None: the parent's options are not the API's to keep
    )


def _input(body: ResponsesRequest, calls: dict[str, str]) -> list[Message]:
    """The messages of ``input``: a text is a user message."""
    items = [InputItem(role="user", content=body.input)] if isinstance(body.input, str) else body.input
    if not items:
        raise HttpError.bad_request("`input` is needed, and must not be empty")
    return input_messages(items, calls)


def _options(body: ResponsesRequest, models: ModelRegistry) -> dict[str, Any]:
    options = {
        "maxTokens": body.max_output_tokens,
        "temperature": body.temperature,
        "topP": body.top_p,
        "toolChoice": _tool_choice(body.tool_choice),
        "schema": output_schema(body.model, (body.text or {}).get("format"), models),
    }
    return {k: v for k, v in options.items() if v is not None}


def _tool_choice(choice: str | dict[str, Any] | None) -> str | None:
    """The ``toolChoice`` option; none for ``auto``, every model's default (echo takes no options)."""
    if choice is None or isinstance(choice, str):
        return None if choice == "auto" else choice
    if choice.get("type") == "function":
        return str(choice.get("name", ""))
    raise HttpError.unsupported(f"tool_choice of type {choice.get('type')!r} is not served: parley offers function tools only")


def _tools(body: ResponsesRequest) -> list[ToolSpec]:
    specs = []
    for tool in body.tools or []:
        if tool.type != "function":
            raise HttpError.unsupported(f"tools of type {tool.type!r} are not served: parley offers the model function tools only")
        if not tool.name:
            raise HttpError.bad_request("a function tool needs its `name`")
        specs.append(tool_spec(tool.name, tool.description, tool.parameters or None))
    return specs


def _repeated(body: ResponsesRequest) -> dict[str, Any]:
    """What the response object repeats of the request, beyond what the store keeps."""
    fields = {
        "tools": [msgspec.to_builtins(tool) for tool in body.tools or []],
        "tool_choice": body.tool_choice,
        "parallel_tool_calls": body.parallel_tool_calls,
        "previous_response_id": body.previous_response_id,
        "text": body.text,
        "reasoning": body.reasoning,
        "metadata": body.metadata,
        "store": body.store,
        "truncation": body.truncation,
    }
    return {k: v for k, v in fields.items() if v is not None}


# ---- the stream --------------------------------------------------------------------------

#: The event that ends a stream, by the response's status (any other: ``response.failed``).
_END = {"completed": "response.completed", "incomplete": "response.incomplete"}
#: The response as the stream's first events show it, however far it ran before the stream began.
_STARTED = {"status": "in_progress", "output": [], "usage": None, "error": None, "incomplete_details": None}


@dataclass
class _Item:
    id: str
    kind: str  # "message", "reasoning" or "function_call"
    index: int  # its output_index
    chunks: list[str] = field(default_factory=list)  # a text's or reasoning's
    call: ToolCall | None = None  # a function call's
    done: dict[str, Any] | None = None  # the item as its output_item.done gave it


class _Stream:
    """One response's SSE events, numbered from 0: every output item is added, filled and done
    once. A text or reasoning item is done when the next item begins; function calls (whose
    arguments may interleave) when the response ends."""

    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.seq = 0
        self.items: list[_Item] = []
        self._parts: dict[tuple[int, int], _Item] = {}  # text and reasoning items by their part's place
        self._writing: _Item | None = None  # the text or reasoning item not yet done
        self._tools = ToolCalls()
        self._calls: dict[str, _Item] = {}

    def send(self, kind: str, **fields: Any) -> bytes:
        data = _encode({"type": kind, "sequence_number": self.seq, **fields})
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

    def take(self, event: AnyEvent) -> list[bytes]:
        """The SSE events of one of the response's events."""
        if isinstance(event, TextEvent | ReasoningEvent):
            out: list[bytes] = []
            place = (event.message_index, event.part_index)
            item = self._parts.get(place)
            if item is None:
                item, out = self._begin("message" if isinstance(event, TextEvent) else "reasoning", place)
                self._parts[place] = self._writing = item
            item.chunks.append(event.chunk)
            kind = "response.output_text.delta" if item.kind == "message" else "response.reasoning_text.delta"
            extra = {"logprobs": []} if item.kind == "message" else {}
            return [*out, self.send(kind, item_id=item.id, output_index=item.index, content_index=0, delta=event.chunk, **extra)]
        if isinstance(event, ToolCallNameEvent | ToolCallArgsEvent):
            began = isinstance(event, ToolCallNameEvent) and event.tool_call_id not in self._tools
            call = self._tools.add(event)
            if call is None:
                return []  # the provider's own call
            if began:
                item, out = self._begin("function_call", (event.message_index, event.part_index), call)
                self._calls[call.id] = item
                return out
            if isinstance(event, ToolCallArgsEvent):
                item = self._calls[call.id]
                return [self.send("response.function_call_arguments.delta", item_id=item.id, output_index=item.index, delta=event.chunk)]
        return []  # usage is in the final response; results and attachments are not the client's

    def _begin(self, kind: str, place: tuple[int, int], call: ToolCall | None = None) -> tuple[_Item, list[bytes]]:
        """A new output item, after the one being written is done."""
        out = self._finish(self._writing, "completed") if self._writing else []
        self._writing = None
        prefix = {"message": "msg", "reasoning": "rs", "function_call": "fc"}[kind]
        item = _Item(item_id(prefix, self.response_id, *place), kind, len(self.items), call=call)
        self.items.append(item)
        if call is not None:
            added = function_call_item(item.id, "in_progress", call.id, call.name, "")
            return item, [*out, self.send("response.output_item.added", output_index=item.index, item=added)]
        make, part = (message_item, output_text("")) if kind == "message" else (reasoning_item, reasoning_text(""))
        out.append(self.send("response.output_item.added", output_index=item.index, item=make(item.id, "in_progress", [])))
        out.append(self.send("response.content_part.added", item_id=item.id, output_index=item.index, content_index=0, part=part))
        return item, out

    def _finish(self, item: _Item, status: str) -> list[bytes]:
        text = "".join(item.chunks)
        where = {"item_id": item.id, "output_index": item.index}
        if item.call is not None:
            call = item.call
            item.done = function_call_item(item.id, status, call.id, call.name, call.arguments)
            out = [self.send("response.function_call_arguments.done", **where, arguments=call.arguments)]
        elif item.kind == "message":
            item.done = message_item(item.id, status, [text])
            out = [
                self.send("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                self.send("response.content_part.done", **where, content_index=0, part=output_text(text)),
            ]
        else:
            item.done = reasoning_item(item.id, status, [text])
            out = [
                self.send("response.reasoning_text.done", **where, content_index=0, text=text),
                self.send("response.content_part.done", **where, content_index=0, part=reasoning_text(text)),
            ]
        return [*out, self.send("response.output_item.done", output_index=item.index, item=item.done)]

    def end(self, final: dict[str, Any]) -> list[bytes]:
        """Every item still open done (incomplete, if the response did not complete), then the last event."""
        out: list[bytes] = []
        for item in self.items:
            if item.done is None:
                out += self._finish(item, "completed" if final["status"] == "completed" else "incomplete")
        final["output"] = [item.done for item in self.items]
        return [*out, self.send(_END.get(final["status"], "response.failed"), response=final)]


async def _stream(turn: Turn, given: dict[str, Any]) -> AsyncIterator[bytes]:
    sse = _Stream(turn.id)
    start = response_object(turn.live.record(), output=[], request=given) | _STARTED
    yield sse.send("response.created", response=start)
    yield sse.send("response.in_progress", response=start)
    async for event in turn:
        for chunk in sse.take(event):
            yield chunk
    for chunk in sse.end(response_object(turn.live.record(), request=given)):
        yield chunk
