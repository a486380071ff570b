"""The daemon's MCP servers: one owner per configured server, kept in step with mcp.json.

mcp.json is looked at every second (its mtime and size). A server whose entry
changed is stopped (its process gone) before the new one starts; a removed one is
stopped; an added one starts. With no mcp.json, or no server in it, nothing of the
``mcp`` SDK is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from parley._errors import InvalidParams
from parley._types_mcp import McpListResult, McpServerStatus, McpToolInfo

from .._userconfig import file_stamp
from ._approval import ApprovalStore
from ._config import McpConfigError, ServerConfig, load
from ._server import ServerOwner

log = logging.getLogger(__name__)
WATCH_INTERVAL = 1.0


class McpHub:
    def __init__(self, config_path: Path, data_dir: Path, *, version: str) -> None:
        self.config_path = config_path
        self.approvals = ApprovalStore(data_dir / "mcp-approvals.json")
        self.servers: dict[str, ServerOwner] = {}
        self._log_dir = data_dir / "mcp-logs"
        self._version = version
        self._stamp: tuple[float, int] | None | bool = False  # False: never read
        self._watcher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the configured servers, and watch mcp.json for edits."""
        await self.refresh()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="mcp.json watcher")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                await self.refresh()
            except Exception:
                log.exception("failed to apply %s", self.config_path)

    async def refresh(self) -> None:
        """Apply mcp.json if it changed since it was last read."""
        async with self._lock:
            stamp = file_stamp(self.config_path)
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                configs = load(self.config_path)
            except McpConfigError as exc:
                log.error("%s; keeping the MCP servers as they were", exc)
                return
            await self._apply(configs)

    async def _apply(self, configs: dict[str, ServerConfig]) -> None:
        stale = [o for name, o in self.servers.items() if name not in configs or configs[name] != o.config]
        for owner in stale:
            del self.servers[owner.name]
        await asyncio.gather(*(o.stop() for o in stale))  # the old process ends before its successor starts
        for name, config in configs.items():
            if name not in self.servers:
                owner = ServerOwner(config, log_dir=self._log_dir, version=self._version)
                self.servers[name] = owner
                owner.start()
                log.info("MCP server %s: %s", name, "starting" if not config.problem else config.problem)
        self.servers = {name: self.servers[name] for name in configs}  # mcp.json's order

    def select(self, names: list[str]) -> list[ServerOwner]:
        """The servers a prompt asks for; -32602 for a name mcp.json does not have."""
        unknown = [n for n in names if n not in self.servers]
        if unknown:
            known = ", ".join(self.servers) or "none configured"
            raise InvalidParams(f"params.mcpServers: unknown MCP server {unknown[0]!r} (mcp.json has: {known}); `parley mcp list` lists them")
        return [self.servers[n] for n in dict.fromkeys(names)]

    def status(self) -> McpListResult:
        now = time.monotonic()
        return McpListResult(
            config=str(self.config_path),
            servers=[
                McpServerStatus(
                    name=o.name,
                    transport=o.config.transport,  # type: ignore[arg-type]
                    state=o.state,
                    pid=o.pid,
                    error=o.error,
                    restarts=o.restarts,
                    retry_in_s=None if o.retry_at is None else round(max(o.retry_at - now, 0.0), 1),
                    trusted=o.config.trusted,
                    log=None if o.log_path is None else str(o.log_path),
                    tools=[McpToolInfo(name=t.model_name, tool=t.name, description=t.description, annotations=t.annotations) for t in o.tools],
                )
                for o in self.servers.values()
            ],
        )

    async def aclose(self) -> None:
        """Stop every server: no process outlives the daemon."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        owners, self.servers = list(self.servers.values()), {}
        await asyncio.gather(*(o.stop() for o in owners))
