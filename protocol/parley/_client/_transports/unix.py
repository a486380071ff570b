"""The unix socket: the default transport, and the fastest."""

from __future__ import annotations

import socket

from .stream import READ_SIZE, AsyncStreamTransport, SocketTransport


class UnixTransport(SocketTransport):
    @classmethod
    def open(cls, path: str) -> UnixTransport:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return cls(sock)


class AsyncUnixTransport(AsyncStreamTransport):
    @classmethod
    async def open(cls, path: str) -> AsyncUnixTransport:
        import asyncio

        return cls(*await asyncio.open_unix_connection(path, limit=READ_SIZE))
