"""WebSocket: one JSON-RPC message per text frame, a token like TCP, and no browsers.

Browser pages send an ``Origin`` header and could otherwise reach a loopback
daemon from any website; a request that carries one is refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ._base import Transport

if TYPE_CHECKING:
    from .._daemon import Daemon

log = logging.getLogger(__name__)


class WebSocketTransport(Transport):
    kind = "ws"
    requires_token = True

    def __init__(self, ws: ServerConnection, barrier: Callable[[], None]) -> None:
        self._ws = ws
        self._barrier = barrier  # the group commit's: what a message tells of is committed before it leaves
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queued_bytes = 0
        self._drained = asyncio.Event()
        self._drained.set()

    def send(self, body: bytes) -> None:
        self._queue.put_nowait(body)
        self._queued_bytes += len(body)
        self._drained.clear()

    def backlog(self) -> int:
        return self._queued_bytes

    async def drained(self) -> None:
        await self._drained.wait()

    def close(self) -> None:
        """Close after what is queued is sent (an error answer, say)."""

        async def close_when_drained() -> None:
            await self.drained()
            await self._ws.close()

        asyncio.get_running_loop().create_task(close_when_drained())

    async def write_loop(self) -> None:
        """Send queued messages in order, at the pace the client reads them."""
        try:
            while True:
                body = await self._queue.get()
                self._barrier()
                await self._ws.send(body, text=True)
                self._queued_bytes -= len(body)
                if self._queue.empty():
                    self._drained.set()
        except ConnectionClosed:
            pass
        finally:
            self._drained.set()


def _refuse_browsers(connection: ServerConnection, request: Request) -> Response | None:
    if request.headers.get("Origin") is not None:
        return connection.respond(HTTPStatus.FORBIDDEN, "browser origins are refused\n")
    return None


async def listen_websocket(daemon: Daemon, host: str, port: int) -> Server:
    async def handle(ws: ServerConnection) -> None:
        transport = WebSocketTransport(ws, daemon.group_commit.barrier)
        connection = daemon.open_connection(transport)
        writer = asyncio.get_running_loop().create_task(transport.write_loop())
        try:
            async for message in ws:
                connection.receive(message.encode() if isinstance(message, str) else message)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            daemon.close_connection(connection)

    return await serve(
        handle, host, port, max_size=daemon.config.max_message_size, process_request=_refuse_browsers, compression=None
    )
