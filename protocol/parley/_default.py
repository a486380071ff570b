"""``parley.get_model()`` and ``parley.get_async_model()``: llm's module-level API, on the user's daemon.

A script written for llm (``import parley as llm``) has no client to hold: one
blocking client per process is made on first use (``connect()``, which starts
the daemon if none runs) and closed at exit. An asyncio client belongs to its
event loop: the async models connect one per loop (``_default_async``).
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

from ._client._base import select_model
from ._client._sync import Client, Model, connect

if TYPE_CHECKING:
    from ._client._async import AsyncModel

__all__ = ["get_async_model", "get_model", "get_models"]

_client: Client | None = None


def default_client() -> Client:
    """The process's blocking client, connected (again, after a lost connection) on demand."""
    global _client
    if _client is None or _client._core.closed is not None:
        if _client is None:
            atexit.register(_close)
        _client = connect()
    return _client


def _close() -> None:
    if _client is not None:
        _client.close()


def get_model(name: str | None = None) -> Model:
    """The model with this id or alias, or the daemon's default; ``UnknownModel`` if none."""
    return default_client().get_model(name)


def get_models() -> list[Model]:
    """Every model the daemon serves."""
    client = default_client()
    return [Model(client, info) for info in client.models()]


def get_async_model(name: str | None = None) -> AsyncModel:
    """As ``get_model``, for asyncio; not awaited (as llm's): the model is looked up now, and
    its prompts connect in the loop that sends them."""
    from ._default_async import DefaultAsyncModel

    return DefaultAsyncModel(None, select_model(default_client().models(), name))
