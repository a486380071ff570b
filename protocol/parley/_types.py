"""The wire contract of protocol v1: every shape that crosses a connection.

Python names are snake_case; on the wire every field is camelCase (``rename``).
Inputs (params, messages) reject unknown fields so that a typo is a -32602
naming the field instead of a silent drop; outputs (results, events) are
decoded leniently by clients so that a newer daemon can add fields.
"""

from __future__ import annotations

import base64
import os
from typing import Annotated, Any, Literal, Union

import msgspec

PROTOCOL_VERSION = 1

Role = Literal["system", "user", "assistant", "tool"]
ResponseStatus = Literal["running", "completed", "cancelled", "error", "interrupted"]
DoneStatus = Literal["completed", "cancelled", "error"]

#: Why a response ended (``DoneEvent.finish_reason``, ``ResponseRecord.finish_reason``), with its
#: meaning. A string on the wire, not an enum, so that a later daemon may add one: a client treats
#: a reason it does not know by the ``done`` status.
FINISH_REASONS: dict[str, str] = {
    "stop": "the model ended its answer (status completed)",
    "length": "the token limit (the maxTokens option, or the model's context) cut the answer (status completed)",
    "tool_calls": "the answer ends with tool calls for the client to run and reply to (status completed)",
    "chain_limit": "a tool chain ran chainLimit rounds and the last one still called tools (status completed)",
    "cancelled": "response/cancel or conversations/delete stopped it (status cancelled)",
    "error": "the model or the daemon failed: an error event came before done (status error)",
    "interrupted": "the daemon stopped or crashed while it ran (done status error, record status interrupted)",
}


class Input(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    """Base of every shape a client sends."""


class Output(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Base of every shape the daemon sends."""


# ---- messages and parts ------------------------------------------------------


class _AttachmentMeta(type(msgspec.Struct)):  # type: ignore[misc]
    """``Attachment(...)`` takes llm's keywords too: ``type=`` for ``mime_type``, ``content=`` as bytes.

    Only the constructor changes (a Struct cannot define ``__init__``); decoding is msgspec's.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "type" in kwargs:
            if kwargs.get("mime_type") is not None:
                raise TypeError("an attachment takes one of `type` (llm's name) and `mime_type`")
            kwargs["mime_type"] = kwargs.pop("type")
        if isinstance(kwargs.get("content"), bytes | bytearray | memoryview):
            kwargs["content"] = base64.b64encode(kwargs["content"]).decode()
        return super().__call__(*args, **kwargs)


# Constructed as llm's too: Attachment(path="photo.jpg"), Attachment(content=b"...", type="image/png").
class Attachment(Input, metaclass=_AttachmentMeta):
    """An image, audio clip or document: exactly one of url, path or content (base64)."""

    mime_type: str | None = None
    url: str | None = None
    path: str | None = None
    content: str | None = None

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.url, self.path, self.content))
        if given != 1:
            raise ValueError("an attachment needs exactly one of `url`, `path` or `content`")

    @property
    def type(self) -> str | None:
        """llm's name for ``mime_type``."""
        return self.mime_type


class Part(Input, tag_field="type", kw_only=True):
    """Base of the parts of a message; ``provider_metadata`` is opaque, keyed by provider."""

    provider_metadata: dict[str, Any] | None = None

    @property
    def type(self) -> str:
        return self.__struct_config__.tag  # type: ignore[return-value]


class TextPart(Part, tag="text"):
    text: str


class ReasoningPart(Part, tag="reasoning"):
    text: str
    redacted: bool = False
    token_count: int | None = None


class ToolCallPart(Part, tag="tool_call"):
    name: str
    arguments: dict[str, Any] = {}
    tool_call_id: str | None = None
    server_executed: bool = False


class ToolResultPart(Part, tag="tool_result"):
    name: str
    output: str
    tool_call_id: str | None = None
    exception: str | None = None
    server_executed: bool = False
    attachments: list[Attachment] | None = None
    structured_content: Any = None  # an MCP tool's structuredContent, kept whole


class AttachmentPart(Part, tag="attachment"):
    attachment: Attachment


AnyPart = Union[TextPart, ReasoningPart, ToolCallPart, ToolResultPart, AttachmentPart]


class Message(Input):
    role: Role
    parts: list[AnyPart]
    provider_metadata: dict[str, Any] | None = None


class ToolSpec(Input):
    """A function a client offers to the model; ``input_schema`` is a JSON schema."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object", "properties": {}})


class Usage(Output):
    input: int | None = None
    output: int | None = None
    details: dict[str, Any] | None = None


class ErrorInfo(Output):
    """A failure of a response; ``code`` is one of ``parley.ERROR_KINDS``."""

    code: str
    message: str
    retryable: bool = False
    retry_after: float | None = None


# ---- response/event ----------------------------------------------------------
# Models create events without the envelope fields; the daemon stamps
# ``response_id``, ``seq`` and the part/message indices before sending, so on
# the wire they are always present (schema.json marks them required).


class Event(Output, tag_field="type", kw_only=True):
    response_id: str = ""
    seq: int = 0

    @property
    def type(self) -> str:
        return self.__struct_config__.tag  # type: ignore[return-value]

    @property
    def chunk(self) -> str:
        """The text an event adds; "" for events that add none (chunk events override this)."""
        return ""

    @property
    def last_seq(self) -> int:
        """The last seq this event stands for: its own, or a merged delta's ``seq_end``."""
        return self.seq


class DeltaEvent(Event, kw_only=True):
    """A piece of one part (text, reasoning, tool-call arguments). A connection that reads
    slowly may get consecutive deltas of one part merged into one event: its ``seq`` is
    the first merged seq, ``seq_end`` the last, its chunk all of theirs (PROTOCOL.md §7.2)."""

    seq_end: int | None = None

    @property
    def last_seq(self) -> int:
        return self.seq_end or self.seq


class TextEvent(DeltaEvent, tag="text"):
    chunk: str
    part_index: int = -1
    message_index: int = -1


class ReasoningEvent(DeltaEvent, tag="reasoning"):
    chunk: str
    redacted: bool = False
    provider_metadata: dict[str, Any] | None = None
    part_index: int = -1
    message_index: int = -1


class ToolCallNameEvent(Event, tag="tool_call_name"):
    chunk: str
    tool_call_id: str
    server_executed: bool = False  # the provider runs this call itself (e.g. web search)
    part_index: int = -1
    message_index: int = -1


class ToolCallArgsEvent(DeltaEvent, tag="tool_call_args"):
    chunk: str
    tool_call_id: str
    part_index: int = -1
    message_index: int = -1


class ToolResultEvent(Event, tag="tool_result"):
    tool_call_id: str
    name: str
    output: str
    exception: str | None = None
    server_executed: bool = False
    attachments: list[Attachment] | None = None  # images, audio… the tool returned (MCP)
    structured_content: Any = None  # an MCP tool's structuredContent
    part_index: int = -1
    message_index: int = -1


class ToolProgressEvent(Event, tag="tool_progress"):
    """Progress an MCP server reports for a call it runs; not a part of the output."""

    tool_call_id: str
    progress: float
    total: float | None = None
    message: str | None = None


class AttachmentEvent(Event, tag="attachment"):
    mime_type: str
    content: str | None = None
    url: str | None = None
    part_index: int = -1
    message_index: int = -1


class UsageEvent(Event, tag="usage"):
    input: int | None = None
    output: int | None = None
    details: dict[str, Any] | None = None


class ErrorEvent(Event, tag="error"):
    code: str
    message: str
    retryable: bool = False
    retry_after: float | None = None


class DoneEvent(Event, tag="done"):
    status: DoneStatus
    #: One of ``FINISH_REASONS``; None only where it is not known (responses stored before it was).
    finish_reason: str | None = None


AnyEvent = Union[
    TextEvent,
    ReasoningEvent,
    ToolCallNameEvent,
    ToolCallArgsEvent,
    ToolResultEvent,
    ToolProgressEvent,
    AttachmentEvent,
    UsageEvent,
    ErrorEvent,
    DoneEvent,
]
EVENT_TYPES: tuple[str, ...] = tuple(t.__struct_config__.tag for t in AnyEvent.__args__)
#: Events that belong to a part of an output message, and carry its indices.
INDEXED_EVENTS = (TextEvent, ReasoningEvent, ToolCallNameEvent, ToolCallArgsEvent, ToolResultEvent, AttachmentEvent)


class LaggedParams(Output):
    """``response/lagged``: this connection fell behind and was unsubscribed."""

    response_id: str
    last_seq: int


# ---- records -----------------------------------------------------------------


class PromptRecord(Output):
    messages: list[Message]
    system: str | None = None
    options: dict[str, Any] | None = None
    #: The tools the response was given (a later prompt in its conversation, or a reply, inherits them).
    tools: list[ToolSpec] | None = None


class ResponseRecord(Output):
    id: str
    conversation_id: str
    model: str
    status: ResponseStatus
    prompt: PromptRecord
    messages: list[Message]
    created_at: str
    usage: Usage | None = None
    duration_ms: int | None = None
    error: ErrorInfo | None = None
    finish_reason: str | None = None  # as its ``done`` event's; None while it runs


class ConversationSummary(Output):
    id: str
    title: str
    model: str
    created_at: str
    updated_at: str
    response_count: int
    cwd: str | None = None


class Conversation(Output):
    id: str
    title: str
    messages: list[Message]
    response_ids: list[str]
    cwd: str | None = None
    model: str | None = None  # as in ConversationSummary


# ---- requests and their results ------------------------------------------------


class ClientInfo(Input):
    name: str
    version: str | None = None


class ClientCapabilities(Input):
    #: False: never merge deltas for this connection (no ``seqEnd``); a slow reader then
    #: gets ``response/lagged`` sooner.
    event_ranges: bool = True


class InitializeParams(Input):
    protocol_version: int
    client_info: ClientInfo
    auth_token: str | None = None
    capabilities: ClientCapabilities | None = None


class ServerInfo(Output):
    name: str
    version: str


class ServerCapabilities(Output, omit_defaults=False):
    max_message_size: int
    event_types: list[str]
    tool_execution: bool = True
    #: Whether this connection may get merged deltas (``seqEnd``): what the client's
    #: ``capabilities.eventRanges`` asked, true if it did not say.
    event_ranges: bool = True


class InitializeResult(Output):
    protocol_version: int
    server_info: ServerInfo
    capabilities: ServerCapabilities


class NoParams(Input):
    pass


class EmptyResult(Output):
    pass


class ModelCapabilities(Output, omit_defaults=False):
    streaming: bool = True
    tools: bool = False
    reasoning: bool = False
    attachments: list[str] = []
    schema: bool = False


class ModelInfo(Output):
    id: str
    provider: str
    aliases: list[str]
    default: bool
    capabilities: ModelCapabilities
    #: The most tokens of input and output together; None when the daemon does not know it.
    context_window: int | None = None


class ModelsListResult(Output):
    models: list[ModelInfo]


class PromptParams(Input):
    model: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = None
    system: str | None = None
    attachments: list[Attachment] | None = None
    tools: list[ToolSpec] | None = None
    options: dict[str, Any] | None = None
    conversation_id: str | None = None
    #: Start a new conversation even if ``messages`` continue a stored one (see PROTOCOL.md).
    new_conversation: bool = False
    hide_reasoning: bool = False
    chain_limit: Annotated[int, msgspec.Meta(ge=1)] | None = None
    #: The working directory of the conversation this prompt starts (ignored when it continues one).
    cwd: str | None = None
    mcp_servers: list[str] | None = None  # the daemon's MCP servers whose tools the model gets

    def __post_init__(self) -> None:
        if self.prompt is None and not self.messages and not self.attachments:
            raise ValueError("one of `prompt`, `messages` or `attachments` is required")
        if self.new_conversation and self.conversation_id is not None:
            raise ValueError("`newConversation` and `conversationId` exclude each other")
        _check_cwd(self.cwd)


def _check_cwd(cwd: str | None) -> None:
    """A conversation's working directory is an absolute path (on the daemon's machine)."""
    if cwd is not None and not os.path.isabs(cwd):
        raise ValueError("`cwd` must be an absolute path")


class ReplyParams(Input):
    response_id: str
    prompt: str | None = None
    messages: list[Message] | None = None
    attachments: list[Attachment] | None = None
    tool_results: list[ToolResultPart] | None = None
    tools: list[ToolSpec] | None = None
    options: dict[str, Any] | None = None
    model: str | None = None
    hide_reasoning: bool = False
    chain_limit: Annotated[int, msgspec.Meta(ge=1)] | None = None
    mcp_servers: list[str] | None = None  # not inherited from the parent: each turn names its own


class StartedResult(Output):
    response_id: str
    conversation_id: str


class SubscribeResult(Output):
    last_seq: int  # the response's latest event when subscribed: the replay reaches it, live ones follow


class ResponseIdParams(Input):
    response_id: str


class CancelResult(Output):
    status: ResponseStatus


class SubscribeParams(Input):
    response_id: str
    after_seq: Annotated[int, msgspec.Meta(ge=0)] = 0


class ConversationsListParams(Input):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    before: str | None = None
    query: str | None = None
    cwd: str | None = None  # only the conversations with this working directory, exactly


class ConversationsCreateParams(Input):
    """An empty conversation, whose settings the prompts in it inherit (PROTOCOL.md)."""

    model: str | None = None
    system: str | None = None
    options: dict[str, Any] | None = None
    tools: list[ToolSpec] | None = None
    cwd: str | None = None
    title: str | None = None  # none: the first prompt's, as for any conversation

    def __post_init__(self) -> None:
        _check_cwd(self.cwd)


class ConversationsCreateResult(Output):
    conversation_id: str


class ConversationsListResult(Output):
    conversations: list[ConversationSummary]


class ConversationIdParams(Input):
    conversation_id: str


class CancelRequestParams(Input):
    id: int | str


class WorkerStatus(Output, omit_defaults=False):
    """A model's worker process (local models run in one each)."""

    model: str
    state: Literal["starting", "ready", "busy", "backing_off"]
    pid: int | None = None
    rss_bytes: int | None = None
    loaded_at: str | None = None
    crashes: int = 0  # in a row, since the last job that finished
    details: dict[str, Any] = {}


class DaemonStatus(Output, omit_defaults=False):
    pid: int
    version: str
    socket: str | None
    uptime_s: float
    connections: int
    running_responses: int
    rss_bytes: int | None = None
    workers: list[WorkerStatus] = []


class ToolExecuteParams(Output):
    response_id: str
    tool_call_id: str
    name: str
    arguments: dict[str, Any]


class ToolExecuteResult(Input):
    output: str
    exception: str | None = None


from ._types_mcp import *  # noqa: E402, F403 - the MCP shapes, split off for size
