"""What the sync and async APIs share beyond the core: building params and reading results.

``Model``/``AsyncModel`` and ``Response``/``AsyncResponse`` subclass the bases
here and add only the IO: each of their methods waits (or awaits) and then
calls into this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypedDict, TypeVar

from .. import _serialization
from .._builders import tool_message
from .._errors import ParleyError, ResponseFailed, UnknownModel
from .._serialization import ResponseData
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
    TextPart,
    ToolCallPart,
    ToolExecuteParams,
    ToolExecuteResult,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from ._core import ResponseStream

C = TypeVar("C")  # the client class
R = TypeVar("R", bound="BaseResponse[Any]")

#: A message as a struct, or as an ``llm`` MessageDict.
MessageLike = Message | dict[str, Any]
#: What a tool handler gets, and may return (a string, anything JSON-able, or a ToolExecuteResult).
ToolHandler = Callable[[ToolExecuteParams], Any]


class PromptKwargs(TypedDict, total=False):
    """The keyword arguments of ``Model.prompt``."""

    messages: Sequence[MessageLike]
    system: str
    attachments: Sequence[Attachment]
    tools: Sequence[ToolSpec]
    options: dict[str, Any]
    conversation_id: str
    hide_reasoning: bool
    chain_limit: int


class ReplyKwargs(TypedDict, total=False):
    """The keyword arguments of ``Response.reply``."""

    messages: Sequence[MessageLike]
    attachments: Sequence[Attachment]
    tool_results: Sequence[ToolResultPart]
    options: dict[str, Any]
    model: str
    hide_reasoning: bool


def prompt_params(
    model: str,
    prompt: str | None,
    *,
    messages: Sequence[MessageLike] | None = None,
    system: str | None = None,
    attachments: Sequence[Attachment] | None = None,
    tools: Sequence[ToolSpec] | None = None,
    options: dict[str, Any] | None = None,
    conversation_id: str | None = None,
    hide_reasoning: bool = False,
    chain_limit: int | None = None,
) -> PromptParams:
    return PromptParams(
        model=model,
        prompt=prompt,
        messages=_messages(messages),
        system=system,
        attachments=_list(attachments),
        tools=_list(tools),
        options=options,
        conversation_id=conversation_id,
        hide_reasoning=hide_reasoning,
        chain_limit=chain_limit,
    )


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
    return ToolExecuteResult(output=output if isinstance(output, str) else json.dumps(output, default=str))


def tool_failure(exc: Exception) -> ToolExecuteResult:
    """A tool handler's exception, reported to the model rather than failing the response."""
    return ToolExecuteResult(output="", exception=str(exc) or type(exc).__name__)


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
    ) -> None:
        self._client = client
        self.id = id
        self.conversation_id = conversation_id
        #: The id of the model that was asked for.
        self.model = model
        self._stream = stream  # None for a detached response
        self._data = data  # the stored response: fetched after it is done, or given to from_dict

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

    def _usage(self) -> Usage | None:
        return self._data.usage if self._stream is None else self._stream.usage()  # type: ignore[union-attr]

    def _tool_calls(self) -> list[ToolCallPart]:
        return self._parts(ToolCallPart) if self._stream is None else self._stream.tool_calls()

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

    def _reply_request(
        self,
        prompt: str | None,
        *,
        messages: Sequence[MessageLike] | None = None,
        attachments: Sequence[Attachment] | None = None,
        tool_results: Sequence[ToolResultPart] | None = None,
        options: dict[str, Any] | None = None,
        model: str | None = None,
        hide_reasoning: bool = False,
    ) -> tuple[C, str, PromptParams | ReplyParams]:
        """The client, method and params of a reply.

        A live response is replied to by id; a detached one has no id the daemon
        must know, so its whole chain is sent as a new prompt, as the daemon
        would build it: prompt messages, output, tool results, messages, then
        the new user message.
        """
        if self._client is None:
            raise ParleyError("to reply to a response from from_dict, pass client= to from_dict")
        if self._stream is not None:
            params: PromptParams | ReplyParams = ReplyParams(
                response_id=self.id,  # type: ignore[arg-type]
                prompt=prompt,
                messages=_messages(messages),
                attachments=_list(attachments),
                tool_results=_list(tool_results),
                options=options,
                model=model,
                hide_reasoning=hide_reasoning,
            )
            return self._client, "reply", params
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
            options=options if options is not None else data.prompt.options,
            hide_reasoning=hide_reasoning,
        )
        return self._client, "prompt", params
