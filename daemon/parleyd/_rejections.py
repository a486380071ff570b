"""The log of messages the daemon refused: one line each, a few a minute per connection.

A client's bad message is the client's fault, not the daemon's: it gets its JSON-RPC error
answer, and the log gets one line (what was wrong, which connection, how big) with no
traceback. A client sending a flood of them could otherwise fill the disk, so each connection
may log ``BURST`` lines per ``WINDOW`` seconds; the rest are counted, and the count is logged
once the window has passed. Tracebacks are for the daemon's own bugs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("parleyd.rejected")

BURST = 5
WINDOW = 60.0


class RejectionLog:
    """One per connection; ``connection()`` names it in the log (with its client's name once known)."""

    def __init__(self, connection: Callable[[], str]) -> None:
        self.connection = connection
        self._window_start = -WINDOW
        self._logged = 0
        self._suppressed = 0

    def note(self, kind: str, size: int, detail: str) -> None:
        now = time.monotonic()
        if now - self._window_start >= WINDOW:
            self._flush()
            self._window_start, self._logged = now, 0
        if self._logged >= BURST:
            self._suppressed += 1
            return
        self._logged += 1
        log.warning("rejected a message from %s (%s, %d bytes): %s", self.connection(), kind, size, detail[:200])

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._suppressed:
            log.warning("rejected %d more messages from %s (not logged one by one)", self._suppressed, self.connection())
            self._suppressed = 0
