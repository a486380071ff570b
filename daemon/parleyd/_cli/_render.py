"""How the CLI shows a response: text to stdout as it streams, reasoning dim on a terminal's stderr."""

from __future__ import annotations

import sys

import parley

_DIM, _RESET = "\033[2m", "\033[0m"


class _Stdout:
    """Whether the text on stdout stops mid-line, so that what follows starts on a line of its own."""

    mid_line = False


_stdout = _Stdout()


def end_line() -> None:
    """Before a line on stderr (a tool call): end a partial line of text, when both go to a terminal."""
    if _stdout.mid_line and sys.stdout.isatty():
        sys.stdout.write("\n")
        _stdout.mid_line = False
    sys.stdout.flush()


def show(response: parley.Response, *, stream: bool = True) -> None:
    """Print the response; Ctrl-C cancels it (the partial answer stays stored).

    Raises ``parley.ResponseFailed`` when it ended with an error event.
    """
    show_reasoning = sys.stderr.isatty()
    _stdout.mid_line = False
    try:
        for event in response.stream_events():
            if event.type == "text" and stream and event.chunk:
                sys.stdout.write(event.chunk)
                sys.stdout.flush()
                _stdout.mid_line = not event.chunk.endswith("\n")
            elif event.type == "reasoning" and show_reasoning:
                sys.stderr.write(f"{_DIM}{event.chunk}{_RESET}")
                sys.stderr.flush()
        if not stream:
            text = response.text()
            sys.stdout.write(text)
            _stdout.mid_line = bool(text) and not text.endswith("\n")
        response.text()  # raises ResponseFailed after an error event
    except KeyboardInterrupt:
        response.cancel()
        raise
    finally:
        if _stdout.mid_line:
            sys.stdout.write("\n")
            _stdout.mid_line = False
        sys.stdout.flush()
