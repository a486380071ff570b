"""What the sync and async APIs share beyond the core: building params, reading results, running tools.

``Model``/``AsyncModel`` and ``Response``/``AsyncResponse`` subclass the bases
here and add only the IO: each of their methods waits (or awaits) and then
calls into this module.

Running a tool call (``before_call``, the function, ``after_call``) is written once,
as a generator of steps (``tool_steps``): each step is a call to make, the
generator gets back its value or its exception. ``run_steps`` makes the calls
directly; ``run_steps_async`` awaits what they return when it is awaitable, so
async functions and hooks work in the async client.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar

import msgspec

from .. import _serialization
from .._builders import tool_message
from .._errors import ParleyError, ResponseFailed, UnknownModel
from .._options import wire_options
from .._serialization import ResponseData
from .._toolspec import CancelToolCall, Tool, ToolLike, as_tools
from .._types import (
    AnyEvent,
    AnyPart,
    Attachment,
    Message,
    ModelInfo,
    PromptParams,
    ReasoningPart,
    ReplyParams,
    ResponseIdParams,
    ResponseRecord,
    TextPart,
    ToolApproveParams,
    ToolApproveResult,
    ToolCallPart,
    ToolExecuteParams,
    ToolExecuteResult,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from ._core import ResponseStream, ToolRequest

C = TypeVar("C")  # the client class
R = TypeVar("R", bound="BaseResponse[Any]")

#: A message as a struct, or as an ``llm`` MessageDict.
MessageLike = Message | dict[str, Any]
#: What a tool handler gets, and may return (a string, anything JSON-able, or a ToolExecuteResult).
ToolHandler = Callable[[ToolExecuteParams], Any]
#: ``before_call(tool, call)``: runs before each call; raising ``CancelToolCall`` or returning False refuses it.
BeforeCall = Callable[[Tool, ToolCallPart], Any]
#: ``after_call(tool, call, result)``: runs after each call that ran (or failed).
AfterCall = Callable[[Tool, ToolCallPart, ToolResultPart], Any]
#: ``approve(params)``: may this MCP tool call (run by the daemon) go ahead? Returns ``"allow_once"``,
#: ``"allow_always"`` or ``"deny"`` (True: allow once; False or None: deny), or a ToolApproveResult;
#: it may be async in the async client. Raising denies, and the model is told the exception.
Approve = Callable[[ToolApproveParams], Any]

#: ``Model.chain``'s default number of model rounds.
CHAIN_LIMIT = 5


class PromptKwargs(TypedDict, total=False):
    """The keyword arguments of ``Model.prompt`` and ``Model.chain``; any other keyword is a model
    option, as in llm: ``temperature=0.5``, ``max_tokens=100`` (sent as ``maxTokens``)."""

    messages: Sequence[MessageLike]
    system: str
    #: llm's fragments: texts put before the prompt (each on its own line), and before the system prompt.
    fragments: Sequence[str]
    system_fragments: Sequence[str]
    attachments: Sequence[Attachment]
    tools: Sequence[ToolLike]
    options: dict[str, Any]
    #: The ``schema`` option: a JSON schema dict, a msgspec Struct or pydantic model class.
    schema: Any
    #: Taken for llm's sake: a response always streams, and reads the same either way.
    stream: bool
    conversation_id: str
    new_conversation: bool
    hide_reasoning: bool
    chain_limit: int
    before_call: BeforeCall
    after_call: AfterCall
    #: The daemon's MCP servers whose tools the model gets (their calls are approved with ``approve=``).
    mcp_servers: Sequence[str]


class ReplyKwargs(TypedDict, total=False):
    """The keyword arguments of ``Response.reply``: tools, chain limit and hooks default to this response's.
    As for ``prompt``, any other keyword is a model option."""

    messages: Sequence[MessageLike]
    attachments: Sequence[Attachment]
    tool_results: Sequence[ToolResultPart]
    tools: Sequence[ToolLike]
    chain_limit: int
    before_call: BeforeCall
    after_call: AfterCall
    options: dict[str, Any]
    schema: Any
    stream: bool
    model: str
    hide_reasoning: bool
    mcp_servers: Sequence[str]  # not inherited: name them again for each reply that should have them


@dataclass(frozen=True)
class ToolSet:
    """The tools a prompt offered (by name), its chain limit and its hooks; kept by its response."""

    tools: dict[str, Tool]
    chain_limit: int | None = None
    before_call: BeforeCall | None = None
    after_call: AfterCall | None = None

    @property
    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self.tools.values()]


def make_toolbox(
    tools: Sequence[ToolLike] | None,
    chain_limit: int | None,
    before_call: BeforeCall | None,
    after_call: AfterCall | None,
) -> ToolSet | None:
    found = as_tools(tools)
    if found is None:
        return None
    return ToolSet(found, chain_limit, before_call, after_call)


def prompt_request(
    model: str,
    prompt: str | None,
    *,
    messages: Sequence[MessageLike] | None = None,
    system: str | None = None,
    fragments: Sequence[str] | None = None,
    system_fragments: Sequence[str] | None = None,
    attachments: Sequence[Attachment] | None = None,
    tools: Sequence[ToolLike] | None = None,
    options: dict[str, Any] | None = None,
    conversation_id: str | None = None,
    new_conversation: bool = False,
    hide_reasoning: bool = False,
    chain_limit: int | None = None,
    cwd: str | None = None,
    before_call: BeforeCall | None = None,
    after_call: AfterCall | None = None,
    schema: Any = None,
    stream: bool = True,
    mcp_servers: Sequence[str] | None = None,
    **option_keywords: Any,
) -> tuple[PromptParams, ToolSet | None]:
    """The params of a ``prompt``, and the toolbox that answers its ``tool/execute`` requests."""
    toolbox = make_toolbox(tools, chain_limit, before_call, after_call)
    params = PromptParams(
        model=model,
        prompt=_joined(fragments, [] if prompt is None else [prompt], "\n"),
        messages=_messages(messages),
        system=_joined(system_fragments, [] if system is None else [system], "\n\n"),
        attachments=_list(attachments),
        tools=None if toolbox is None else toolbox.specs,
        options=wire_options(options, option_keywords, schema),
        conversation_id=conversation_id,
        new_conversation=new_conversation,
        hide_reasoning=hide_reasoning,
        chain_limit=chain_limit,
        cwd=cwd,
        mcp_servers=_list(mcp_servers),
    )
    return params, toolbox


def _joined(fragments: Sequence[str] | None, text: list[str], separator: str) -> str | None:
    """llm's rule: the fragments, then the prompt's own text; None when there is neither."""
    bits = [*(fragments or []), *text]
    return separator.join(bits) if bits else None


def prompt_params(model: str, prompt: str | None, **kwargs: Any) -> PromptParams:
    return prompt_request(model, prompt, **kwargs)[0]


def select_model(models: list[ModelInfo], name: str | None) -> ModelInfo:
    """The model with this id or alias; with no name, the daemon's default."""
    for info in models:
        if info.default if name is None else (name == info.id or name in info.aliases):
            return info
    raise UnknownModel("the daemon has no default model" if name is None else f"unknown model: {name!r}")


def tool_answer(output: Any) -> ToolExecuteResult:
    """A tool handler's return value as the answer to ``tool/execute``."""
    if isinstance(output, ToolExecuteResult):
        return output
    return ToolExecuteResult(output=tool_output(output))


def tool_output(output: Any) -> str:
    """What a tool returned, as the model gets it: a string as is, anything else as JSON."""
    if isinstance(output, str):
        return output
    return json.dumps(msgspec.to_builtins(output, enc_hook=repr), ensure_ascii=False)


def tool_failure(exc: BaseException) -> ToolExecuteResult:
    """A tool handler's exception, reported to the model rather than failing the response."""
    return ToolExecuteResult(output="", exception=exception_text(exc))


def exception_text(exc: BaseException) -> str:
    """``ValueError: boom``; the type alone when there is no message."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# ---- running tool calls: once, for both clients -----------------------------------

#: A step: a function to call with its arguments; the generator gets back what it returned, or its exception.
Step = tuple[Callable[..., Any], tuple[Any, ...]]
Steps = Generator[Step, Any, ToolResultPart]


def tool_steps(
    toolbox: ToolSet | None,
    call: ToolCallPart,
    *,
    handler: Callable[[], Any] | None = None,
    before_call: BeforeCall | None = None,
    after_call: AfterCall | None = None,
) -> Steps:
    """Run one call: ``before_call`` (which may refuse it), the function, ``after_call``; its result.

    A tool with no Python implementation (a bare ToolSpec), or a call with no
    toolbox at all, goes to ``handler`` (the client's ``tool_handler``). A tool
    that raises gives a result with ``exception`` (``"ValueError: boom"``); an
    exception in a hook propagates.
    """
    result = ToolResultPart(name=call.name, output="", tool_call_id=call.tool_call_id)
    tool = None if toolbox is None else toolbox.tools.get(call.name)
    if toolbox is not None and tool is None:
        result.exception = f"no tool named {call.name!r} was declared"
        return result
    if toolbox is not None:
        before_call = before_call or toolbox.before_call
        after_call = after_call or toolbox.after_call
    if tool is not None and before_call is not None:
        try:
            verdict = yield before_call, (tool, call)
        except CancelToolCall as exc:
            verdict = exc
        if verdict is False or isinstance(verdict, CancelToolCall):
            reason = str(verdict) if isinstance(verdict, CancelToolCall) else ""
            result.exception = "cancelled by before_call" + (f": {reason}" if reason else "")
            return result
    try:
        if tool is not None and tool.implementation is not None:
            output = yield tool.call, (call.arguments,)
        elif handler is not None:
            output = yield handler, ()
        else:
            raise TypeError(f"tool {call.name!r} has no implementation in this client (and no tool_handler is set)")
    except Exception as exc:
        result.exception = exception_text(exc)
    else:
        answer = tool_answer(output)
        result.output, result.exception = answer.output, answer.exception
    if tool is not None and after_call is not None:
        yield after_call, (tool, call, result)
    return result


def run_steps(steps: Steps) -> ToolResultPart:
    """Drive ``tool_steps`` in the blocking client: an async function or hook is an error here."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            function, args = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = function(*args)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError(f"{_name(function)} is async: use parley.connect_async() to run it")
        except Exception as exc:
            error = exc


async def run_steps_async(steps: Steps) -> ToolResultPart:
    """Drive ``tool_steps`` in the async client, awaiting what a function or hook returns when it is awaitable."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            function, args = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = function(*args)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            error = exc


def _name(function: Callable[..., Any]) -> str:
    owner = getattr(function, "__self__", None)
    if isinstance(owner, Tool):
        return f"tool {owner.name!r}"
    return getattr(function, "__qualname__", repr(function))


def request_steps(request: ToolRequest, handler: ToolHandler | None) -> Steps:
    """The steps that answer one of the daemon's ``tool/execute`` requests."""
    params = request.params
    call = ToolCallPart(name=params.name, arguments=params.arguments, tool_call_id=params.tool_call_id)
    return tool_steps(request.toolbox, call, handler=None if handler is None else _bind(handler, params))


def execute_result(result: ToolResultPart) -> ToolExecuteResult:
    return ToolExecuteResult(output=result.output, exception=result.exception)


def approve_result(verdict: Any) -> ToolApproveResult:
    """What an ``approve`` callback returned, as the answer to ``tool/approve``."""
    if isinstance(verdict, ToolApproveResult):
        return verdict
    if verdict is True:
        return ToolApproveResult(decision="allow_once")
    if verdict in ("allow_once", "allow_always", "deny"):
        return ToolApproveResult(decision=verdict)
    if verdict is False or verdict is None:
        return ToolApproveResult(decision="deny")
    raise TypeError(f"approve= returned {verdict!r}: expected 'allow_once', 'allow_always', 'deny' or a bool")


def approve_failure(exc: BaseException) -> ToolApproveResult:
    return ToolApproveResult(decision="deny", reason=f"approve= raised {exception_text(exc)}")


def _messages(messages: Sequence[MessageLike] | None) -> list[Message] | None:
    if messages is None:
        return None
    return [m if isinstance(m, Message) else _serialization.from_dict(m, Message) for m in messages]


def _list(items: Sequence[Any] | None) -> list[Any] | None:
    return None if items is None else list(items)


class BaseModel(Generic[C]):
    def __init__(self, client: C, info: ModelInfo) -> None:
        self._client = client
        self.info = info
        self.model_id = info.id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id!r}>"


class BaseResponse(Generic[C]):
    """A response: live (streaming from the daemon), or detached (from ``from_dict``)."""

    def __init__(
        self,
        client: C | None,
        *,
        id: str | None,
        conversation_id: str | None,
        model: str,
        stream: ResponseStream | None = None,
        data: ResponseData | None = None,
        toolbox: ToolSet | None = None,
    ) -> None:
        self._client = client
        self.id = id
        self.conversation_id = conversation_id
        #: The id of the model that was asked for.
        self.model = model
        self._stream = stream  # None for a detached response
        self._data = data  # the stored response: fetched after it is done, or given to from_dict
        self._record: ResponseRecord | None = None  # what the daemon sent for it, when fetched
        self._toolbox = toolbox  # the tools it was given, with their chain limit and hooks
        self._executed: dict[str, ToolResultPart] = {}  # results of calls run here, by call key

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any], client: Any = None) -> R:
        """A detached response from ``to_dict()``'s output (or ``llm``'s ``Response.to_dict()``).

        With a ``client``, ``reply()`` works: it sends the whole chain as a new prompt.
        """
        saved = _serialization.from_dict(data, ResponseData)
        return cls(client, id=saved.id, conversation_id=None, model=saved.model, data=saved)

    @property
    def status(self) -> str:
        """``running``, then the ``done`` event's status; ``completed`` for a detached response."""
        return "completed" if self._stream is None else self._stream.status

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} model={self.model!r} status={self.status!r}>"

    # ---- reading what arrived -----------------------------------------------------

    def _running(self) -> bool:
        """Whether more events are to come; raises when they never will."""
        stream = self._stream
        if stream is None or stream.done is not None:
            return False
        if stream.failure is not None:
            raise stream.failure
        return True

    def _unseen(self, seen: int) -> list[AnyEvent] | None:
        """The events after the first ``seen``: [] when more must be read first, None at the end."""
        stream = self._stream
        if stream is None:
            return None
        if seen < len(stream.events):
            return stream.events[seen:]
        return [] if self._running() else None

    def _text(self) -> str:
        if self._stream is None:
            return "".join(p.text for p in self._parts(TextPart))
        self._raise_if_failed()
        return self._stream.text()

    def _reasoning(self) -> str:
        if self._stream is None:
            return "".join(p.text for p in self._parts(ReasoningPart))
        return self._stream.reasoning()

    def _usage(self) -> Usage:
        """As in llm, a ``Usage`` even when the model reported none (its counts are then None)."""
        usage = self._data.usage if self._stream is None else self._stream.usage()  # type: ignore[union-attr]
        return usage or Usage()

    def _tool_calls(self) -> list[ToolCallPart]:
        return self._parts(ToolCallPart) if self._stream is None else self._stream.tool_calls()

    def _pending_tool_calls(self) -> list[tuple[str, ToolCallPart]]:
        """The calls with no result in the response (the daemon's chain ran the others), by key."""
        if self._stream is None:
            answered = {p.tool_call_id for p in self._parts(ToolResultPart)}
        else:
            answered = self._stream.tool_result_ids()
        calls = enumerate(self._tool_calls())
        return [(c.tool_call_id or f"#{i}", c) for i, c in calls if c.tool_call_id is None or c.tool_call_id not in answered]

    def _tool_runs(self, before_call: BeforeCall | None, after_call: AfterCall | None) -> list[tuple[str, Steps | None]]:
        """For each pending call, its key and the steps that run it (None: it already ran here)."""
        handler = getattr(self._client, "tool_handler", None)
        toolbox = self._toolbox if self._toolbox is not None or handler is not None else ToolSet({})
        runs: list[tuple[str, Steps | None]] = []
        for key, call in self._pending_tool_calls():
            if key in self._executed:
                runs.append((key, None))
                continue
            fallback = None
            if handler is not None:
                params = ToolExecuteParams(response_id=self.id or "", tool_call_id=call.tool_call_id or "", name=call.name, arguments=call.arguments)
                fallback = _bind(handler, params)
            runs.append((key, tool_steps(toolbox, call, handler=fallback, before_call=before_call, after_call=after_call)))
        return runs

    def _runs_on_reply(self, kwargs: dict[str, Any]) -> bool:
        """Whether ``reply`` runs the pending calls first: tools known, no results given, a completed response."""
        return self._toolbox is not None and "tool_results" not in kwargs and self.status == "completed"

    def _parts(self, cls: type[AnyPart]) -> list[Any]:
        return [p for m in self._data.messages for p in m.parts if isinstance(p, cls)]  # type: ignore[union-attr]

    def _raise_if_failed(self) -> None:
        error = self._stream.error() if self._stream is not None else None
        if error is not None:
            raise ResponseFailed(error.code, error.message, retryable=error.retryable, retry_after=error.retry_after)

    def _live(self) -> tuple[C, ResponseIdParams]:
        """The client, and the params that name this response to the daemon."""
        if self._stream is None or self._client is None:
            raise ParleyError("this response came from from_dict: it is not running")
        return self._client, ResponseIdParams(response_id=self._stream.response_id)

    # ---- replying -----------------------------------------------------------------

    def _reply_client(self) -> C:
        if self._client is None:
            raise ParleyError("to reply to a response from from_dict, pass client= to from_dict")
        return self._client

    def _reply_request(self, prompt: str | None, **kwargs: Any) -> tuple[C, str, PromptParams | ReplyParams]:
        """The client, method and params of a reply."""
        client, method, params, _ = self._reply_start(prompt, **kwargs)
        return client, method, params

    def _reply_start(
        self,
        prompt: str | None,
        *,
        messages: Sequence[MessageLike] | None = None,
        attachments: Sequence[Attachment] | None = None,
        tool_results: Sequence[ToolResultPart] | None = None,
        tools: Sequence[ToolLike] | None = None,
        chain_limit: int | None = None,
        before_call: BeforeCall | None = None,
        after_call: AfterCall | None = None,
        options: dict[str, Any] | None = None,
        model: str | None = None,
        hide_reasoning: bool = False,
        schema: Any = None,
        stream: bool = True,
        mcp_servers: Sequence[str] | None = None,
        **option_keywords: Any,
    ) -> tuple[C, str, PromptParams | ReplyParams, ToolSet | None]:
        """The client, method, params and toolbox of a reply.

        The tools, chain limit and hooks are this response's unless given. The
        tools are sent again: the daemon would carry their specs to the reply,
        but their functions run here, in this toolbox. A live response is
        replied to by id; a detached one has no id the daemon must know, so its
        whole chain is sent as a new prompt, as the daemon would build it:
        prompt messages, output, tool results, messages, then the new user message.
        """
        client = self._reply_client()
        options = wire_options(options, option_keywords, schema)
        toolbox = self._toolbox
        if tools is not None or chain_limit is not None or before_call is not None or after_call is not None:
            inherited = toolbox or ToolSet({})
            toolbox = make_toolbox(
                list(inherited.tools.values()) if tools is None else tools,
                chain_limit if chain_limit is not None else inherited.chain_limit,
                before_call or inherited.before_call,
                after_call or inherited.after_call,
            )
        if toolbox is not None:
            chain_limit = toolbox.chain_limit
        specs = None if toolbox is None else toolbox.specs
        if self._stream is not None:
            params: PromptParams | ReplyParams = ReplyParams(
                response_id=self.id,  # type: ignore[arg-type]
                prompt=prompt,
                messages=_messages(messages),
                attachments=_list(attachments),
                tool_results=_list(tool_results),
                tools=specs,
                chain_limit=chain_limit,
                options=options,
                model=model,
                hide_reasoning=hide_reasoning,
                mcp_servers=_list(mcp_servers),
            )
            return client, "reply", params, toolbox
        data = self._data
        assert data is not None
        chain = data.prompt.messages + data.messages
        if tool_results:
            chain.append(tool_message(*tool_results))
        params = PromptParams(
            model=model or data.model,
            prompt=prompt,
            messages=chain + (_messages(messages) or []),
            attachments=_list(attachments),
            system=data.prompt.system,
            tools=specs,
            chain_limit=chain_limit,
            options=options if options is not None else data.prompt.options,
            hide_reasoning=hide_reasoning,
            mcp_servers=_list(mcp_servers),
        )
        return client, "prompt", params, toolbox


def _bind(handler: ToolHandler, params: ToolExecuteParams) -> Callable[[], Any]:
    return lambda: handler(params)
