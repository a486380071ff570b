"""A small HTTP/1.1 server on 127.0.0.1 that replays scripted byte streams, for the provider tests.

Real sockets, its own thread and event loop: the providers under test connect to it
exactly as to OpenAI or Anthropic. Each request takes the next queued :class:`Reply`;
a reply's body is a script of byte pieces (each sent as its own chunk and flushed)
and steps: :class:`Pause` (wait), :class:`Stall` (send nothing until the client goes
away: a read timeout), :class:`Drop` (close the connection mid-body), :class:`Reset`
(abort it with a TCP RST). A callable piece is called at send time (the benchmark
stamps chunks with it). The server records every request (:attr:`ReplayServer.requests`)
and how each reply ended (:attr:`ReplayServer.outcomes`): ``complete``, ``client_closed``
(the client went away mid-body: a cancel or a timeout), ``dropped`` or ``reset``.

Also here: builders for the wire formats the providers document: OpenAI chat-completion
chunks (``data: {…}`` lines ending with ``data: [DONE]``) and Anthropic Messages events
(``event: NAME`` / ``data: {…}``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Stall:
    """Send nothing more until the client closes the connection (or the server stops)."""


@dataclass(frozen=True)
class Drop:
    """Close the connection (FIN) in the middle of the body: no terminating chunk."""


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST in the middle of the body."""


Piece = bytes | Pause | Stall | Drop | Reset | Callable[[], bytes]


@dataclass
class Reply:
    status: int = 200
    body: list[Piece] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    #: chunked transfer encoding (streams); False sends a content-length (whole bodies)
    chunked: bool = True


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    529: "Overloaded",
}


class ReplayServer:
    def __init__(self, responder: Callable[[Received], Reply] | None = None) -> None:
        #: when given, makes the reply to each request (the queue is not used)
        self.responder = responder
        self.replies: deque[Reply] = deque()
        self.requests: list[Received] = []
        self.outcomes: list[str] = []
        self.connections = 0
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- lifecycle --------------------------------------------------------------

    def start(self) -> Self:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="replay-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the replay server did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()

        async def main() -> None:
            self._stopping = asyncio.Event()
            self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            await self._stopping.wait()
            self._server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        loop.run_until_complete(main())
        loop.close()

    def close(self) -> None:
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- scripting and inspection -------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        with self._changed:
            self.replies.extend(replies)

    def wait_outcomes(self, count: int, timeout: float = 10.0) -> list[str]:
        """Block until ``count`` replies have ended; their outcomes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.outcomes) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.outcomes)} of {count} replies ended: {self.outcomes}")
                self._changed.wait(left)
            return list(self.outcomes)

    async def await_outcomes(self, count: int, timeout: float = 10.0) -> list[str]:
        return await asyncio.to_thread(self.wait_outcomes, count, timeout)

    def _outcome(self, outcome: str) -> None:
        with self._changed:
            self.outcomes.append(outcome)
            self._changed.notify_all()

    # ---- one connection -------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        try:
            while True:
                request = await _read_request(reader, buffer)
                if request is None:
                    return
                with self._changed:
                    self.requests.append(request)
                    if self.responder is not None:
                        reply = self.responder(request)
                    else:
                        reply = self.replies.popleft() if self.replies else None
                if reply is None:
                    reply = Reply(
                        500,
                        [b'{"error": {"message": "the replay server has no reply queued"}}'],
                        {"content-type": "application/json"},
                        chunked=False,
                    )
                keep = await self._reply(reply, reader, writer, buffer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            if not writer.is_closing():
                writer.close()

    async def _reply(self, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, buffer: bytearray) -> bool:
        """Send one reply; whether the connection stays open for another request."""
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
        headers = dict(reply.headers)
        if reply.chunked:
            headers["transfer-encoding"] = "chunked"
        else:
            headers["content-length"] = str(sum(len(p) for p in reply.body if isinstance(p, bytes)))
        head += [f"{k}: {v}" for k, v in headers.items()]
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_watch(reader, buffer, gone))
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
            await writer.drain()
            for piece in reply.body:
                if gone.is_set():
                    self._outcome("client_closed")
                    return False
                if isinstance(piece, Pause):
                    await _sleep_unless(gone, piece.seconds)
                    continue
                if isinstance(piece, Stall):
                    await _sleep_unless(gone, None, self._stopping)
                    self._outcome("client_closed" if gone.is_set() else "stalled")
                    return False
                if isinstance(piece, Drop):
                    await writer.drain()
                    writer.close()
                    self._outcome("dropped")
                    return False
                if isinstance(piece, Reset):
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    self._outcome("reset")
                    return False
                data = piece() if callable(piece) else piece
                writer.write(b"%x\r\n%b\r\n" % (len(data), data) if reply.chunked else data)
                await writer.drain()
            if reply.chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            # let the client's close (if it stopped reading early) be seen before calling it complete
            await asyncio.sleep(0)
            self._outcome("client_closed" if gone.is_set() else "complete")
            return not gone.is_set()
        except (ConnectionError, OSError):
            self._outcome("client_closed")
            return False
        finally:
            watcher.cancel()
            await asyncio.wait([watcher])


async def _watch(reader: asyncio.StreamReader, buffer: bytearray, gone: asyncio.Event) -> None:
    """Notice the client closing the connection while a reply is being sent."""
    try:
        data = await reader.read(65536)
    except (ConnectionError, OSError):
        data = b""
    if data:
        buffer += data  # the start of the next request: keep it
    else:
        gone.set()


async def _sleep_unless(gone: asyncio.Event, seconds: float | None, stopping: asyncio.Event | None = None) -> None:
    waits = [asyncio.ensure_future(gone.wait())]
    if stopping is not None:
        waits.append(asyncio.ensure_future(stopping.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _read_request(reader: asyncio.StreamReader, buffer: bytearray) -> Received | None:
    while b"\r\n\r\n" not in buffer:
        data = await reader.read(65536)
        if not data:
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n")
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    method, path, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        data = await reader.read(65536)
        if not data:
            return None
        buffer += data
    body = bytes(buffer[:length])
    del buffer[:length]
    return Received(method, path, headers, body, time.monotonic())


# ---- the providers' wire formats ------------------------------------------------------


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: ``data`` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


_CHUNK_BASE = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion.chunk",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp_eb9dce56a8",
}


def openai_chunk(
    delta: dict[str, Any] | None = None, finish_reason: str | None = None, *, usage: dict[str, Any] | None = None, choices: bool = True
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` as OpenAI streams it (``choices: []`` for the usage chunk)."""
    chunk: dict[str, Any] = dict(_CHUNK_BASE)
    chunk["choices"] = [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}] if choices else []
    if usage is not None or not choices:
        chunk["usage"] = usage
    return chunk


def openai_stream(*chunks: dict[str, Any], done: bool = True) -> list[Piece]:
    pieces: list[Piece] = [sse(chunk) for chunk in chunks]
    if done:
        pieces.append(b"data: [DONE]\n\n")
    return pieces


def openai_text(*words: str, usage: dict[str, Any] | None = None, finish: str = "stop") -> list[Piece]:
    """A plain text answer: role chunk, one chunk per word, finish chunk, usage chunk, [DONE]."""
    chunks = [openai_chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [openai_chunk({"content": w}) for w in words]
    chunks.append(openai_chunk({}, finish))
    if usage is not None:
        chunks.append(openai_chunk(usage=usage, choices=False))
    return openai_stream(*chunks)


def anthropic_stream(*events: dict[str, Any]) -> list[Piece]:
    """Anthropic Messages events, each with its ``event:`` name (its ``type``)."""
    return [sse(event, event["type"]) for event in events]


def anthropic_message_start(input_tokens: int = 25, output_tokens: int = 1, model: str = "claude-sonnet-4-5-20250929") -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_01WBeG2NaYQ8w99747S3n8MZ",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "output_tokens": output_tokens,
                "service_tier": "standard",
            },
        },
    }


def anthropic_text(*words: str, input_tokens: int = 25, output_tokens: int = 15, stop_reason: str = "end_turn") -> list[Piece]:
    return anthropic_stream(
        anthropic_message_start(input_tokens),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}} for w in words),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    )


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, [json.dumps(body).encode()], {"content-type": "application/json", **(headers or {})}, chunked=False)


def openai_models(*ids: str) -> Reply:
    """``GET /v1/models`` as OpenAI answers it."""
    data = [{"id": i, "object": "model", "created": 1700000000, "owned_by": "system"} for i in ids]
    return json_reply(200, {"object": "list", "data": data})


def anthropic_models(*ids: str, has_more: bool = False) -> Reply:
    """One page of ``GET /v1/models`` as Anthropic answers it (newest first)."""
    data = [{"type": "model", "id": i, "display_name": i, "created_at": "2026-01-01T00:00:00Z"} for i in ids]
    return json_reply(200, {"data": data, "has_more": has_more, "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None})
