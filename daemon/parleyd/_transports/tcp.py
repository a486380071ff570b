"""TCP, on loopback unless asked otherwise; clients must present the daemon's token."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._stream import StreamTransport

if TYPE_CHECKING:
    from .._daemon import Daemon


async def listen_tcp(daemon: Daemon, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: StreamTransport(daemon, "tcp", requires_token=True), host, port)
