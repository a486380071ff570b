"""What the HTTP providers share: pooled clients, timeouts, the retry loop, options, tool pairing."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import httpx
import msgspec
from parley._types import (
    AnyEvent,
    Message,
    ModelCapabilities,
    ToolCallPart,
    ToolResultPart,
)

from .._base import Model, ModelFailure, ModelRequest
from ._errors import (
    RetryPolicy,
    decode_error_body,
    failure_from_error,
    failure_from_exception,
)
from ._sse import SSEDecoder

log = logging.getLogger("parleyd.models.http")

_MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``read`` is the longest gap between two pieces of a response (a stalled stream)."""

    connect: float = 10.0
    read: float = 300.0
    write: float = 60.0
    pool: float = 30.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class _Shared:
    __slots__ = ("client", "refs")

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.refs = 0


# One pooled client per (provider, base URL, timeouts): the models of one endpoint share it.
# Credentials are sent per request, so a client never holds a key.
_clients: dict[tuple[Any, ...], _Shared] = {}


#: httpx mounts that send requests for this machine direct, whatever proxy the environment sets.
LOOPBACK: dict[str, httpx.AsyncBaseTransport | None] = {"all://127.0.0.1": None, "all://localhost": None, "all://[::1]": None}


def _acquire(key: tuple[Any, ...], timeouts: Timeouts, max_connections: int) -> _Shared:
    shared = _clients.get(key)
    if shared is None or shared.client.is_closed:
        client = httpx.AsyncClient(
            timeout=timeouts.httpx(),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=min(max_connections, 20)),
            follow_redirects=False,
            trust_env=True,  # HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, as users expect
            mounts=LOOPBACK,  # but never a proxy for a server on this machine
        )
        shared = _clients[key] = _Shared(client)
    shared.refs += 1
    return shared


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, without credentials: how errors name a server."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def options_struct(
    name: str,
    fields: dict[str, Any],
    selected: Iterable[str] | None,
    check: Callable[[Any], None] | None = None,
) -> type[msgspec.Struct]:
    """An Options struct with the ``selected`` fields (snake or camel names; None: all), each optional.

    ``check`` runs after decoding and may raise ValueError: the registry turns it into a -32602.
    """
    if selected is None:
        chosen = list(fields)
    else:
        chosen = []
        for option in selected:
            key = _snake(option)
            if key not in fields:
                raise ValueError(f"{name}: unknown option {option!r}; known: {', '.join(fields)}")
            chosen.append(key)
    namespace = {}
    if check is not None:

        def __post_init__(self: Any) -> None:
            check(self)

        namespace["__post_init__"] = __post_init__
    return msgspec.defstruct(
        name,
        [(field, fields[field] | None, None) for field in chosen],
        kw_only=True,
        forbid_unknown_fields=True,
        omit_defaults=True,
        rename="camel",
        namespace=namespace,
    )


def opt(options: Any, name: str) -> Any:
    """An option's value, None when unset or not taken by this model."""
    return getattr(options, name, None) if options is not None else None


class HTTPModel(Model):
    """A model behind an HTTP API that streams server-sent events.

    ``api_key`` is a string, None (local servers), or a callable asked at each request (so
    that a key changed while the daemon runs is used at once); it is never logged, never part
    of an error text, and not in ``repr``. ``key_hint`` makes a request without a key fail as
    ``auth`` with that hint (e.g. "set OPENAI_API_KEY or run `parley keys set openai`") instead
    of going out unauthenticated.

    Subclasses build the request body (``_body``) and turn a response into events
    (``_events``). Retryable failures are retried with backoff while no event has
    been yielded; after the first event a failure ends the response.
    """

    kind: ClassVar[str]  # the wire format: "openai" or "anthropic"

    def __init__(
        self,
        model_id: str,
        name: str,
        *,
        base_url: str,
        api_key: str | Callable[[], str | None] | None = None,
        key_hint: str | None = None,
        aliases: list[str] | None = None,
        timeouts: Timeouts | None = None,
        capabilities: ModelCapabilities | None = None,
        provider: str | None = None,
        headers: dict[str, str] | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 32,
        context_window: int | None = None,
    ) -> None:
        super().__init__(model_id, aliases)
        self.name = name
        self.context_window = context_window
        self.base_url = base_url.rstrip("/")
        self.__key = api_key or None
        self.key_hint = key_hint
        self.timeouts = timeouts or Timeouts()
        if capabilities is not None:
            self.capabilities = capabilities
        if provider is not None:
            self.provider = provider
        self.extra_headers = dict(headers or {})
        self.retry = retry or RetryPolicy()
        self.where = origin(self.base_url)
        self._shared: _Shared | None = _acquire((self.kind, self.base_url, self.timeouts), self.timeouts, max_connections)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, name={self.name!r}, base_url={self.base_url!r})"

    @property
    def _api_key(self) -> str | None:
        key = self.__key
        return (key() or None) if callable(key) else key

    def set_api_key(self, api_key: str | Callable[[], str | None] | None) -> None:
        """A new key (``parley keys set`` while the daemon runs); a callable is asked at each request."""
        self.__key = api_key or None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._shared is None:
            raise RuntimeError(f"model {self.id!r} is closed")
        return self._shared.client

    async def aclose(self) -> None:
        """Let go of the pooled client; the last model of an endpoint closes it."""
        shared, self._shared = self._shared, None
        if shared is None:
            return
        shared.refs -= 1
        if shared.refs <= 0:
            for key, value in list(_clients.items()):
                if value is shared:
                    del _clients[key]
            await shared.client.aclose()

    # ---- what subclasses provide ---------------------------------------------

    @property
    @abc.abstractmethod
    def url(self) -> str: ...

    @abc.abstractmethod
    def _auth_headers(self) -> dict[str, str]: ...

    @abc.abstractmethod
    async def _body(self, request: ModelRequest) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _events(self, response: httpx.Response) -> AsyncIterator[AnyEvent]: ...

    # ---- the request ----------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        # identity: a compressing proxy would hold chunks back to fill its buffers
        return {"content-type": "application/json", "accept-encoding": "identity", **self.extra_headers, **self._auth_headers()}

    def failure(self, status: int | None, body: Any, headers: Any = None) -> ModelFailure:
        return failure_from_error(provider=self.provider, status=status, body=body, headers=headers, secret=self._api_key)

    async def stream(self, request: ModelRequest) -> AsyncIterator[AnyEvent]:
        headers = self._headers()
        if self.key_hint and self._api_key is None:
            raise ModelFailure("auth", f"model {self.id!r} has no API key: {self.key_hint}")
        content = msgspec.json.encode(await self._body(request))
        attempt = 0
        while True:
            emitted = False
            try:
                async with self.client.stream("POST", self.url, content=content, headers=headers) as response:
                    if response.status_code >= 400:
                        raise self.failure(response.status_code, await _error_body(response), response.headers)
                    async with contextlib.aclosing(self._events(response)) as events:
                        async for event in events:
                            emitted = True
                            yield event
                return
            except ModelFailure as exc:
                failure = exc
            except httpx.HTTPError as exc:
                failure = failure_from_exception(exc, where=self.where, timeouts=self.timeouts.httpx())
            if emitted:
                raise failure
            delay = self.retry.delay(failure, attempt)
            if delay is None:
                raise failure
            attempt += 1
            log.warning(
                "model %s: %s (%s); retry %d of %d in %.2fs", self.id, failure.kind, failure.message, attempt, self.retry.max_retries, delay
            )
            await asyncio.sleep(delay)


class StreamState(Protocol):
    """A provider's reading of one streamed response: its events, and whether its end has come."""

    done: bool

    def event(self, name: str, data: str) -> Iterable[AnyEvent]: ...

    def end(self) -> Iterable[AnyEvent]: ...


async def sse_events(response: httpx.Response, state: StreamState) -> AsyncIterator[AnyEvent]:
    """Feed a response's server-sent events to ``state`` and yield what it makes of them.

    Reading stops at the stream's own end (``state.done``); the rest of the body is then
    drained, so that the connection goes back to the pool.
    """
    decoder = SSEDecoder()
    chunks = response.aiter_bytes()
    async for raw in chunks:
        for sse in decoder.feed(raw):
            for event in state.event(sse.event, sse.data):
                yield event
        if state.done:
            break
    else:
        for sse in decoder.close():
            for event in state.event(sse.event, sse.data):
                yield event
    for event in state.end():
        yield event
    if state.done:
        await drain(chunks)


async def drain(chunks: AsyncIterator[bytes], limit: float = 1.0) -> None:
    """Read what is left of a body after the stream's end, so that the connection goes back to the pool.

    Servers send the body's end right after their last event; one that does not is given up on.
    """
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(limit):
            async for _ in chunks:
                pass


async def _error_body(response: httpx.Response) -> Any:
    data = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= _MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass  # the status says enough
    return decode_error_body(bytes(data[:_MAX_ERROR_BODY]))


# ---- the input chain -----------------------------------------------------------


def paired_tool_ids(messages: list[Message]) -> set[str]:
    """The ids of client tool calls that have a result after them.

    Providers refuse a tool call without its result and a result without its call;
    a call cut off by a cancel, or a result whose call is gone, would break the
    request, so the providers leave out (or turn into text) what is unpaired.
    """
    calls: set[str] = set()
    answered: set[str] = set()
    for message in messages:
        for part in message.parts:
            if isinstance(part, ToolCallPart) and part.tool_call_id and not is_server_call(part):
                calls.add(part.tool_call_id)
            elif isinstance(part, ToolResultPart) and not part.server_executed and part.tool_call_id in calls:
                answered.add(part.tool_call_id)  # type: ignore[arg-type]
    return answered


def is_server_call(part: ToolCallPart) -> bool:
    """A call the provider ran itself (Anthropic's web search): ids ``srvtoolu_…``."""
    return part.server_executed or (part.tool_call_id or "").startswith("srvtoolu_")


def assign_tool_ids(messages: list[Message]) -> list[Message]:
    """Give tool calls and results without ids matching ones, in order, by name."""
    missing = any(isinstance(p, (ToolCallPart, ToolResultPart)) and not p.tool_call_id for m in messages for p in m.parts)
    if not missing:
        return messages
    pending: dict[str, list[str]] = {}
    counter = 0
    out = []
    for message in messages:
        parts = []
        for part in message.parts:
            if isinstance(part, ToolCallPart) and not part.tool_call_id:
                counter += 1
                new_id = f"call_parley_{counter}"
                pending.setdefault(part.name, []).append(new_id)
                part = msgspec.structs.replace(part, tool_call_id=new_id)
            elif isinstance(part, ToolResultPart) and not part.tool_call_id:
                queue = pending.get(part.name)
                if queue:
                    part = msgspec.structs.replace(part, tool_call_id=queue.pop(0))
            parts.append(part)
        out.append(msgspec.structs.replace(message, parts=parts))
    return out


def json_args(arguments: Any) -> str:
    return msgspec.json.encode(arguments if arguments is not None else {}).decode()
