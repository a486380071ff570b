"""What a connection needs from its transport: send bytes without blocking, and say how far behind it is."""

from __future__ import annotations

import abc


class Transport(abc.ABC):
    #: TCP and WebSocket clients must present the daemon's token in `initialize`.
    requires_token: bool = False
    kind: str

    @abc.abstractmethod
    def send(self, body: bytes) -> None:
        """Queue one message body (the transport frames it); never blocks."""

    @abc.abstractmethod
    def backlog(self) -> int:
        """Bytes queued and not yet taken by the OS."""

    @abc.abstractmethod
    async def drained(self) -> None:
        """Return once the backlog is small again (or the transport closed)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; the daemon is told through the connection's close."""
