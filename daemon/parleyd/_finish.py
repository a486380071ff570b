"""Why a response ended: the ``finishReason`` of its ``done`` event (``parley.FINISH_REASONS``).

The providers report their own stop reason in the last ``usage`` event's ``details``
(``stop_reason``: OpenAI's and llama.cpp's finish reasons, Anthropic's stop reasons); the
daemon knows the rest itself: tool calls left for the client, a chain cut by ``chainLimit``,
a cancel, an error, a stop of the daemon.
"""

from __future__ import annotations

from typing import Any

from parley._types import Usage

#: The provider stop reasons that mean the token limit cut the answer: OpenAI's ``length``,
#: Anthropic's ``max_tokens`` and ``model_context_window_exceeded``.
TOKEN_LIMIT_STOPS = frozenset({"length", "max_tokens", "model_context_window_exceeded"})


def cut_by_token_limit(details: dict[str, Any] | None) -> bool:
    """Whether a usage event's ``details`` say the token limit cut the answer."""
    return (details or {}).get("stop_reason") in TOKEN_LIMIT_STOPS


def completed_reason(usage: Usage | None, *, tool_calls: bool, chain_limited: bool) -> str:
    """The reason of a response that completed: ``length`` when the provider said the token limit
    cut its last round (even one that ended in a tool call: its arguments may be cut too), else
    ``chain_limit`` when a chain stopped at ``chainLimit`` with calls still to run, ``tool_calls``
    when calls are left for the client, ``stop`` when the model ended its answer."""
    if cut_by_token_limit(usage.details if usage is not None else None):
        return "length"
    if chain_limited:
        return "chain_limit"
    return "tool_calls" if tool_calls else "stop"
