"""A raw JSON-RPC connection for tests: real bytes over a real transport, nothing of the client library.

Tests of the protocol itself (garbage bytes, bad params, seqs) need to see exactly
what the daemon sends, so this speaks the wire directly.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from parley._framing import FrameDecoder, encode_frame


class RawConnection:
    def __init__(self, reader: asyncio.StreamReader | None, writer: Any, ws: Any = None) -> None:
        self._reader = reader
        self._writer = writer
        self._ws = ws
        self._decoder = FrameDecoder()
        self._next_id = 0
        self.answers: dict[Any, dict] = {}
        self.notifications: list[dict] = []
        self.done: set[str] = set()
        self._arrived = asyncio.Event()
        self._pump = asyncio.get_running_loop().create_task(self._read())
        self.closed = False

    @classmethod
    async def unix(cls, path: str) -> RawConnection:
        reader, writer = await asyncio.open_unix_connection(path, limit=2**24)
        return cls(reader, writer)

    @classmethod
    async def tcp(cls, host: str, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port, limit=2**24)
        return cls(reader, writer)

    @classmethod
    async def websocket(cls, url: str, **kwargs: Any) -> RawConnection:
        ws = await websockets.connect(url, max_size=None, **kwargs)
        return cls(None, None, ws)

    async def _read(self) -> None:
        try:
            while True:
                if self._ws is not None:
                    bodies = [(await self._ws.recv()).encode()]
                else:
                    data = await self._reader.read(1 << 20)
                    if not data:
                        break
                    bodies = self._decoder.feed(data)
                for body in bodies:
                    message = json.loads(body)
                    if "method" in message:
                        self.notifications.append(message)
                        if message["method"] == "response/event" and message["params"]["type"] == "done":
                            self.done.add(message["params"]["responseId"])
                    else:
                        self.answers[message.get("id")] = message
                    self._arrived.set()
        except (websockets.ConnectionClosed, ConnectionError):
            pass
        finally:
            self.closed = True
            self._arrived.set()

    async def send_bytes(self, data: bytes) -> None:
        if self._ws is not None:
            try:
                await self._ws.send(data.decode(errors="replace"))
            except websockets.ConnectionClosed as exc:
                raise ConnectionError("the daemon closed the connection") from exc
        else:
            self._writer.write(data)
            await self._writer.drain()

    async def send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        await self.send_bytes(body if self._ws is not None else encode_frame(body))

    async def call(self, method: str, params: Any = None, *, timeout: float = 10) -> dict:
        """Send a request; return its whole answer (with `result` or `error`)."""
        self._next_id += 1
        msg_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return await self.answer(msg_id, timeout=timeout)

    async def request(self, method: str, params: Any = None, **kwargs: Any) -> Any:
        """Send a request; return its result, failing the test on an error answer."""
        answer = await self.call(method, params, **kwargs)
        assert "error" not in answer, answer
        return answer["result"]

    async def answer(self, msg_id: Any, *, timeout: float = 10) -> dict:
        return await self.wait_for(lambda: self.answers.pop(msg_id, None), timeout=timeout)

    async def wait_for(self, find: Any, *, timeout: float = 10) -> Any:
        async def loop() -> Any:
            while (found := find()) is None:
                if self.closed:
                    raise ConnectionError("the daemon closed the connection")
                self._arrived.clear()
                await self._arrived.wait()
            return found

        return await asyncio.wait_for(loop(), timeout)

    async def initialize(self, **extra: Any) -> dict:
        return await self.request("initialize", {"protocolVersion": 1, "clientInfo": {"name": "tests"}, **extra})

    def events(self, response_id: str) -> list[dict]:
        return [n["params"] for n in self.notifications if n["method"] == "response/event" and n["params"]["responseId"] == response_id]

    async def until_done(self, response_id: str, *, timeout: float = 10) -> list[dict]:
        """Every event of the response this connection received, once `done` arrived."""
        await self.wait_for(lambda: True if response_id in self.done else None, timeout=timeout)
        return self.events(response_id)

    async def follow(self, response_id: str, *, timeout: float = 60) -> tuple[list[dict], int]:
        """Like until_done, but catching up after `response/lagged` as a client should.

        Returns the events and how many times this connection lagged."""
        handled = 0

        def lagged_or_done() -> Any:
            lags = [n for n in self.notifications[handled:] if n["method"] == "response/lagged"]
            return lags or (True if response_id in self.done else None)

        lags = 0
        while (found := await self.wait_for(lagged_or_done, timeout=timeout)) is not True:
            handled = len(self.notifications)
            for lag in found:
                lags += 1
                await self.send({"jsonrpc": "2.0", "id": f"catch-up-{lags}", "method": "response/subscribe", "params": {"responseId": response_id, "afterSeq": lag["params"]["lastSeq"]}})
        return self.events(response_id), lags

    async def close(self) -> None:
        self._pump.cancel()
        if self._ws is not None:
            await self._ws.close()
        elif self._writer is not None:
            self._writer.close()


def echo_script(*events: dict) -> str:
    return json.dumps({"events": list(events)})


async def only_response_settled(daemon) -> dict:
    """The record of the daemon's one response, once it is no longer running (over the unix socket)."""
    import asyncio

    conn = await daemon.connect("unix")
    try:
        [summary] = (await conn.request("conversations/list"))["conversations"]
        conversation = await conn.request("conversations/get", {"conversationId": summary["id"]})
        [response_id] = conversation["responseIds"]
        for _ in range(100):
            record = await conn.request("response/get", {"responseId": response_id})
            if record["status"] != "running":
                break
            await asyncio.sleep(0.05)
        return record
    finally:
        await conn.close()
