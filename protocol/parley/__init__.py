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
"""

from ._builders import assistant, attachment, system, text_of, tool_message, tool_result, user
from ._client import AsyncClient, AsyncModel, AsyncResponse, Client, Model, Response, connect, connect_async
from ._errors import *  # noqa: F403
from ._errors import __doc__ as _errors_doc  # noqa: F401
from ._toolspec import CancelToolCall, Tool
from ._types import *  # noqa: F403

__version__ = "0.1.0"

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
    # tools
    "Tool",
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
    "TextEvent",
    "ReasoningEvent",
    "ToolCallNameEvent",
    "ToolCallArgsEvent",
    "ToolResultEvent",
    "AttachmentEvent",
    "UsageEvent",
    "ErrorEvent",
    "DoneEvent",
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
    "ConversationsListParams",
    "ConversationsListResult",
    "ConversationIdParams",
    "CancelRequestParams",
    "ToolExecuteParams",
    "ToolExecuteResult",
]
