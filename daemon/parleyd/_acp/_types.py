"""The ACP v1 shapes this agent reads and writes: only the subset it uses.

Field names are camelCase on the wire (``rename="camel"``). What the client
sends is decoded leniently (unknown fields are ignored: ACP messages grow, and
``_meta`` may appear anywhere); a missing or mistyped required field is -32602.
What the agent sends omits fields that hold their default (``None``).
"""

from __future__ import annotations

from typing import Any, Literal, Union

import msgspec

PROTOCOL_VERSION = 1


class In(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of what the client sends."""


class Out(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Base of what the agent sends."""


# ---- initialize ------------------------------------------------------------------


class Implementation(Out):
    name: str
    version: str
    title: str | None = None


class FileSystemCapability(In):
    read_text_file: bool = False
    write_text_file: bool = False


class ClientCapabilities(In):
    fs: FileSystemCapability = msgspec.field(default_factory=FileSystemCapability)
    terminal: bool = False
    session: dict[str, Any] | None = None


class ClientInfo(In):
    name: str = ""
    version: str | None = None
    title: str | None = None


class InitializeRequest(In):
    protocol_version: int
    client_capabilities: ClientCapabilities = msgspec.field(default_factory=ClientCapabilities)
    client_info: ClientInfo | None = None


class PromptCapabilities(Out, omit_defaults=False):
    image: bool = False
    audio: bool = False
    embedded_context: bool = False


class McpCapabilities(Out, omit_defaults=False):
    http: bool = False
    sse: bool = False


class SessionCapabilities(Out, omit_defaults=False):
    list: dict[str, Any] = {}
    resume: dict[str, Any] = {}
    close: dict[str, Any] = {}
    delete: dict[str, Any] = {}


class AgentCapabilities(Out, omit_defaults=False):
    load_session: bool
    prompt_capabilities: PromptCapabilities
    mcp_capabilities: McpCapabilities
    session_capabilities: SessionCapabilities


class InitializeResponse(Out, omit_defaults=False):
    protocol_version: int
    agent_capabilities: AgentCapabilities
    agent_info: Implementation
    auth_methods: list[Any] = []


# ---- sessions --------------------------------------------------------------------


class EnvVariable(In):
    name: str
    value: str


class HttpHeader(In):
    name: str
    value: str


class McpServerStdio(In):
    name: str
    command: str
    args: list[str]
    env: list[EnvVariable] = []


class McpServerHttp(In):
    type: Literal["http", "sse"]
    name: str
    url: str
    headers: list[HttpHeader] = []


class NewSessionRequest(In):
    cwd: str
    #: Checked one by one (``check_mcp_servers``): stdio servers carry no ``type``.
    mcp_servers: list[dict[str, Any]] = []


class LoadSessionRequest(In):
    session_id: str
    cwd: str
    mcp_servers: list[dict[str, Any]] = []


class SessionIdRequest(In):
    """``session/close``, ``session/delete``, ``session/cancel``."""

    session_id: str


class ListSessionsRequest(In):
    cwd: str | None = None
    cursor: str | None = None


class SetConfigOptionRequest(In):
    session_id: str
    config_id: str
    value: str | bool
    type: str | None = None


class CancelRequestNotification(In):
    request_id: int | str


class ConfigOptionValue(Out):
    value: str
    name: str
    description: str | None = None


class ConfigOption(Out):
    id: str
    name: str
    type: Literal["select"]
    current_value: str
    options: list[ConfigOptionValue]
    category: str | None = None
    description: str | None = None


class NewSessionResponse(Out):
    session_id: str
    config_options: list[ConfigOption]


class SessionSetupResponse(Out):
    """The answer to ``session/load`` and ``session/resume``."""

    config_options: list[ConfigOption]


class SetConfigOptionResponse(Out):
    config_options: list[ConfigOption]


class SessionInfo(Out):
    session_id: str
    cwd: str
    title: str | None = None
    updated_at: str | None = None
    meta: dict[str, Any] | None = msgspec.field(default=None, name="_meta")


class ListSessionsResponse(Out):
    sessions: list[SessionInfo]
    next_cursor: str | None = None


class EmptyResponse(Out):
    pass


# ---- content blocks --------------------------------------------------------------


class TextContent(Out, tag_field="type", tag="text"):
    text: str


class ImageContent(Out, tag_field="type", tag="image"):
    data: str
    mime_type: str
    uri: str | None = None


class AudioContent(Out, tag_field="type", tag="audio"):
    data: str
    mime_type: str


class ResourceLink(Out, tag_field="type", tag="resource_link"):
    uri: str
    name: str
    mime_type: str | None = None
    title: str | None = None
    description: str | None = None
    size: int | None = None


class EmbeddedResource(Out, tag_field="type", tag="resource"):
    #: Text (``uri``, ``text``, ``mimeType?``) or blob (``uri``, ``blob``, ``mimeType?``) contents.
    resource: dict[str, Any]


ContentBlock = Union[TextContent, ImageContent, AudioContent, ResourceLink, EmbeddedResource]


class PromptRequest(In):
    session_id: str
    prompt: list[ContentBlock]


StopReason = Literal["end_turn", "max_tokens", "max_turn_requests", "refusal", "cancelled"]


class PromptResponse(Out):
    stop_reason: StopReason


# ---- session/update --------------------------------------------------------------


class Update(Out, tag_field="sessionUpdate"):
    pass


class UserMessageChunk(Update, tag="user_message_chunk"):
    content: ContentBlock
    message_id: str | None = None


class AgentMessageChunk(Update, tag="agent_message_chunk"):
    content: ContentBlock
    message_id: str | None = None


class AgentThoughtChunk(Update, tag="agent_thought_chunk"):
    content: ContentBlock
    message_id: str | None = None


ToolKind = Literal["read", "edit", "delete", "move", "search", "execute", "think", "fetch", "other"]
ToolCallStatus = Literal["pending", "in_progress", "completed", "failed"]


class ToolCallContent(Out, tag_field="type", tag="content"):
    content: ContentBlock


class Diff(Out, tag_field="type", tag="diff"):
    path: str
    new_text: str
    old_text: str | None = None


class ToolCallLocation(Out):
    path: str
    line: int | None = None


class ToolCallStart(Update, tag="tool_call"):
    tool_call_id: str
    title: str
    kind: ToolKind
    status: ToolCallStatus
    raw_input: Any = None
    locations: list[ToolCallLocation] | None = None


class ToolCallProgress(Update, tag="tool_call_update"):
    tool_call_id: str
    title: str | None = None
    kind: ToolKind | None = None
    status: ToolCallStatus | None = None
    content: list[ToolCallContent | Diff] | None = None
    locations: list[ToolCallLocation] | None = None
    raw_input: Any = None
    raw_output: Any = None


class UsageUpdate(Update, tag="usage_update"):
    used: int
    size: int


class SessionInfoUpdate(Update, tag="session_info_update"):
    title: str | None = None
    updated_at: str | None = None


class ConfigOptionUpdate(Update, tag="config_option_update"):
    config_options: list[ConfigOption]


AnyUpdate = Union[
    UserMessageChunk,
    AgentMessageChunk,
    AgentThoughtChunk,
    ToolCallStart,
    ToolCallProgress,
    UsageUpdate,
    SessionInfoUpdate,
    ConfigOptionUpdate,
]


class SessionNotification(Out):
    session_id: str
    update: AnyUpdate


# ---- asking the client -----------------------------------------------------------


class PermissionOption(Out):
    option_id: str
    name: str
    kind: Literal["allow_once", "allow_always", "reject_once", "reject_always"]


class PermissionToolCall(Out):
    """The call a permission request is about (a ``ToolCallUpdate``, without ``sessionUpdate``)."""

    tool_call_id: str
    title: str | None = None
    kind: ToolKind | None = None
    status: ToolCallStatus | None = None
    locations: list[ToolCallLocation] | None = None
    raw_input: Any = None


class RequestPermissionRequest(Out):
    session_id: str
    tool_call: PermissionToolCall
    options: list[PermissionOption]


class PermissionOutcome(In):
    outcome: str  # "selected" or "cancelled"
    option_id: str | None = None


class RequestPermissionResponse(In):
    outcome: PermissionOutcome


class ReadTextFileRequest(Out):
    session_id: str
    path: str
    line: int | None = None
    limit: int | None = None


class ReadTextFileResponse(In):
    content: str


class WriteTextFileRequest(Out):
    session_id: str
    path: str
    content: str
