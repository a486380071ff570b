"""A response while it runs: the one place its events are numbered, logged, stored and sent.

Everything here runs on the event loop and ``emit`` never awaits, so numbering,
logging and fan-out of one event happen atomically: a subscriber added between
two events sees every later one exactly once. The model's stream runs in a task;
cancelling that task is how a response is cancelled, and whatever arrived
before is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import time
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

from parley._types import (
    AnyEvent,
    DoneEvent,
    ErrorEvent,
    ErrorInfo,
    PromptRecord,
    ReasoningEvent,
    ResponseRecord,
)

from ._assembly import Assembler
from ._envelope import opening, sealed
from ._finish import completed_reason
from ._models import SCHEMA_MISMATCH, Model, ModelFailure, ModelRequest, answer_text, mismatch
from ._store import Store
from ._tools import ToolChain, ToolClientGone

if TYPE_CHECKING:
    from ._group_commit import GroupCommit

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode
_EVENT_MESSAGE = b'{"jsonrpc":"2.0","method":"response/event","params":%b}'
_YIELD_EVERY = 256  # events a model may emit before the loop gets a turn

INTERRUPTED = ErrorInfo(code="interrupted", message="the daemon stopped while the response was running")


class Subscriber(Protocol):
    """Who gets a live response's events: a connection, or a front door's request."""

    def send_event(self, response_id: str, seq: int, message: bytes, event: AnyEvent) -> bool:
        """Take one event, as its JSON-RPC notification and stamped; False to be unsubscribed (it lags)."""
        ...


def event_message(params: bytes) -> bytes:
    """The JSON-RPC notification carrying one encoded event."""
    return _EVENT_MESSAGE % params


class LiveResponse:
    def __init__(
        self,
        *,
        response_id: str,
        conversation_id: str,
        model: Model,
        request: ModelRequest,
        options: dict | None,
        hide_reasoning: bool,
        created_at: str,
        store: Store,
        group: GroupCommit,
        tools: ToolChain | None = None,
    ) -> None:
        self.id = response_id
        self.conversation_id = conversation_id
        self.model = model
        self.request = request
        self.tools = tools
        self.options = options
        self.hide_reasoning = hide_reasoning
        self.created_at = created_at
        self.status: Literal["running", "completed", "cancelled", "error", "interrupted"] = "running"
        self.finish_reason: str | None = None
        self.log: list[bytes] = []  # encoded params of event seq n at log[n - 1]
        self.subscribers: set[Subscriber] = set()
        self.assembler = Assembler()
        self._store = store
        self._group = group
        self._opening = opening(response_id)
        self.bodies: list[bytes] = []  # every event's body, the form the store keeps (see _envelope)
        self._interrupting = False
        self._started = time.monotonic()
        self.task: asyncio.Task[None] | None = None
        self._offered = request.tools  # what the model is offered: the client's tools, and MCP tools

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"response {self.id}")

    async def cancel(self) -> str:
        """Stop the model, keep the partial output; the final status once stored."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.shield(self.task)
        return self.status

    async def interrupt(self) -> None:
        """The daemon is stopping: end the response as ``interrupted``."""
        self._interrupting = True
        await self.cancel()

    async def _run(self) -> None:
        status, reason = "completed", "stop"
        try:
            if self.tools is not None and self.tools.mcp is not None:  # the MCP tools join the client's
                self._offered = self.request.tools + await self.tools.mcp_specs()
            for round_number in itertools.count(1):
                if not await self._stream_round():
                    status = "error"
                    break
                calls = self.assembler.pending_tool_calls()
                if not calls or self.tools is None or round_number >= self.tools.chain_limit:
                    chain_limited = bool(calls) and self.tools is not None and self.tools.chain_limit > 1
                    reason = completed_reason(self.assembler.usage, tool_calls=bool(calls), chain_limited=chain_limited)
                    break
                self.assembler.open_message("tool")
                await self.tools.run_all(self.id, calls, self.emit)
                self.assembler.open_message("assistant")
            if status == "completed":
                self._check_answer()
        except asyncio.CancelledError:
            status = "cancelled"
        except ModelFailure as failure:
            self.emit(ErrorEvent(code=failure.kind, message=failure.message, retryable=failure.retryable, retry_after=failure.retry_after))
            status = "error"
        except ToolClientGone:
            self.emit(ErrorEvent(code="tool_client_disconnected", message="the client that declared the tools disconnected"))
            status = "error"
        except Exception:
            log.exception("model %s failed in response %s", self.model.id, self.id)
            self.emit(ErrorEvent(code="internal", message="the daemon failed while running this response; see its log"))
            status = "error"
        if self._interrupting:
            self.emit(ErrorEvent(code=INTERRUPTED.code, message=INTERRUPTED.message))
            self._finish("error", "interrupted", "interrupted")
        else:
            self._finish(status, status, reason if status == "completed" else status)

    def _check_answer(self) -> None:
        """Hold a completed answer to the ``schema`` option, whatever the model: text that is
        not JSON or does not match ends the response as ``schema_mismatch``, its output kept."""
        schema = getattr(self.request.options, "schema", None)
        if schema is None:
            return
        text = answer_text(self.assembler.messages())
        problem = mismatch(schema, text) if text is not None else None
        if problem is not None:
            raise ModelFailure(SCHEMA_MISMATCH, problem)

    async def _stream_round(self) -> bool:
        """One model round on the input plus the output so far; False if it ended with an error event."""
        request = dataclasses.replace(self.request, messages=self.request.messages + self.assembler.messages(), tools=self._offered)
        async with contextlib.aclosing(self.model.stream(request)) as events:
            count = 0
            async for event in events:
                if isinstance(event, DoneEvent):
                    continue  # the daemon alone ends a response, so `done` stays last
                if self.hide_reasoning and isinstance(event, ReasoningEvent):
                    self.assembler.add(event)  # kept in the stored output, not streamed
                    continue
                self.emit(event)
                if isinstance(event, ErrorEvent):
                    return False
                count += 1
                if count % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        return True

    def emit(self, event: AnyEvent) -> None:
        log = self.log
        seq = len(log) + 1
        if event.seq or event.response_id:
            event.response_id, event.seq = "", 0  # unstamped, it encodes as its body (see _envelope)
        self.assembler.add(event)
        body = _encode(event)
        event.response_id, event.seq = self.id, seq
        params = sealed(body, self._opening, seq)
        log.append(params)
        self.bodies.append(body)
        if self.subscribers:
            message = event_message(params)
            lagging = [conn for conn in self.subscribers if not conn.send_event(self.id, seq, message, event)]
            if lagging:
                self.subscribers.difference_update(lagging)
        self._group.mark(self)

    def _finish(self, done: str, status: str, reason: str) -> None:
        """Emit ``done`` with its status and finish reason, and store how the response ended."""
        self.emit(DoneEvent(status=done, finish_reason=reason))  # type: ignore[arg-type]
        self.status = status  # type: ignore[assignment]
        self.finish_reason = reason
        ending = functools.partial(
            self._store.finish_response,
            self.id,
            status=status,
            output=self.assembler.messages(),
            usage=self.assembler.usage,
            error=self.assembler.error,  # an interrupted response has just emitted its error event
            duration_ms=round((time.monotonic() - self._started) * 1000),
            finish_reason=reason,
            events=self.bodies,
        )
        self._group.finish(self, ending)

    def record(self) -> ResponseRecord:
        """What has arrived so far."""
        return ResponseRecord(
            id=self.id,
            conversation_id=self.conversation_id,
            model=self.model.id,
            status=self.status,
            prompt=PromptRecord(
                messages=self.request.messages, system=self.request.system, options=self.options, tools=self.request.tools or None
            ),
            messages=self.assembler.messages(),
            created_at=self.created_at,
            usage=self.assembler.usage,
            error=self.assembler.error,
            finish_reason=self.finish_reason,
        )
