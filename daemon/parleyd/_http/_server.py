"""uvicorn serving the front door's app in the daemon's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from ._app import create_app

if TYPE_CHECKING:
    from .._daemon import Daemon


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon owns SIGTERM and SIGINT: it stops this server itself


class HttpServer:
    def __init__(self, server: _Server, task: asyncio.Task[None]) -> None:
        self._server = server
        self._task = task

    def close(self) -> None:
        self._server.should_exit = True

    async def wait_closed(self) -> None:
        await self._task


async def listen_http(daemon: Daemon, host: str, port: int) -> HttpServer:
    """Start serving; returns once the port is bound (OSError if it cannot be)."""
    config = uvicorn.Config(create_app(daemon), host=host, port=port, lifespan="off", access_log=False, log_config=None, timeout_graceful_shutdown=3)
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(), name="http")
    while not server.started:
        if task.done():
            task.result()  # uvicorn's own error; it exits when the port is taken
            raise OSError(f"cannot listen on http://{host}:{port}")
        await asyncio.sleep(0.01)
    return HttpServer(server, task)
