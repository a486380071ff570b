"""The client scripts use: a sans-IO core (``_core``) under a blocking and an asyncio API."""

from ._async import AsyncClient, AsyncModel, AsyncResponse, connect_async
from ._sync import Client, Model, Response, connect

__all__ = ["AsyncClient", "AsyncModel", "AsyncResponse", "Client", "Model", "Response", "connect", "connect_async"]
