"""What the clients need from a connection: whole JSON-RPC messages in and out.

Framing is the transport's business: byte streams (unix socket, TCP) carry
``Content-Length`` frames, a WebSocket carries one message per text frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Transport(ABC):
    @abstractmethod
    def send(self, body: bytes) -> None:
        """Send one message body."""

    @abstractmethod
    def receive(self) -> list[bytes]:
        """Block until at least one message arrives; return every one that is complete.

        Raises ``ConnectionClosed`` once the daemon has closed the connection.
        """

    @abstractmethod
    def close(self) -> None: ...


class AsyncTransport(ABC):
    @abstractmethod
    async def send(self, body: bytes) -> None: ...

    @abstractmethod
    async def receive(self) -> list[bytes]:
        """As ``Transport.receive``."""

    @abstractmethod
    async def close(self) -> None: ...
