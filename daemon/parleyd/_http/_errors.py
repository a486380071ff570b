"""Errors in OpenAI's envelope and status codes: ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from parley._errors import RequestError
from starlette.responses import JSONResponse

#: The HTTP status of a daemon error answer, by its kind.
_REQUEST_STATUS = {"unknown_model": 404, "unknown_conversation": 404, "unknown_response": 404, "auth_failed": 401}

#: The HTTP status of a response that failed before its first output, by the ``error`` event's code.
_EVENT_STATUS = {
    "auth": 502,  # the provider refused parley's key: not the client's fault
    "rate_limited": 429,
    "overloaded": 503,
    "context_length": 400,
    "bad_request": 400,
    "network": 502,
    "timeout": 504,
    "model_crashed": 503,
}


def openai_error(status: int, code: str, message: str, *, retry_after: float | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 401:
        kind = "authentication_error"
    elif status == 429:
        kind = "rate_limit_error"
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status, headers=headers)


def from_request_error(exc: RequestError) -> JSONResponse:
    return openai_error(_REQUEST_STATUS.get(exc.kind, 400 if exc.code == -32602 else 500), exc.kind, exc.message)


def event_status(code: str) -> int:
    return _EVENT_STATUS.get(code, 500)
