"""``Content-Length`` framed messages over a byte stream: what unix sockets and TCP share."""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

from ..._errors import ConnectionClosed
from ..._framing import FrameDecoder, encode_frame
from .base import AsyncTransport, Transport

if TYPE_CHECKING:  # the async classes' open() imports it: the blocking client never does
    import asyncio

#: Bytes asked of the socket per read: a burst of events is taken in few system calls.
READ_SIZE = 1 << 20
#: The client trusts its daemon, so it takes messages far over the daemon's own limit.
MAX_MESSAGE_SIZE = 1 << 32


class SocketTransport(Transport):
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._decoder = FrameDecoder(MAX_MESSAGE_SIZE)
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)

    def send(self, body: bytes) -> None:
        self._sock.sendall(encode_frame(body))

    def receive(self) -> list[bytes]:
        while True:
            n = self._sock.recv_into(self._buffer)
            if not n:
                raise ConnectionClosed("the daemon closed the connection")
            # A FrameFault (bytes that are not a frame) answers nothing that could be waited for.
            frames = self._decoder.feed(self._view[:n])  # type: ignore[arg-type]  # a view: no copy
            bodies = [body for body in frames if type(body) is bytes]
            if bodies:
                return bodies

    def close(self) -> None:
        self._sock.close()


class AsyncStreamTransport(AsyncTransport):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(MAX_MESSAGE_SIZE)

    async def send(self, body: bytes) -> None:
        self._writer.write(encode_frame(body))
        await self._writer.drain()

    async def receive(self) -> list[bytes]:
        while True:
            data = await self._reader.read(READ_SIZE)
            if not data:
                raise ConnectionClosed("the daemon closed the connection")
            bodies = [body for body in self._decoder.feed(data) if type(body) is bytes]
            if bodies:
                return bodies

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
