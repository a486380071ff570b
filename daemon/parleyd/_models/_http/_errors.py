"""From an HTTP failure to a ``ModelFailure`` a client can act on, and when to retry.

Kinds (``parley.ERROR_KINDS``): ``auth``, ``rate_limited`` (with ``retry_after``),
``overloaded``, ``context_length``, ``bad_request``, ``network``, ``timeout``,
``provider_error``. The retryable ones are ``rate_limited``, ``overloaded``,
``network``, ``timeout`` and ``provider_error``, unless the provider says
otherwise (``x-should-retry: false``, an exhausted quota). Every message passes
through :func:`scrub`, so that an API key never reaches a client or a log, even
when the provider echoes it back in its error text.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from .._base import ModelFailure

RETRYABLE = frozenset({"rate_limited", "overloaded", "network", "timeout", "provider_error"})

_CONTEXT = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|prompt is too long|too many (input )?tokens|"
    r"input length and `max_tokens` exceed",
    re.IGNORECASE,
)
_MASKED = re.compile(r"\S*\*{4,}\S*")  # a key as providers echo it: sk-abc*****wxyz
_MAX_MESSAGE = 600


@dataclass(frozen=True)
class RetryPolicy:
    """Retries happen only before the first event of a response was yielded."""

    max_retries: int = 2
    base_delay: float = 0.5  # seconds; doubled each attempt, with jitter
    max_delay: float = 8.0
    #: A retry-after longer than this is not waited for: the failure goes to the client with it.
    max_wait: float = 60.0

    def delay(self, failure: ModelFailure, attempt: int) -> float | None:
        """Seconds to wait before retry number ``attempt`` (0-based), or None to give up."""
        if not failure.retryable or attempt >= self.max_retries:
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= self.max_wait else None
        backoff = min(self.base_delay * 2**attempt, self.max_delay)
        return backoff * random.uniform(0.5, 1.0)


def scrub(text: str, secret: str | None) -> str:
    """The text without the secret, nor anything that looks like a masked key."""
    if secret:
        text = text.replace(secret, "[redacted]")
        if len(secret) >= 12:  # a truncated echo of it: "sk-proj-abcd..."
            text = text.replace(secret[:10], "[redacted]")
    text = _MASKED.sub("[redacted]", text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms``, or ``retry-after`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _status_kind(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status in (503, 529):
        return "overloaded"
    if status in (408, 504):
        return "timeout"
    if status >= 500:
        return "provider_error"
    return "bad_request"


# Anthropic's error.type, and OpenAI-style error.code/type values that say more than the status.
_TYPE_KINDS = {
    "authentication_error": "auth",
    "permission_error": "auth",
    "billing_error": "auth",
    "invalid_api_key": "auth",
    "rate_limit_error": "rate_limited",
    "rate_limit_exceeded": "rate_limited",
    "overloaded_error": "overloaded",
    "api_error": "provider_error",
    "server_error": "provider_error",
    "timeout_error": "timeout",
    "invalid_request_error": "bad_request",
    "not_found_error": "bad_request",
    "request_too_large": "bad_request",
    "context_length_exceeded": "context_length",
    "exceed_context_size_error": "context_length",
    "string_above_max_length": "context_length",
}


_GENERIC = frozenset({"api_error", "server_error", "invalid_request_error"})


def error_details(body: Any) -> tuple[str | None, str | None, str | None]:
    """(message, type, code) of an error body in OpenAI's or Anthropic's shape, or of a bare string."""
    if isinstance(body, str):
        return body.strip() or None, None, None
    if not isinstance(body, dict):
        return None, None, None
    error = body.get("error", body)
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        return None, None, None
    message = error.get("message") or error.get("detail") or body.get("message")
    code = error.get("code")
    kind = error.get("type")
    return (
        str(message) if message is not None else None,
        str(kind) if kind is not None else None,
        str(code) if code is not None else None,
    )


def failure_from_error(
    *,
    provider: str,
    status: int | None,
    body: Any,
    headers: Mapping[str, str] | None = None,
    secret: str | None = None,
) -> ModelFailure:
    """The failure an error answer (or an ``error`` event in a stream, with no status) stands for."""
    message, etype, code = error_details(body)
    # the most specific first: a named type or code, then a status inside the error, then a generic type
    kind = next((_TYPE_KINDS[k] for k in (code, etype) if k in _TYPE_KINDS and k not in _GENERIC), None)
    if kind is None and status is None and isinstance(code, str) and code.isdigit():
        kind = _status_kind(int(code))  # an error event in a stream that names a status (vLLM, llama.cpp)
    if kind is None:
        kind = next((_TYPE_KINDS[k] for k in (code, etype) if k in _TYPE_KINDS), None)
    if kind is None:
        kind = _status_kind(status) if status is not None else "provider_error"
    if kind == "bad_request" and message and _CONTEXT.search(message):
        kind = "context_length"
    retryable = kind in RETRYABLE
    if code == "insufficient_quota":  # a 429 that waiting does not fix
        retryable = False
    retry_after = None
    if headers is not None:
        should = headers.get("x-should-retry")
        if should == "true":
            retryable = True
        elif should == "false":
            retryable = False
        if retryable:
            retry_after = parse_retry_after(headers)
    head = f"{provider} answered {status}" if status is not None else f"{provider} reported an error"
    detail = message or etype or code
    text = f"{head}: {detail}" if detail else head
    return ModelFailure(kind, scrub(text, secret), retryable=retryable, retry_after=retry_after)


def decode_error_body(content: bytes) -> Any:
    try:
        return msgspec.json.decode(content)
    except msgspec.DecodeError:
        return content.decode("utf-8", "replace")[:_MAX_MESSAGE]


def failure_from_exception(exc: httpx.HTTPError, *, where: str, timeouts: httpx.Timeout) -> ModelFailure:
    """The failure an httpx exception stands for; ``where`` names the server (no credentials)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return ModelFailure("timeout", f"could not connect to {where} within {timeouts.connect}s", retryable=True)
    if isinstance(exc, httpx.ReadTimeout):
        return ModelFailure("timeout", f"{where} sent nothing for {timeouts.read}s", retryable=True)
    if isinstance(exc, httpx.WriteTimeout):
        return ModelFailure("timeout", f"{where} took more than {timeouts.write}s to take the request", retryable=True)
    if isinstance(exc, httpx.PoolTimeout):
        return ModelFailure("timeout", f"no free connection to {where} within {timeouts.pool}s", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return ModelFailure("network", f"could not connect to {where}: {_reason(exc)}", retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError):
        return ModelFailure("network", f"the connection to {where} broke off mid-response: {_reason(exc)}", retryable=True)
    if isinstance(exc, httpx.NetworkError):
        return ModelFailure("network", f"the connection to {where} failed: {_reason(exc)}", retryable=True)
    if isinstance(exc, httpx.DecodingError):
        return ModelFailure("provider_error", f"{where} sent a body that could not be decoded", retryable=True)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return ModelFailure("network", f"the endpoint URL is not usable: {_reason(exc)}")
    return ModelFailure("network", f"the request to {where} failed: {type(exc).__name__}", retryable=True)


def _reason(exc: Exception) -> str:
    # httpx messages carry no headers; they may name the URL, which the caller already shows.
    text = str(exc).strip()
    return text if text else type(exc).__name__
