"""JSON-RPC 2.0 over NDJSON on a pair of file descriptors: one message per line, both directions.

``Peer`` reads lines in a thread (no line-length limit below ``MAX_LINE``: a
1 MB prompt is one line), hands requests and notifications to a ``Handler``
(each request in a task of its own, so that ``session/cancel`` is read while a
``session/prompt`` runs), sends requests of its own (``session/request_permission``,
``fs/read_text_file``) and matches their answers. Everything it writes goes
through one queue, in the order it was queued: a handler that sends its
``session/update`` notifications and then returns has its answer written after
them, and an answer is written before anything queued after it.

A line that is not JSON gets -32700 (``id: null``), a JSON value that is not a
JSON-RPC message -32600, and the peer reads on. A handler's unexpected
exception is logged (to stderr) and answered -32603: nothing but JSON-RPC is
ever written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec

from ._types import CancelRequestNotification

log = logging.getLogger("parley.acp")

#: The longest line read; a longer one is skipped and answered -32700.
MAX_LINE = 64 * 1024 * 1024

RequestId = int | str

#: Seconds the requests under way at EOF on stdin get to answer.
EOF_GRACE = 5.0

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800
RESOURCE_NOT_FOUND = -32002

_encode = msgspec.json.Encoder().encode
_TOO_LONG = object()


class AcpError(Exception):
    """An error answer: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> AcpError:
    return AcpError(INVALID_PARAMS, message)


class Handler(Protocol):
    async def request(self, method: str, params: msgspec.Raw, request_id: RequestId) -> Any: ...

    async def notification(self, method: str, params: msgspec.Raw) -> None: ...

    def cancel_request(self, request_id: RequestId) -> bool:
        """A ``$/cancel_request`` for a running request; True when the handler took care of it."""
        ...


class _Message(msgspec.Struct):
    jsonrpc: str | None = None
    id: RequestId | None = None
    method: str | None = None
    params: msgspec.Raw = msgspec.Raw(b"{}")
    result: msgspec.Raw = msgspec.Raw(b"")  # empty: absent
    error: dict[str, Any] | None = None


_decode_message = msgspec.json.Decoder(_Message).decode


class Peer:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[bytes | object | None] = asyncio.Queue()
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._next_id = 0
        self._waiting: dict[RequestId, asyncio.Future[Any]] = {}
        self._running: dict[RequestId, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = asyncio.Event()

    # ---- sending ------------------------------------------------------------------

    def notify(self, method: str, params: Any) -> None:
        self._queue({"jsonrpc": "2.0", "method": method, "params": params})

    async def request(self, method: str, params: Any, decode: Callable[[bytes], Any]) -> Any:
        """Ask the client; its error answer is raised as AcpError. Cancelling the caller sends
        ``$/cancel_request`` and stops waiting."""
        if self.closed.is_set():
            raise AcpError(INTERNAL_ERROR, "the client has gone")
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[Any] = self._loop.create_future()
        self._waiting[request_id] = future
        self._queue({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        try:
            raw = await future
        except asyncio.CancelledError:
            if self._waiting.pop(request_id, None) is not None:
                self.notify("$/cancel_request", {"requestId": request_id})
            raise
        try:
            return decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise AcpError(INVALID_PARAMS, f"the client's answer to {method} is invalid: {exc}") from exc

    def _answer(self, request_id: RequestId | None, result: Any = None, error: AcpError | None = None) -> None:
        if error is not None:
            self._queue({"jsonrpc": "2.0", "id": request_id, "error": error.to_wire()})
        else:
            self._queue({"jsonrpc": "2.0", "id": request_id, "result": result})

    def _queue(self, message: dict[str, Any]) -> None:
        if not self.closed.is_set():
            self._outbox.put_nowait(_encode(message) + b"\n")

    async def _write(self) -> None:
        """Write what is queued, in order, in as few writes as there are batches."""
        while True:
            data = await self._outbox.get()
            if data is None:
                return
            chunks = [data]
            while not self._outbox.empty():
                more = self._outbox.get_nowait()
                if more is None:
                    await self._loop.run_in_executor(None, _write_all, self._write_fd, b"".join(chunks))
                    return
                chunks.append(more)
            try:
                await self._loop.run_in_executor(None, _write_all, self._write_fd, b"".join(chunks))
            except OSError as exc:
                log.info("the client stopped reading (%s)", exc)
                self.closed.set()
                return

    # ---- receiving ----------------------------------------------------------------

    async def run(self, handler: Handler) -> None:
        """Serve until the client closes its end (EOF on the read side)."""
        threading.Thread(target=self._read_lines, name="acp-stdin", daemon=True).start()
        writer = self._loop.create_task(self._write())
        try:
            while (line := await self._lines.get()) is not None:
                self._receive(handler, line)
        finally:
            # EOF: the client sends nothing more, but may still read; requests under way get
            # a moment to answer, then are cancelled (and answered -32800), and the queue is written.
            if self._running:
                await asyncio.wait(list(self._running.values()), timeout=EOF_GRACE)
            for future in self._waiting.values():
                future.cancel()
            self._waiting.clear()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)
            self._outbox.put_nowait(None)
            await asyncio.wait([writer], timeout=5)
            self.closed.set()

    def _read_lines(self) -> None:
        with os.fdopen(self._read_fd, "rb", buffering=1 << 16, closefd=False) as stream:
            try:
                while line := stream.readline(MAX_LINE + 1):
                    if len(line) > MAX_LINE and not line.endswith(b"\n"):
                        while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
                            pass
                        self._loop.call_soon_threadsafe(self._lines.put_nowait, _TOO_LONG)
                        continue
                    self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except (OSError, ValueError) as exc:
                log.info("reading stdin failed: %s", exc)
            finally:
                self._loop.call_soon_threadsafe(self._lines.put_nowait, None)

    def _receive(self, handler: Handler, line: bytes | object) -> None:
        if line is _TOO_LONG:
            return self._answer(None, error=AcpError(PARSE_ERROR, f"a line over {MAX_LINE} bytes was dropped"))
        assert isinstance(line, bytes)
        if not line.strip():
            return
        try:
            message = _decode_message(line)
        except msgspec.ValidationError as exc:  # (a DecodeError too: first)
            return self._answer(None, error=AcpError(INVALID_REQUEST, f"not a JSON-RPC message: {exc}"))
        except msgspec.DecodeError as exc:
            return self._answer(None, error=AcpError(PARSE_ERROR, f"not JSON: {exc}"))
        if message.method is None:
            return self._receive_answer(message)
        if message.jsonrpc != "2.0":
            if message.id is not None:
                self._answer(message.id, error=AcpError(INVALID_REQUEST, 'a JSON-RPC 2.0 message needs "jsonrpc": "2.0"'))
            return
        if message.id is None:
            if message.method == "$/cancel_request":
                return self._cancel_request(handler, message.params)
            self._spawn(self._notification(handler, message.method, message.params))
        else:
            task = self._spawn(self._request(handler, message.id, message.method, message.params))
            self._running[message.id] = task
            task.add_done_callback(lambda _t, rid=message.id: self._running.pop(rid, None))

    def _receive_answer(self, message: _Message) -> None:
        future = self._waiting.pop(message.id, None) if message.id is not None else None
        if future is None or future.done():
            return  # not ours, or given up on
        if message.error is not None:
            error = message.error
            future.set_exception(AcpError(int(error.get("code", INTERNAL_ERROR)), str(error.get("message", "")), error.get("data")))
        else:
            future.set_result(bytes(message.result) or b"null")

    async def _request(self, handler: Handler, request_id: RequestId, method: str, params: msgspec.Raw) -> None:
        try:
            result = await handler.request(method, params, request_id)
        except AcpError as exc:
            self._answer(request_id, error=exc)
        except asyncio.CancelledError:
            self._answer(request_id, error=AcpError(REQUEST_CANCELLED, "the request was cancelled"))
        except Exception as exc:
            log.exception("%s failed", method)
            self._answer(request_id, error=AcpError(INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"))
        else:
            self._answer(request_id, result)

    async def _notification(self, handler: Handler, method: str, params: msgspec.Raw) -> None:
        try:
            await handler.notification(method, params)
        except AcpError as exc:
            log.warning("%s: %s", method, exc.message)
        except Exception:
            log.exception("%s failed", method)

    def _cancel_request(self, handler: Handler, raw: msgspec.Raw) -> None:
        try:
            request_id = msgspec.json.decode(raw, type=CancelRequestNotification).request_id
        except (msgspec.ValidationError, msgspec.DecodeError):
            return
        task = self._running.get(request_id)
        if task is None:
            return
        if not handler.cancel_request(request_id):
            task.cancel()

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task = self._loop.create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run work in the background for as long as the peer serves."""
        return self._spawn(work)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
