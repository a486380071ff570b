"""Running the daemon in the foreground: one per socket, guarded by a lock file."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import signal
from collections.abc import Iterator

from ._config import DaemonConfig
from ._daemon import create_daemon
from ._transports import listen_tcp, listen_unix, listen_websocket, serve_stdio

log = logging.getLogger(__name__)


class AlreadyRunning(Exception):
    """Another daemon holds the lock of this socket."""


@contextlib.contextmanager
def daemon_lock(config: DaemonConfig) -> Iterator[None]:
    """Hold the socket's lock file for the daemon's lifetime; the OS drops it if we die."""
    config.lock_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(config.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise AlreadyRunning(f"a parley daemon (pid {pid}) already serves {config.socket}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


async def serve(config: DaemonConfig) -> None:
    """Serve until a signal, the idle timeout, or (with --stdio) the end of stdin."""
    daemon = create_daemon(config)
    await daemon.mcp.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = []
    if config.tcp:
        servers.append(await listen_tcp(daemon, *config.tcp))
    if config.ws:
        servers.append(await listen_websocket(daemon, *config.ws))
    http = None
    if config.http:
        from ._http import listen_http  # starlette and uvicorn: only for a daemon that serves HTTP

        http = await listen_http(daemon, *config.http)
        servers.append(http)
    # Last: clients (and autostart) take a connectable socket to mean the daemon is fully up.
    servers.append(await listen_unix(daemon, config.socket))
    waiters = [loop.create_task(stop.wait())]
    if config.stdio:
        stdio = await serve_stdio(daemon)
        waiters.append(loop.create_task(stdio.wait_closed()))
    if config.idle_timeout:
        waiters.append(loop.create_task(_idle(daemon, config.idle_timeout)))
    # What start-up made (modules, the store, the models) lives as long as the daemon: out of
    # the collector's sight, a full collection no longer walks all of it again (tens of ms each).
    gc.freeze()
    log.info("parleyd %s (pid %d) serving %s", daemon.version, os.getpid(), _addresses(config))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for server in servers:
            server.close()
        await daemon.shutdown()
        if http is not None:
            await http.wait_closed()
        config.socket.unlink(missing_ok=True)
        log.info("parleyd stopped")


async def _idle(daemon, timeout: float) -> None:  # type: ignore[no-untyped-def]
    while (idle := daemon.idle_for()) < timeout:
        await asyncio.sleep(max(timeout - idle, 0.5))


def _addresses(config: DaemonConfig) -> str:
    parts = [f"unix:{config.socket}"]
    if config.tcp:
        parts.append("tcp://%s:%d" % config.tcp)
    if config.ws:
        parts.append("ws://%s:%d" % config.ws)
    if config.http:
        parts.append("http://%s:%d" % config.http)
    if config.stdio:
        parts.append("stdio")
    return ", ".join(parts)
