"""What goes wrong in a front door, as one exception each API renders in its own envelope.

``HttpError`` carries an HTTP status, a code (the daemon's error kind, or the ``error``
event's code) and a message; ``openai_error`` renders it as OpenAI's
``{"error": {message, type, param, code}}``. The Anthropic API has its own envelope
(``messages``); both take their status from here, so one failure has one status in every API
(but ``overloaded``: Anthropic's clients expect 529 for it, the others 503).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parley._errors import RequestError
from parley._types import ErrorEvent
from starlette.responses import JSONResponse

#: The HTTP status of a daemon error answer, by its kind.
_REQUEST_STATUS = {"unknown_model": 404, "unknown_conversation": 404, "unknown_response": 404, "auth_failed": 401}

#: The HTTP status of a failed response (before its first output, or a whole answer), by the
#: ``error`` event's code.
_EVENT_STATUS = {
    "schema_mismatch": 502,  # the model's answer broke the request's schema: the upstream's fault
    "auth": 502,  # the provider refused parley's key: not the client's fault
    "rate_limited": 429,
    "overloaded": 503,
    "context_length": 400,
    "bad_request": 400,
    "network": 502,
    "timeout": 504,
    "model_crashed": 503,
}


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def bad_request(cls, message: str) -> HttpError:
        return cls(400, "invalid_request_error", message)

    @classmethod
    def unsupported(cls, message: str) -> HttpError:
        """A request this front door does not serve (yet): a 400 that says what."""
        return cls(400, "unsupported", message)

    @classmethod
    def from_request(cls, exc: RequestError) -> HttpError:
        return cls(_REQUEST_STATUS.get(exc.kind, 400 if exc.code == -32602 else 500), exc.kind, exc.message)

    @classmethod
    def from_event(cls, event: ErrorEvent) -> HttpError:
        return cls(_EVENT_STATUS.get(event.code, 500), event.code, event.message, retry_after=event.retry_after)

    def headers(self) -> dict[str, str] | None:
        return {"retry-after": f"{self.retry_after:g}"} if self.retry_after is not None else None


def openai_kind(status: int) -> str:
    """OpenAI's error ``type`` for a status."""
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if status < 500 else "server_error"


def openai_error(error: HttpError) -> JSONResponse:
    body = {"error": {"message": error.message, "type": openai_kind(error.status), "param": None, "code": error.code}}
    return JSONResponse(body, status_code=error.status, headers=error.headers())


#: Anthropic's error ``type`` by status (its documented list); 529 is its "overloaded".
_ANTHROPIC_KIND = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def anthropic_status(error: HttpError) -> int:
    return 529 if error.code == "overloaded" else error.status


def anthropic_kind(status: int) -> str:
    return _ANTHROPIC_KIND.get(status, "invalid_request_error" if status < 500 else "api_error")


def anthropic_body(error: HttpError) -> dict[str, Any]:
    """Anthropic's envelope, also the ``data`` of a stream's ``error`` event."""
    return {"type": "error", "error": {"type": anthropic_kind(anthropic_status(error)), "message": error.message}}


def anthropic_error(error: HttpError) -> JSONResponse:
    return JSONResponse(anthropic_body(error), status_code=anthropic_status(error), headers=error.headers())


def wants_anthropic(path: str, headers: Mapping[str, str]) -> bool:
    """Whether a request is Anthropic's: its messages, or the models asked for in its shape."""
    return "/messages" in path or ("/models" in path and "anthropic-version" in headers)


def render(path: str, headers: Mapping[str, str], error: HttpError) -> JSONResponse:
    """The error in the envelope of the API that the request belongs to."""
    return anthropic_error(error) if wants_anthropic(path, headers) else openai_error(error)
