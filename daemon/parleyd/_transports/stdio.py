"""One connection on the daemon's own stdin/stdout (``parley serve --stdio``)."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

from ._stream import StreamTransport

if TYPE_CHECKING:
    from .._daemon import Daemon


class _PipeWriter(asyncio.BaseProtocol):
    """Forwards the write pipe's flow control to the stream transport."""

    def __init__(self, stream: StreamTransport) -> None:
        self._stream = stream

    def pause_writing(self) -> None:
        self._stream.pause_writing()

    def resume_writing(self) -> None:
        self._stream.resume_writing()


async def serve_stdio(daemon: Daemon) -> StreamTransport:
    """Serve stdin/stdout; returns once set up. The transport's ``closed`` event marks the end."""
    loop = asyncio.get_running_loop()
    stream = StreamTransport(daemon, "stdio")
    # Duplicate the descriptors so asyncio owns (and may set non-blocking) its own copies.
    stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    writer, _ = await loop.connect_write_pipe(lambda: _PipeWriter(stream), stdout)
    stream.use_writer(writer)  # type: ignore[arg-type]
    stdin = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    await loop.connect_read_pipe(lambda: stream, stdin)
    return stream
