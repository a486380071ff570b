"""parley: the wire contract of the parley daemon, and the Python client scripts use.

    import parley
    from parley import user, assistant

    with parley.connect() as client:
        model = client.get_model("echo")
        response = model.prompt(messages=[user("Capital of France?"), assistant("Paris"), user("Germany?")])
        for chunk in response:
            print(chunk, end="")
        again = response.reply("How about Hungary?")
        print(again.text())

        def add(a: int, b: int) -> int:
            "Add two numbers."
            return a + b

        print(model.chain("What is 1 + 2?", tools=[add]).text())  # the daemon calls add through this client

A script for llm runs on it too: ``import parley as llm``, then ``llm.get_model()``,
``str(model.prompt("Hi", temperature=0.5))``, ``schema=llm.schema_dsl("name, age int")``.
"""

from typing import TYPE_CHECKING, Any

from ._builders import assistant, attachment, system, text_of, tool_message, tool_result, user
from ._client import ASYNC_NAMES, Client, Model, Response, connect
from ._default import get_async_model, get_model, get_models
from ._errors import *  # noqa: F403
from ._errors import __doc__ as _errors_doc  # noqa: F401
from ._schema_dsl import multi_schema, schema_dsl
from ._toolspec import CancelToolCall, Tool, Toolbox
from ._types import *  # noqa: F403

if TYPE_CHECKING:
    from ._client import AsyncClient, AsyncModel, AsyncResponse, connect_async

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The asyncio client, imported when first named (``from parley import AsyncClient``)."""
    if name in ASYNC_NAMES:
        from . import _client

        return getattr(_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # the client
    "connect",
    "connect_async",
    "Client",
    "AsyncClient",
    "Model",
    "AsyncModel",
    "Response",
    "AsyncResponse",
    # llm's module-level API, on a client of the process's own
    "get_model",
    "get_async_model",
    "get_models",
    "schema_dsl",
    "multi_schema",
    # tools
    "Tool",
    "Toolbox",
    "CancelToolCall",
    # building messages
    "user",
    "assistant",
    "system",
    "attachment",
    "tool_message",
    "tool_result",
    "text_of",
    # errors
    "ERROR_KINDS",
    "REQUEST_ERRORS",
    "request_error_from_wire",
    "ParleyError",
    "ConnectError",
    "ConnectionClosed",
    "RequestError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "NotInitialized",
    "RequestCancelled",
    "UnknownModel",
    "UnknownResponse",
    "UnknownConversation",
    "AuthFailed",
    "MessageTooLarge",
    "ResponseFailed",
    # the wire types: messages and parts
    "PROTOCOL_VERSION",
    "Role",
    "Input",
    "Output",
    "Attachment",
    "Part",
    "TextPart",
    "ReasoningPart",
    "ToolCallPart",
    "ToolResultPart",
    "AttachmentPart",
    "AnyPart",
    "Message",
    "ToolSpec",
    "Usage",
    "ErrorInfo",
    # events
    "EVENT_TYPES",
    "INDEXED_EVENTS",
    "Event",
    "DeltaEvent",
    "TextEvent",
    "ReasoningEvent",
    "ToolCallNameEvent",
    "ToolCallArgsEvent",
    "ToolResultEvent",
    "AttachmentEvent",
    "UsageEvent",
    "ErrorEvent",
    "DoneEvent",
    "FINISH_REASONS",
    "AnyEvent",
    "LaggedParams",
    # records
    "ResponseStatus",
    "DoneStatus",
    "PromptRecord",
    "ResponseRecord",
    "ConversationSummary",
    "Conversation",
    "ModelCapabilities",
    "ModelInfo",
    "DaemonStatus",
    "WorkerStatus",
    # params and results
    "ClientInfo",
    "ClientCapabilities",
    "InitializeParams",
    "InitializeResult",
    "ServerInfo",
    "ServerCapabilities",
    "NoParams",
    "EmptyResult",
    "ModelsListResult",
    "PromptParams",
    "ReplyParams",
    "StartedResult",
    "ResponseIdParams",
    "CancelResult",
    "SubscribeParams",
    "SubscribeResult",
    "ConversationsListParams",
    "ConversationsListResult",
    "ConversationsCreateParams",
    "ConversationsCreateResult",
    "ConversationIdParams",
    "CancelRequestParams",
    "ToolExecuteParams",
    "ToolExecuteResult",
    # MCP servers hosted by the daemon
    "ToolProgressEvent",
    "ToolApproveParams",
    "ToolApproveResult",
    "ApprovalDecision",
    "McpListResult",
    "McpServerStatus",
    "McpServerState",
    "McpToolInfo",
]
