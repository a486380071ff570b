"""The daemon's settings, from the command line of ``parley serve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parley._framing import DEFAULT_MAX_MESSAGE_SIZE


@dataclass
class DaemonConfig:
    socket: Path
    database: Path
    user_config: Path  # config.toml: endpoints, GGUF models, aliases, the default model
    tcp: tuple[str, int] | None = None
    ws: tuple[str, int] | None = None
    http: tuple[str, int] | None = None  # the OpenAI-compatible front door (_http)
    stdio: bool = False
    idle_timeout: float | None = None  # seconds with no connection and nothing running
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Bytes a connection may have unsent before it is unsubscribed with `response/lagged`.
    max_backlog: int = 8 * 1024 * 1024
    tool_timeout: float = 300.0  # seconds a client has to answer tool/execute
    approval_timeout: float = 120.0  # seconds a client has to answer tool/approve; then it is a deny

    @property
    def token_file(self) -> Path:
        return self.socket.with_suffix(".token")

    @property
    def lock_file(self) -> Path:
        return self.socket.with_suffix(".lock")
