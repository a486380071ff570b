"""``parley stdio``: what an editor launches — its stdin/stdout joined to the user's daemon.

Bytes pass through untouched in both directions, so every client shares the
one daemon (and its conversations and running responses). The daemon is
started first if none runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

from parley._client._connect import Starter, parse_target

_CHUNK = 1 << 16


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stdio", help="bridge stdin/stdout to the daemon (what editors launch); starts it if needed")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sock = _connect()
    threading.Thread(target=_stdin_to_socket, args=(sock,), daemon=True).start()
    while data := sock.recv(_CHUNK):
        _write_all(sys.stdout.fileno(), data)
    return 0


def _connect() -> socket.socket:
    target = parse_target(None)
    starter = Starter(target, autostart=True)
    while True:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(target.address)
            return sock
        except OSError as exc:
            sock.close()
            time.sleep(starter.retry_after(exc))


def _stdin_to_socket(sock: socket.socket) -> None:
    try:
        while data := os.read(sys.stdin.fileno(), _CHUNK):
            sock.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sock.shutdown(socket.SHUT_WR)  # the editor is gone: let the daemon close its side
        except OSError:
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
