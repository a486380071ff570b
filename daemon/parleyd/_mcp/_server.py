"""One MCP server, owned by one asyncio task for as long as its configuration stands.

The SDK's client must be entered and exited in one task (anyio's cancel scopes),
so each server gets an owner task that connects, lists the tools, holds the client
open while it is ``ready``, and closes it: on a stop, or when the connection is
lost (the process died, an HTTP server went away). Then it backs off (1 s, 2 s,
4 s … at most 60 s) and starts it again; after ``MAX_FAILURES`` failed starts in a
row the server stays ``failed`` until mcp.json changes. Calls are made from the
responses' tasks on the held client; a call that finds the connection gone wakes
the owner. A stdio server's stderr goes to its own log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ._config import ServerConfig
from ._naming import file_name, model_name

log = logging.getLogger(__name__)

State = Literal["starting", "ready", "failed", "backing_off"]
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
MAX_FAILURES = 8  # failed starts in a row before the server is left `failed`
STABLE_AFTER = 60.0  # seconds ready after which a loss starts the backoff afresh
_POLL = 0.25  # seconds between checks that the connection still stands
STOP_TIMEOUT = 10.0  # seconds a server may take to close
NOT_INSTALLED = "the `mcp` package is not installed: pip install 'parleyd[mcp]'"


class McpUnavailable(Exception):
    """The server cannot take a call now (not ready, or the connection dropped)."""


class _Permanent(Exception):
    """A failure that retrying cannot mend (the SDK missing)."""


@dataclass(frozen=True)
class McpTool:
    server: str
    name: str  # as the server knows it: what goes on the wire
    model_name: str  # as the model calls it
    description: str | None
    input_schema: dict[str, Any]
    annotations: dict[str, Any] | None


class ServerOwner:
    def __init__(self, config: ServerConfig, *, log_dir: Path, version: str) -> None:
        self.config = config
        self.name = config.name
        self.state: State = "starting"
        self.error: str | None = None
        self.tools: list[McpTool] = []
        self.pid: int | None = None
        self.restarts = 0
        self.retry_at: float | None = None
        self.log_path = log_dir / f"{file_name(config.name)}.log" if config.transport == "stdio" else None
        self._log_dir = log_dir
        self._version = version
        self._failures = 0
        self._client: Any = None
        self._process: Any = None
        self._settled = asyncio.Event()  # set while the state is not `starting`
        self._stopping = asyncio.Event()
        self._lost = asyncio.Event()  # a call found the connection gone
        self._relist = asyncio.Event()  # the server said its tools changed
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._own(), name=f"mcp server {self.name}")

    async def stop(self) -> None:
        """Close the client (a stdio server's process ends with it) and wait for that. A start under
        way is cancelled rather than waited out; a close that hangs (an HTTP server that does not
        answer) is cancelled after ``STOP_TIMEOUT``. The SDK kills a stdio server either way."""
        self._stopping.set()
        task = self.task
        if task is None or task.done():
            return
        if self.state == "starting":
            task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        except TimeoutError:
            task.cancel()
        with contextlib.suppress(BaseException):
            await task

    async def settled(self, timeout: float) -> None:
        """Wait, at most ``timeout`` s, until the server is past `starting`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout)

    # ---- the owner task ---------------------------------------------------------

    async def _own(self) -> None:
        if self.config.problem:
            return self._set("failed", self.config.problem)
        while not self._stopping.is_set():
            ready_since: list[float] = []
            try:
                await self._session(ready_since)
                error = None if self._stopping.is_set() else self._loss()
            except _Permanent as exc:
                return self._set("failed", str(exc))
            except Exception as exc:  # noqa: BLE001 - whatever ended it is the server's error
                error = _describe(exc)
            finally:
                self._client = self._process = None
                self.pid = None
            if self._stopping.is_set():
                break
            if ready_since and time.monotonic() - ready_since[0] >= STABLE_AFTER:
                self._failures = 0
            self._failures += 1
            self.restarts += 1
            if self._failures >= MAX_FAILURES:
                log.error("MCP server %s: %s; %d failures in a row, giving up until mcp.json changes", self.name, error, self._failures)
                return self._set("failed", f"{error} ({self._failures} failures in a row)")
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
            log.warning("MCP server %s: %s; starting it again in %g s", self.name, error, delay)
            self._set("backing_off", error)
            self.retry_at = time.monotonic() + delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            self.retry_at = None

    async def _session(self, ready_since: list[float]) -> None:
        try:
            from mcp import Client
            from mcp_types import Implementation
        except ImportError:
            raise _Permanent(NOT_INSTALLED) from None
        self._set("starting", None)
        self._lost.clear()
        async with contextlib.AsyncExitStack() as stack:
            client = Client(
                await self._transport(stack),
                cache=None,
                client_info=Implementation(name="parleyd", version=self._version),
                message_handler=self._on_message,
            )
            spawned: list[Any] = []
            token = _SPAWNED.set(spawned)
            try:
                # asyncio's timeout, not anyio's: an anyio scope around the enter would close before
                # the client's own scopes, which anyio forbids.
                async with asyncio.timeout(self.config.startup_timeout):
                    await stack.enter_async_context(client)
                    self._process = spawned[0] if spawned else None
                    self.pid = getattr(self._process, "pid", None)
                    self.tools = await self._list_tools(client)
            except TimeoutError:
                raise TimeoutError(f"it did not start within {self.config.startup_timeout:g} s (startupTimeout)") from None
            finally:
                _SPAWNED.reset(token)
            self._client = client
            ready_since.append(time.monotonic())
            self._set("ready", None)
            log.info("MCP server %s ready (%s, pid %s): %d tools", self.name, self.config.transport, self.pid, len(self.tools))
            while not self._stopping.is_set() and not self._gone():
                if self._relist.is_set():
                    self._relist.clear()
                    self.tools = await self._list_tools(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _POLL)

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        config = self.config
        if config.url is not None:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = await stack.enter_async_context(create_mcp_http_client(headers=dict(config.headers) or None))
            return streamable_http_client(config.url, http_client=http)
        from mcp.client import stdio

        _watch_spawns(stdio)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        assert self.log_path is not None
        errlog = stack.enter_context(open(self.log_path, "a", encoding="utf-8", errors="replace"))
        errlog.write(f"--- parleyd starts {config.name}: {config.command} {' '.join(config.args)}\n")
        errlog.flush()
        params = stdio.StdioServerParameters(command=config.command, args=list(config.args), env=dict(config.env) or None, cwd=config.cwd)
        return stdio.stdio_client(params, errlog=errlog)

    async def _list_tools(self, client: Any) -> list[McpTool]:
        found, cursor = [], None
        for _ in range(100):  # pages; a server that never ends its list cannot hang the start
            page = await client.list_tools(cursor=cursor)
            found += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        tools = {}
        for tool in found:
            annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
            name = model_name(self.name, tool.name)
            tools[name] = McpTool(self.name, tool.name, name, tool.description, dict(tool.input_schema), annotations or None)
        return [tools[n] for n in sorted(tools)]  # a stable order, whatever order the server lists them in

    async def _on_message(self, message: Any) -> None:
        if getattr(getattr(message, "root", message), "method", None) == "notifications/tools/list_changed":
            self._relist.set()

    def _gone(self) -> bool:
        """Whether the connection was lost: the process exited, the transport closed, a call saw it drop."""
        if self._lost.is_set() or (self._process is not None and self._process.returncode is not None):
            return True
        dispatcher = getattr(getattr(self._client, "_session", None), "_dispatcher", None)
        return bool(getattr(dispatcher, "_closed", False))

    def _loss(self) -> str:
        code = getattr(self._process, "returncode", None)
        if code is not None:
            return f"the server exited ({_exit(code)})"
        return "the connection to the server was lost"

    def _set(self, state: State, error: str | None) -> None:
        self.state, self.error = state, error
        if state == "starting":
            self._settled.clear()
        else:
            self._settled.set()

    # ---- calls, from the responses' tasks ------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any], *, progress: Any) -> Any:
        """``tools/call`` on the held client; cancelling it sends ``notifications/cancelled``."""
        from mcp.shared.exceptions import MCPError

        client = self._client
        if client is None or self.state != "ready":
            raise McpUnavailable(f"MCP server {self.name!r} is {self.state.replace('_', ' ')}" + (f": {self.error}" if self.error else ""))
        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=self.config.call_timeout, progress_callback=progress)
        except MCPError as exc:
            if exc.code == -32000:  # CONNECTION_CLOSED
                self._lost.set()
                raise McpUnavailable(f"MCP server {self.name!r}: the connection was lost during the call") from None
            if exc.code == -32001:  # REQUEST_TIMEOUT
                raise McpUnavailable(f"MCP server {self.name!r} did not answer within {self.config.call_timeout:g} s (callTimeout)") from None
            raise
        except (OSError, *_transport_errors()) as exc:
            self._lost.set()
            raise McpUnavailable(f"MCP server {self.name!r}: {_describe(exc)}") from None


# The stdio client does not tell the process it started; its spawn function is wrapped
# to hand the process to the owner task that is starting it (a context variable).
_SPAWNED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("parley_mcp_spawned", default=None)


def _watch_spawns(stdio: Any) -> None:
    original = getattr(stdio, "_create_platform_compatible_process", None)
    if original is None or getattr(original, "parley_wrapped", False):
        return

    async def spawn(*args: Any, **kwargs: Any) -> Any:
        process = await original(*args, **kwargs)
        if (spawned := _SPAWNED.get()) is not None:
            spawned.append(process)
        return process

    spawn.parley_wrapped = True  # type: ignore[attr-defined]
    stdio._create_platform_compatible_process = spawn


def _transport_errors() -> tuple[type[BaseException], ...]:
    try:
        import httpx2
    except ImportError:
        return ()
    return (httpx2.TransportError,)


def _describe(exc: BaseException) -> str:
    """One line for an error, out of the exception groups anyio wraps it in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    message = str(exc) or type(exc).__name__
    return message if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {message}"


def _exit(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
