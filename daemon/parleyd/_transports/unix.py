"""The default transport: a unix socket, mode 0600, in the user's runtime dir."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ._stream import StreamTransport

if TYPE_CHECKING:
    from .._daemon import Daemon


async def listen_unix(daemon: Daemon, path: Path) -> asyncio.Server:
    """Listen on ``path``; the caller holds the daemon lock, so a file there is stale."""
    path.unlink(missing_ok=True)
    old_umask = os.umask(0o177)  # the socket is created 0600: no window where others can connect
    try:
        server = await asyncio.get_running_loop().create_unix_server(lambda: StreamTransport(daemon, "unix"), str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server
