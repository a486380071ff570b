"""WAL checkpoints on a thread of their own, never on the daemon's event loop.

SQLite's automatic checkpoint runs inside the commit that crosses its threshold,
so every few hundred commits one of them (on the event loop) took the time of
copying the whole WAL into the database. The store's connection turns it off
(``wal_autocheckpoint = 0``); this thread, with a connection of its own, runs a
PASSIVE checkpoint (it never blocks a writer; sqlite3 lets go of the GIL meanwhile)
at most once a ``PERIOD``, while commits come, so the WAL stays small and is
reused from its start.
"""

from __future__ import annotations

import logging
import pathlib
import sqlite3
import threading

__all__ = ["Checkpointer", "PERIOD"]

log = logging.getLogger(__name__)

PERIOD = 1.0  # seconds: commits within one are checkpointed together


class Checkpointer:
    def __init__(self, path: pathlib.Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """A transaction committed: look at the WAL soon."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=5.0, isolation_level=None)
        try:
            while True:
                self._wake.wait()
                if self._stopping.wait(PERIOD):
                    return
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # busy or locked: the next commit tries again
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()
