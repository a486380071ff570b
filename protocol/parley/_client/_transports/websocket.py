"""WebSocket: one JSON-RPC message per text frame; needs the token like TCP.

No size limit (the client trusts its daemon) and no compression (on a loopback
it costs more than it saves).
"""

from __future__ import annotations

import contextlib

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed as WebSocketClosed
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from ..._errors import ConnectError, ConnectionClosed
from .base import AsyncTransport, Transport

CONNECT_TIMEOUT = 15.0


class WebSocketTransport(Transport):
    def __init__(self, ws: ClientConnection) -> None:
        self._closing = contextlib.ExitStack()
        self._ws = self._closing.enter_context(ws)  # entered, as websockets 17 wants a sync connection used

    @classmethod
    def open(cls, url: str) -> WebSocketTransport:
        try:
            return cls(connect(url, open_timeout=CONNECT_TIMEOUT, max_size=None, compression=None))
        except (InvalidHandshake, InvalidURI) as exc:
            raise ConnectError(f"no parley daemon answers at {url}: {exc}") from exc

    def send(self, body: bytes) -> None:
        try:
            self._ws.send(body, text=True)
        except WebSocketClosed as exc:
            raise ConnectionClosed(f"the daemon closed the connection: {exc}") from exc

    def receive(self) -> list[bytes]:
        try:
            bodies = [self._ws.recv(decode=False)]
        except WebSocketClosed as exc:
            raise ConnectionClosed(f"the daemon closed the connection: {exc}") from exc
        try:
            while True:  # and whatever else has arrived, without waiting
                bodies.append(self._ws.recv(timeout=0, decode=False))
        except (TimeoutError, WebSocketClosed):  # a close is raised by the next call
            return bodies

    def close(self) -> None:
        self._closing.close()


class AsyncWebSocketTransport(AsyncTransport):
    def __init__(self, ws: AsyncConnection) -> None:
        self._ws = ws

    @classmethod
    async def open(cls, url: str) -> AsyncWebSocketTransport:
        try:
            return cls(await async_connect(url, open_timeout=CONNECT_TIMEOUT, max_size=None, compression=None))
        except (InvalidHandshake, InvalidURI) as exc:
            raise ConnectError(f"no parley daemon answers at {url}: {exc}") from exc

    async def send(self, body: bytes) -> None:
        try:
            await self._ws.send(body, text=True)
        except WebSocketClosed as exc:
            raise ConnectionClosed(f"the daemon closed the connection: {exc}") from exc

    async def receive(self) -> list[bytes]:
        try:
            return [await self._ws.recv(decode=False)]
        except WebSocketClosed as exc:
            raise ConnectionClosed(f"the daemon closed the connection: {exc}") from exc

    async def close(self) -> None:
        await self._ws.close()
