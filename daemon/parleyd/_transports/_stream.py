"""A Content-Length framed byte stream (unix socket, TCP, stdio pipes) as an asyncio protocol.

Sends are gathered and written once per event-loop turn (by the daemon's outbox,
for every connection at once), so a burst of events costs one system call instead
of one each; the answers to a read are written as soon as the read is handled. The
backlog the connection checks for lag is what is gathered plus what the OS has not
yet taken.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from parley._framing import FrameDecoder, frame_header

from ._base import Transport

if TYPE_CHECKING:
    from .._connection import Connection
    from .._daemon import Daemon

log = logging.getLogger(__name__)
_HIGH_WATER = 256 * 1024  # asyncio pauses our catch-up writes above this


class StreamTransport(asyncio.Protocol, Transport):
    def __init__(self, daemon: Daemon, kind: str, *, requires_token: bool = False) -> None:
        self.daemon = daemon
        self.kind = kind
        self.requires_token = requires_token
        self._decoder = FrameDecoder(daemon.config.max_message_size)
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.BaseTransport | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._flush_scheduled = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._closed = asyncio.Event()
        self.connection: Connection | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._reader = transport
        if self._writer is None:  # a socket writes where it reads; stdio sets a pipe first
            self.use_writer(transport)  # type: ignore[arg-type]
        self.connection = self.daemon.open_connection(self)

    def data_received(self, data: bytes) -> None:
        assert self.connection is not None
        self._flush_scheduled = True  # what is sent meanwhile goes out at the end of this read
        for item in self._decoder.feed(data):
            if isinstance(item, bytes):
                self.connection.receive(item)
            else:
                self.connection.receive_fault(item)
        self.flush()  # the answers to what arrived at once, all in one write, not a loop turn later

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed.set()
        self._can_write.set()
        if self.connection is not None:
            self.daemon.close_connection(self.connection)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # Transport

    def use_writer(self, writer: asyncio.WriteTransport) -> None:
        writer.set_write_buffer_limits(high=_HIGH_WATER)
        self._writer = writer

    def send(self, body: bytes) -> None:
        if self._closed.is_set():
            return
        self._pending += (frame_header(body), body)
        self._pending_bytes += len(body)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.daemon.outbox.want(self)

    def flush(self) -> None:
        """Write what was gathered (the outbox calls it at the end of the turn)."""
        self._flush_scheduled = False
        if self._pending and self._writer is not None and not self._writer.is_closing():
            self.daemon.group_commit.barrier()  # what these bytes tell of is committed first
            self._writer.writelines(self._pending)
        self._pending = []
        self._pending_bytes = 0

    def backlog(self) -> int:
        buffered = self._writer.get_write_buffer_size() if self._writer is not None else 0
        return self._pending_bytes + buffered

    async def drained(self) -> None:
        await asyncio.sleep(0)  # the gathered sends reach the OS transport first
        await self._can_write.wait()  # then wait while asyncio has paused writing

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def close(self) -> None:
        """Close after what is queued is written (an error answer, say)."""
        self.flush()
        for transport in (self._writer, self._reader):
            if transport is not None:
                transport.close()
