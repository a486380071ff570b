"""TCP, usually to a daemon on another machine or in a container; needs the token."""

from __future__ import annotations

import socket

from .stream import READ_SIZE, AsyncStreamTransport, SocketTransport

CONNECT_TIMEOUT = 15.0


class TcpTransport(SocketTransport):
    @classmethod
    def open(cls, address: tuple[str, int]) -> TcpTransport:
        sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)


class AsyncTcpTransport(AsyncStreamTransport):
    @classmethod
    async def open(cls, address: tuple[str, int]) -> AsyncTcpTransport:
        import asyncio

        host, port = address
        connecting = asyncio.open_connection(host, port, limit=READ_SIZE)
        return cls(*await asyncio.wait_for(connecting, CONNECT_TIMEOUT))
