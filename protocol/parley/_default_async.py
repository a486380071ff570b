"""The async models of ``parley.get_async_model()``: each event loop gets its own client.

``asyncio.run`` makes a loop per call, and a client's reader task lives in one
loop, so a model from ``get_async_model`` connects in the loop of the prompt it
sends, and reuses that loop's client after. The client is closed when the loop's
tasks are cancelled (``asyncio.run`` does so as it ends), and forgotten with the loop.
"""

from __future__ import annotations

import asyncio
import weakref

from ._client._async import AsyncClient, AsyncModel, connect_async

#: Each loop's connection, as a task: prompts sent at once wait for the one connection.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[AsyncClient]] = weakref.WeakKeyDictionary()
_closers: set[asyncio.Task[None]] = set()


class DefaultAsyncModel(AsyncModel):
    async def _connected(self) -> AsyncClient:
        loop = asyncio.get_running_loop()
        connecting = _clients.get(loop)
        if connecting is None or _failed(connecting):
            connecting = _clients[loop] = loop.create_task(_connect())
        self._client = await asyncio.shield(connecting)
        return self._client


async def _connect() -> AsyncClient:
    client = await connect_async()
    closer = asyncio.get_running_loop().create_task(_close_at_the_end(client))
    _closers.add(closer)
    closer.add_done_callback(_closers.discard)
    return client


async def _close_at_the_end(client: AsyncClient) -> None:
    """Wait until cancelled (the loop is ending), then close the client."""
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        await client.close()


def _failed(connecting: asyncio.Task[AsyncClient]) -> bool:
    """Whether the loop's connection must be made again: it failed, or has since closed."""
    if not connecting.done():
        return False
    return connecting.cancelled() or connecting.exception() is not None or connecting.result()._core.closed is not None
