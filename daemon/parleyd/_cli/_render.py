"""How the CLI shows a response: text to stdout as it streams, reasoning to stderr (dim on a terminal).

As llm's CLI: reasoning is always written, so that a redirected stderr keeps it,
and a line break on stderr ends it when the answer's text begins. With ``-x``
(``--xl``) only the first (last) fenced code block of the answer is printed,
once it is complete, or the whole answer when it has none.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Literal

import parley

_DIM, _RESET = "\033[2m", "\033[0m"


class _Stdout:
    """Whether the text on stdout stops mid-line, so that what follows starts on a line of its own;
    and whether reasoning on stderr does."""

    mid_line = False
    in_reasoning = False


_stdout = _Stdout()


def end_line() -> None:
    """Before a line on stderr (a tool call): end a partial line of text, when both go to a terminal."""
    _end_reasoning()
    if _stdout.mid_line and sys.stdout.isatty():
        sys.stdout.write("\n")
        _stdout.mid_line = False
    sys.stdout.flush()


def show(
    response: parley.Response,
    *,
    stream: bool = True,
    reasoning: bool = True,
    extract: Literal["first", "last"] | None = None,
    tool_result: Callable[[parley.ToolResultEvent], None] | None = None,
) -> None:
    """Print the response; Ctrl-C cancels it (the partial answer stays stored). ``tool_result``
    is given each tool result as it arrives (the daemon's MCP calls).

    Raises ``parley.ResponseFailed`` when it ended with an error event.
    """
    stream = stream and extract is None
    dim, reset = (_DIM, _RESET) if sys.stderr.isatty() else ("", "")
    _stdout.mid_line = _stdout.in_reasoning = False
    try:
        for event in response.stream_events():
            if event.type == "text" and event.chunk:
                _end_reasoning()
                if stream:
                    sys.stdout.write(event.chunk)
                    sys.stdout.flush()
                    _stdout.mid_line = not event.chunk.endswith("\n")
            elif event.type == "reasoning" and reasoning and event.chunk:
                sys.stderr.write(f"{dim}{event.chunk}{reset}")
                sys.stderr.flush()
                _stdout.in_reasoning = not event.chunk.endswith("\n")
            elif event.type == "tool_result" and tool_result is not None:
                tool_result(event)  # type: ignore[arg-type]
        if not stream:
            text = response.text()
            if extract is not None:
                text = extract_fenced_code_block(text, last=extract == "last") or text
            sys.stdout.write(text)
            _stdout.mid_line = bool(text) and not text.endswith("\n")
        response.text()  # raises ResponseFailed after an error event
    except KeyboardInterrupt:
        response.cancel()
        raise
    finally:
        _end_reasoning()
        if _stdout.mid_line:
            sys.stdout.write("\n")
            _stdout.mid_line = False
        sys.stdout.flush()


def _end_reasoning() -> None:
    """End the line of reasoning on stderr, if one is open."""
    if _stdout.in_reasoning:
        sys.stderr.write("\n")
        sys.stderr.flush()
        _stdout.in_reasoning = False


#: llm's pattern: a fence of three or more backticks at the start of a line, an optional
#: language tag, and the same fence closing it.
_FENCED = re.compile(r"(?m)^(?P<fence>`{3,})(?P<lang>\w+)?\r?\n(?P<code>.*?)^(?P=fence)[ ]*(?=\r?\n|$)", re.DOTALL)


def extract_fenced_code_block(text: str, last: bool = False) -> str | None:
    """The content of the first (``last``: the last) fenced code block of ``text``, as llm's; None if none."""
    matches = list(_FENCED.finditer(text))
    if not matches:
        return None
    return matches[-1 if last else 0].group("code")
