"""Errors of the parley protocol, on both sides of a connection.

Request errors travel as JSON-RPC error answers ``{code, message, data: {kind}}``;
a response that fails while it streams ends with an ``error`` event whose
``code`` is one of ``ERROR_KINDS``. The Python exception tree::

    ParleyError
    ├── ConnectError .................. the daemon could not be reached or started
    ├── ConnectionClosed .............. the connection ended while a call was pending
    ├── RequestError .................. an error answer to a request (``code``, ``kind``)
    │   ├── ParseError ........ -32700  the body is not JSON, or the bytes are not a frame
    │   ├── InvalidRequest .... -32600  JSON, but not a JSON-RPC request
    │   ├── MethodNotFound .... -32601
    │   ├── InvalidParams ..... -32602  the message names the bad field
    │   ├── InternalError ..... -32603  a daemon bug; details only in the daemon's log
    │   ├── NotInitialized .... -32002  a request before ``initialize``
    │   ├── RequestCancelled .. -32800  ``$/cancelRequest`` won the race
    │   ├── UnknownModel ...... -32010
    │   ├── UnknownResponse ... -32011
    │   ├── UnknownConversation -32012
    │   ├── AuthFailed ........ -32020  a missing or wrong token on TCP/WebSocket
    │   └── MessageTooLarge ... -32021  a frame over the daemon's limit (64 MiB default)
    └── ResponseFailed ................ a response ended with an ``error`` event (``kind``)
"""

from __future__ import annotations

from typing import Any

#: The ``code`` of an ``error`` event: what a client can act on.
ERROR_KINDS: dict[str, str] = {
    "auth": "the provider refused the credentials",
    "rate_limited": "too many requests; retryAfter says when to try again",
    "overloaded": "the provider is overloaded; retrying later may help",
    "context_length": "the input is longer than the model accepts",
    "bad_request": "the provider rejected the request as invalid",
    "network": "the provider could not be reached or the connection dropped",
    "timeout": "the provider stopped answering",
    "provider_error": "the provider reported an error of its own",
    "model_error": "the model failed (a local model, or a scripted error)",
    "model_crashed": "the model's worker process died (a crash, an OOM kill); retryable: the next prompt starts a new one",
    "schema_mismatch": "the answer is not JSON matching the schema option; the message says where; the output is kept",
    "tool_client_disconnected": "the client that declared the tools disconnected during a tool chain",
    "internal": "a daemon bug; details only in the daemon's log",
    "interrupted": "the daemon stopped while the response was running",
}


class ParleyError(Exception):
    """Base of every error this package raises."""


class ConnectError(ParleyError):
    """The daemon could not be reached, or could not be started."""


class ConnectionClosed(ParleyError):
    """The connection to the daemon ended."""


class RequestError(ParleyError):
    """An error answer to a JSON-RPC request."""

    code: int = -32603
    kind: str = "internal"

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "data": {"kind": self.kind, **(self.data or {})}}


def _request_error(name: str, code: int, kind: str, doc: str) -> type[RequestError]:
    return type(name, (RequestError,), {"code": code, "kind": kind, "__doc__": doc})


ParseError = _request_error("ParseError", -32700, "parse_error", "The bytes were not a frame, or the body not JSON.")
InvalidRequest = _request_error("InvalidRequest", -32600, "invalid_request", "JSON, but not a JSON-RPC request.")
MethodNotFound = _request_error("MethodNotFound", -32601, "method_not_found", "No such method.")
InvalidParams = _request_error("InvalidParams", -32602, "invalid_params", "A param is missing or wrong; the message names it.")
InternalError = _request_error("InternalError", -32603, "internal", "A daemon bug; details are only in its log.")
NotInitialized = _request_error("NotInitialized", -32002, "not_initialized", "A request came before `initialize`.")
RequestCancelled = _request_error("RequestCancelled", -32800, "cancelled", "The request was cancelled.")
UnknownModel = _request_error("UnknownModel", -32010, "unknown_model", "No model has this id or alias.")
UnknownResponse = _request_error("UnknownResponse", -32011, "unknown_response", "No response has this id.")
UnknownConversation = _request_error("UnknownConversation", -32012, "unknown_conversation", "No conversation has this id.")
AuthFailed = _request_error("AuthFailed", -32020, "auth_failed", "The token is missing or wrong.")
MessageTooLarge = _request_error("MessageTooLarge", -32021, "message_too_large", "A frame over the size limit.")

REQUEST_ERRORS: dict[int, type[RequestError]] = {
    cls.code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        NotInitialized,
        RequestCancelled,
        UnknownModel,
        UnknownResponse,
        UnknownConversation,
        AuthFailed,
        MessageTooLarge,
    )
}


def request_error_from_wire(error: dict[str, Any]) -> RequestError:
    """The exception for a JSON-RPC error object received from the daemon."""
    code = error.get("code", -32603)
    cls = REQUEST_ERRORS.get(code, RequestError)
    exc = cls(str(error.get("message", "")), data=error.get("data"))
    exc.code = code
    return exc


class ResponseFailed(ParleyError):
    """A response ended with an ``error`` event; ``kind`` is one of ``ERROR_KINDS``."""

    def __init__(self, kind: str, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
