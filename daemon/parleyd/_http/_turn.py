"""One request's response as every API's handler sees it.

A handler reads its body (``read_body``), builds the daemon's ``PromptParams`` or
``ReplyParams``, and starts a ``Turn`` (``prompt``/``reply``). Starting waits for the
response's first event, so a response that fails before any output raises ``HttpError``
with its status, as every API expects. A streamed answer goes through ``Turn.guarded``:
a client that disconnects before the end cancels the response, whose partial output is
kept. Session hints (``session_key``) pick among stored conversations that a replayed
history continues.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TypeVar

import msgspec
from starlette.datastructures import Headers
from starlette.requests import Request

from parley._errors import RequestError
from parley._types import AnyEvent, DoneEvent, ErrorEvent, PromptParams, ReplyParams

from ._errors import HttpError
from ._subscription import Subscription

if TYPE_CHECKING:
    from .._daemon import Daemon
    from .._live import LiveResponse, Subscriber

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Headers by which clients name their session: parley's own, Claude Code's, Codex's.
SESSION_HEADERS = ("x-parley-conversation", "x-claude-code-session-id", "session-id")


async def read_body(request: Request, decode: Callable[[bytes], T]) -> T:
    try:
        return decode(await request.body())
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise HttpError.bad_request(f"invalid request body: {exc}") from None


def session_key(headers: Headers) -> str | None:
    """The session a request says it belongs to, if it says."""
    for name in SESSION_HEADERS:
        if value := headers.get(name, "").strip():
            return value
    return None


class Turn:
    """A started response: iterate it for its events (the first one already arrived)."""

    def __init__(self, live: LiveResponse, first: AnyEvent, rest: AsyncIterator[AnyEvent]) -> None:
        self.live = live
        self._first = first
        self._rest = rest
        self._ended = False

    @property
    def id(self) -> str:
        return self.live.id

    @property
    def model(self) -> str:
        return self.live.model.id

    async def __aiter__(self) -> AsyncIterator[AnyEvent]:
        event = self._first
        while True:
            if isinstance(event, ErrorEvent | DoneEvent):
                self._ended = True  # an error is the response's end: ``done`` follows
            yield event
            if isinstance(event, DoneEvent):
                return
            event = await anext(self._rest)

    async def guarded(
        self, chunks: AsyncIterator[bytes], on_error: Callable[[HttpError], bytes] | None = None
    ) -> AsyncIterator[bytes]:
        """A streamed body; the client going away before the response ended cancels it. A bug
        in the API's own code ends the stream with ``on_error``'s framing, not a cut connection;
        its traceback goes to the log, never on the wire."""
        try:
            async for chunk in chunks:
                yield chunk
        except Exception:
            log.exception("%s: the front door failed while streaming it", self.live.id)
            if on_error is not None:
                yield on_error(HttpError(500, "internal_error", "parley failed while streaming this response; its log says why"))
        finally:
            if not self._ended:
                await self.live.cancel()


async def prompt(request: Request, params: PromptParams) -> Turn:
    key = session_key(request.headers)
    daemon = request.app.state.daemon
    return await _start(daemon, lambda subscriber: daemon.prompt(subscriber, params, session_key=key))


async def reply(request: Request, params: ReplyParams) -> Turn:
    daemon = request.app.state.daemon
    return await _start(daemon, lambda subscriber: daemon.reply(subscriber, params))


async def _start(daemon: Daemon, begin: Callable[[Subscriber], LiveResponse]) -> Turn:
    subscription = Subscription(daemon.group_commit.barrier)
    try:
        live = begin(subscription)
    except RequestError as exc:
        raise HttpError.from_request(exc) from None
    events = subscription.events()
    first = await anext(events)
    if isinstance(first, ErrorEvent):
        await anext(events, None)  # its ``done``
        raise HttpError.from_event(first)
    return Turn(live, first, events)

