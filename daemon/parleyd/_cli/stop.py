"""``parley stop``: stop the running daemon gracefully, and wait until it has stopped.

The protocol has no shutdown method. The daemon stops cleanly on SIGTERM: its
running responses end ``interrupted`` and are stored, its connections close, its
socket is removed. So this asks the daemon for its pid (``daemon/status``, on
its unix socket, which is on this machine), sends it SIGTERM, and waits for its
lock file (beside the socket) to be free: the OS frees it when the process is gone.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
from pathlib import Path

import parley

_WAIT = 30.0  # seconds


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stop", help="stop the running daemon; its running responses end as interrupted")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        client = parley.connect(autostart=False, client_name="parley-cli")
    except parley.ConnectError as exc:
        print(f"parley: {exc}: nothing to stop", file=sys.stderr)
        return 0
    with client:
        status = client.status()
    os.kill(status.pid, signal.SIGTERM)
    lock = Path(status.socket).with_suffix(".lock") if status.socket else None
    deadline = time.monotonic() + _WAIT
    while not _stopped(lock, status.pid):
        if time.monotonic() > deadline:
            raise SystemExit(f"parley: the daemon (pid {status.pid}) has not stopped after {_WAIT:.0f} s")
        time.sleep(0.05)
    print(f"Stopped the parley daemon (pid {status.pid}).")
    return 0


def _stopped(lock: Path | None, pid: int) -> bool:
    """Whether the daemon's process has ended: its lock can be taken (or, with no lock file, the
    pid is gone; a zombie still counts as running then)."""
    if lock is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock at once: a daemon starting now is not held up
    return True
