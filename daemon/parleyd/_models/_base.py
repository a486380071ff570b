"""What a model is to the daemon: something that turns a request into a stream of events."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from parley._types import (
    AnyEvent,
    Message,
    ModelCapabilities,
    ModelInfo,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)

if TYPE_CHECKING:
    from ._worker import Worker


class NoOptions(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """The options of a model that takes none: any option is an error naming it."""


@dataclass
class ModelRequest:
    """Everything a model needs for one round: the whole input chain, ready to send."""

    messages: list[Message]
    system: str | None = None
    options: Any = None  # an instance of the model's ``Options`` struct
    tools: list[ToolSpec] = field(default_factory=list)


class ModelFailure(Exception):
    """A model's own failure, sent to clients as an ``error`` event of ``kind``."""

    def __init__(self, kind: str, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


class Model(abc.ABC):
    """A model the daemon can run. Subclasses yield events without seq or indices:
    the daemon stamps those. Yielding an ``ErrorEvent`` ends the response with status error."""

    Options: ClassVar[type[msgspec.Struct]] = NoOptions
    provider: ClassVar[str]
    capabilities: ClassVar[ModelCapabilities]
    worker: Worker | None = None  # the process that runs a model's native code, if it has one
    context_window: int | None = None  # tokens of input and output together; None: not known

    def __init__(self, model_id: str, aliases: list[str] | None = None) -> None:
        self.id = model_id
        self.aliases = aliases or []

    def parse_options(self, options: dict[str, Any]) -> Any:
        """A request's options as this model takes them (``ModelRequest.options``); a
        ``msgspec.ValidationError`` or ``ValueError`` names a wrong one."""
        return msgspec.convert(options, self.Options)

    @abc.abstractmethod
    def stream(self, request: ModelRequest) -> AsyncIterator[AnyEvent]:
        """The events of one round; cancellation arrives as CancelledError at an await."""

    def count_tokens(self, request: ModelRequest) -> int:
        """The tokens ``request`` would be as input: an estimate, one token per four characters of
        its text (messages, tool calls and results, system, tool specs), the rule of thumb for
        English; attachments are not counted. A model that knows its tokenizer overrides this."""
        chars = len(request.system or "") + sum(len(msgspec.json.encode(tool)) for tool in request.tools)
        for message in request.messages:
            for part in message.parts:
                if isinstance(part, TextPart | ReasoningPart):
                    chars += len(part.text)
                elif isinstance(part, ToolCallPart):
                    chars += len(part.name) + len(msgspec.json.encode(part.arguments))
                elif isinstance(part, ToolResultPart):
                    chars += len(part.output) + len(part.exception or "")
        return (chars + 3) // 4

    def info(self, *, default: bool) -> ModelInfo:
        return ModelInfo(
            id=self.id,
            provider=self.provider,
            aliases=self.aliases,
            default=default,
            capabilities=self.capabilities,
            context_window=self.context_window,
        )
