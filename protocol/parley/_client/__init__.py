"""The client scripts use: a sans-IO core (``_core``) under a blocking and an asyncio API.

The asyncio API is imported on first use (``__getattr__``): the blocking client, and the
CLI on it, never pay for importing asyncio.
"""

from typing import TYPE_CHECKING, Any

from ._sync import Client, Model, Response, connect

if TYPE_CHECKING:
    from ._async import AsyncClient, AsyncModel, AsyncResponse, connect_async

__all__ = ["AsyncClient", "AsyncModel", "AsyncResponse", "Client", "Model", "Response", "connect", "connect_async"]

ASYNC_NAMES = frozenset({"AsyncClient", "AsyncModel", "AsyncResponse", "connect_async"})


def __getattr__(name: str) -> Any:
    if name in ASYNC_NAMES:
        from . import _async

        return getattr(_async, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
