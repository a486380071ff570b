"""How the CLI shows a response: text to stdout as it streams, reasoning dim on a terminal's stderr."""

from __future__ import annotations

import sys

import parley

_DIM, _RESET = "\033[2m", "\033[0m"


def show(response: parley.Response, *, stream: bool = True) -> None:
    """Print the response; Ctrl-C cancels it (the partial answer stays stored).

    Raises ``parley.ResponseFailed`` when it ended with an error event.
    """
    show_reasoning = sys.stderr.isatty()
    last = "\n"
    try:
        for event in response.stream_events():
            if event.type == "text" and stream and event.chunk:
                sys.stdout.write(event.chunk)
                sys.stdout.flush()
                last = event.chunk[-1]
            elif event.type == "reasoning" and show_reasoning:
                sys.stderr.write(f"{_DIM}{event.chunk}{_RESET}")
                sys.stderr.flush()
        if not stream:
            text = response.text()
            sys.stdout.write(text)
            last = text[-1:] or "\n"
        response.text()  # raises ResponseFailed after an error event
    except KeyboardInterrupt:
        response.cancel()
        raise
    finally:
        if last != "\n":
            sys.stdout.write("\n")
        sys.stdout.flush()
