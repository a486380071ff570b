"""The bridge's one connection to the user's daemon, through parley's asyncio client.

Conversations and models go through the client's public API. The bridge needs a
little more for responses: the raw event stream of one (to translate each event
as it arrives, and to take up a running response at a given ``seq``: PROTOCOL.md
§7.1), and ``prompt``/``reply`` with params given as dicts. Those uses of the
client's internals are all here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import parley
from parley._client._async import AsyncClient
from parley._client._core import ResponseStream
from parley._types import (
    Conversation,
    ConversationSummary,
    ModelInfo,
    ResponseRecord,
    StartedResult,
    ToolApproveParams,
    ToolApproveResult,
    ToolExecuteParams,
    ToolExecuteResult,
)

log = logging.getLogger("parley.acp")

ToolHandler = Callable[[ToolExecuteParams], Awaitable[ToolExecuteResult]]
ApproveHandler = Callable[[ToolApproveParams], Awaitable[ToolApproveResult]]


class Link:
    """Connects on first use (starting the daemon if none runs), and again after the connection ends."""

    def __init__(self, tool_handler: ToolHandler, approve: ApproveHandler, url: str | None = None) -> None:
        self._tool_handler = tool_handler
        self._approve = approve
        self._url = url
        self._client: AsyncClient | None = None
        self._connecting: asyncio.Lock = asyncio.Lock()

    async def client(self) -> AsyncClient:
        async with self._connecting:
            if self._client is None or self._client._core.closed is not None:
                self._client = await parley.connect_async(self._url, client_name="parley-acp")
                self._client.tool_handler = self._tool_handler
                self._client.approve = self._approve
                log.info("connected to parleyd %s", self._client.server_info.version)
            return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def call(self, method: str, params: Any) -> Any:
        """A request with params as a dict (or a Struct); its decoded result."""
        return await (await self.client())._call(method, params)

    # ---- responses ----------------------------------------------------------------

    async def start(self, method: str, params: dict[str, Any]) -> tuple[StartedResult, ResponseStream]:
        """``prompt`` or ``reply``: its ids, and the stream of its events (subscribed from seq 1)."""
        client = await self.client()
        started = await client._call(method, params)
        return started, client._core.open_stream(started.response_id)

    async def attach(self, response_id: str, after_seq: int = 0) -> ResponseStream:
        """Subscribe to a response from after ``after_seq``: every later event once, stored then live.
        Returns once the events it had when subscribed have arrived (the replay's ``lastSeq``)."""
        client = await self.client()
        core = client._core
        stream = core._stream(response_id)
        stream.claimed = True
        stream.last_seq = max(stream.last_seq, after_seq)
        subscribed = await client._call("response/subscribe", {"responseId": response_id, "afterSeq": stream.last_seq})
        while stream.last_seq < subscribed.last_seq and stream.done is None:
            await self.wait(stream, len(stream.events))
        return stream

    async def wait(self, stream: ResponseStream, seen: int) -> None:
        """Until the stream has more than ``seen`` events, or is done; ConnectionClosed when it never will be."""
        client = await self.client()
        while len(stream.events) <= seen and stream.done is None:
            if stream.failure is not None:
                raise stream.failure
            await client._receive()

    async def cancel(self, response_id: str) -> str:
        return (await self.call("response/cancel", {"responseId": response_id})).status

    async def response(self, response_id: str) -> ResponseRecord:
        return await self.call("response/get", {"responseId": response_id})

    # ---- conversations and models -------------------------------------------------

    async def models(self) -> list[ModelInfo]:
        return await (await self.client()).models()

    async def create_conversation(self, *, model: str | None, cwd: str | None) -> str:
        return await (await self.client()).create_conversation(model=model, cwd=cwd)

    async def conversation(self, conversation_id: str) -> Conversation:
        return await (await self.client()).conversation(conversation_id)

    async def conversations(self, *, limit: int, before: str | None, cwd: str | None) -> list[ConversationSummary]:
        return await (await self.client()).conversations(limit=limit, before=before, cwd=cwd)

    async def delete_conversation(self, conversation_id: str) -> None:
        await (await self.client()).delete_conversation(conversation_id)
