"""``mcp.json`` in parley's config dir: the MCP servers the daemon starts and offers.

The de-facto shape (Claude Desktop's, Cursor's), also under VS Code's ``servers`` and
Zed's ``context_servers`` keys::

    {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}, "cwd": "/tmp"},
        "docs": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer …"}},
        "fs":   {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"],
                 "trusted": true, "startupTimeout": 60, "callTimeout": 300}
    }}

parley's own keys: ``trusted`` (a read-only tool of this server runs without asking),
``startupTimeout`` and ``callTimeout`` (seconds), ``disabled``. A server whose entry
cannot be used is kept, in state ``failed`` with the reason, so ``parley mcp list``
says what is wrong rather than nothing. ``env`` and ``headers`` may hold keys: they
are never logged nor sent to a client.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEYS = ("mcpServers", "servers", "context_servers")  # the de-facto key, VS Code's, Zed's
DEFAULT_STARTUP_TIMEOUT = 60.0  # npx servers may download first
DEFAULT_CALL_TIMEOUT = 120.0


class McpConfigError(Exception):
    """mcp.json is not JSON, or not an object of servers."""


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold keys: never shown
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    trusted: bool = False
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    problem: str | None = None  # why this entry cannot be started
    fingerprint: str = field(default="", compare=False)

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


def load(path: Path) -> dict[str, ServerConfig]:
    """The servers of mcp.json (none when it does not exist), in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise McpConfigError(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise McpConfigError(f"{path}: must be a JSON object")
    servers: dict[str, Any] = {}
    for key in KEYS:
        found = document.get(key, {})
        if not isinstance(found, dict):
            raise McpConfigError(f"{path}: `{key}` must be an object of servers")
        for name, entry in found.items():
            servers.setdefault(name, entry)
    return {name: parse(name, entry) for name, entry in servers.items() if not _disabled(entry)}


def _disabled(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("disabled") is True


def parse(name: str, entry: Any) -> ServerConfig:
    """One server's entry; a bad one becomes a config with its ``problem``."""
    try:
        config = _parse(name, entry)
    except (TypeError, ValueError) as exc:
        config = ServerConfig(name=name, problem=f"mcp.json: server {name!r}: {exc}")
    object.__setattr__(config, "fingerprint", _fingerprint(entry))
    return config


def _parse(name: str, entry: Any) -> ServerConfig:
    if not isinstance(entry, dict):
        raise TypeError("must be an object")
    command, url = entry.get("command"), entry.get("url") or entry.get("serverUrl")
    if (command is None) == (url is None):
        raise ValueError('needs exactly one of "command" (stdio) or "url" (Streamable HTTP)')
    if entry.get("type") in ("sse",):
        raise ValueError("the SSE transport is not supported; use the server's Streamable HTTP URL")
    return ServerConfig(
        name=name,
        command=_text(command, "command") if command is not None else None,
        args=tuple(_text(a, "args[]") for a in _list(entry.get("args", []), "args")),
        env=_pairs(entry.get("env", {}), "env"),
        cwd=_text(entry["cwd"], "cwd") if entry.get("cwd") is not None else None,
        url=_text(url, "url") if url is not None else None,
        headers=_pairs(entry.get("headers", {}), "headers"),
        trusted=entry.get("trusted") is True,
        startup_timeout=_seconds(entry.get("startupTimeout", DEFAULT_STARTUP_TIMEOUT), "startupTimeout"),
        call_timeout=_seconds(entry.get("callTimeout", DEFAULT_CALL_TIMEOUT), "callTimeout"),
    )


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f'"{what}" must be a non-empty string')
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f'"{what}" must be a list')
    return value


def _pairs(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise TypeError(f'"{what}" must be an object of strings')
    return tuple(value.items())


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f'"{what}" must be a positive number of seconds')
    return float(value)


def _fingerprint(entry: Any) -> str:
    """A hash of the whole entry: an approval given "always" holds for this configuration only."""
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
